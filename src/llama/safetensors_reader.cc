// safetensors reader: validates the whole header before adding any tensor, then adds views
// into the memory map (copies only misaligned data).
//
// Layout: u64 little-endian N, N bytes of JSON {name: {"dtype", "shape", "data_offsets":
// [begin, end]}, "__metadata__": {str: str}}, then the data buffer; offsets are relative to
// the start of the buffer (byte 8 + N).
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/json.h"
#include "llama/checkpoint.h"

namespace tulu {

namespace {

// The reference implementation refuses headers above 100 MB; a 70B index has ~700 tensors
// per shard, a few tens of kB of JSON.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct HeaderEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A non-negative integer JSON value (shape dims, offsets); overflow and negatives refused.
uint64_t non_negative(const Json& v, const std::string& what, const std::string& where) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    TULU_CHECK(i >= 0, where, ": ", what, " is negative (", i, ")");
    return static_cast<uint64_t>(i);
  }
  fail(where, ": ", what, ": expected a non-negative integer, got ", json_preview(v));
}

HeaderEntry parse_entry(const std::string& name, const Json& info, uint64_t buffer_size, const std::string& path) {
  const std::string where = str_cat(path, ": tensor '", name, "'");
  TULU_CHECK(info.is_object(), where, ": expected an object, got ", json_preview(info));
  HeaderEntry e;
  e.name = name;

  auto dtype_it = info.find("dtype");
  TULU_CHECK(dtype_it != info.end() && dtype_it->is_string(), where, ": missing or non-string 'dtype'");
  const std::string dtype = dtype_it->get<std::string>();
  TULU_CHECK(parse_dtype(dtype, &e.dtype), where, ": dtype ", dtype,
             " is not supported (supported: F32, F16, BF16)");

  auto shape_it = info.find("shape");
  TULU_CHECK(shape_it != info.end() && shape_it->is_array(), where, ": missing or non-array 'shape'");
  uint64_t numel = 1;
  for (const Json& d : *shape_it) {
    const uint64_t dim = non_negative(d, "shape dimension", where);
    TULU_CHECK(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": shape dimension ", dim,
               " is too large");
    TULU_CHECK(!__builtin_mul_overflow(numel, dim, &numel), where, ": shape ", json_preview(*shape_it),
               " overflows 64 bits");
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t nbytes = 0;
  TULU_CHECK(!__builtin_mul_overflow(numel, uint64_t{dtype_size(e.dtype)}, &nbytes), where, ": shape ",
             json_preview(*shape_it), " overflows 64 bits");

  auto off_it = info.find("data_offsets");
  TULU_CHECK(off_it != info.end() && off_it->is_array() && off_it->size() == 2, where,
             ": 'data_offsets' must be [begin, end], got ",
             off_it == info.end() ? std::string("nothing") : json_preview(*off_it));
  e.begin = non_negative((*off_it)[0], "data_offsets[0]", where);
  e.end = non_negative((*off_it)[1], "data_offsets[1]", where);
  TULU_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  TULU_CHECK(e.end <= buffer_size, where, ": data_offsets [", e.begin, ", ", e.end,
             "] reach past the end of the data (", buffer_size, " bytes; file truncated?)");
  TULU_CHECK(e.end - e.begin == nbytes, where, ": shape ", shape_to_string(e.shape), " × ", dtype, " is ", nbytes,
             " bytes but data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin, " bytes");
  return e;
}

}  // namespace

void read_safetensors(const std::string& path, TensorStore& store) {
  auto file = MappedFile::open(path);
  const uint64_t size = file->size();
  TULU_CHECK(size >= 8, path, ": file is ", size, " bytes, too short for a safetensors header (8 bytes + JSON)");
  const uint64_t header_len = read_u64_le(file->data());
  TULU_CHECK(header_len <= size - 8, path, ": header length ", header_len, " exceeds the file size ", size,
             " (truncated or not a safetensors file)");
  TULU_CHECK(header_len <= kMaxHeaderBytes, path, ": header length ", header_len, " is implausibly large");
  const std::string text(reinterpret_cast<const char*>(file->data()) + 8, header_len);
  const Json header = parse_json(text, path + " (safetensors header)");
  TULU_CHECK(header.is_object(), path, ": safetensors header is not a JSON object");

  const uint64_t buffer_start = 8 + header_len;
  const uint64_t buffer_size = size - buffer_start;
  std::vector<HeaderEntry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      TULU_CHECK(info.is_object() || info.is_null(), path, ": '__metadata__' must be an object of strings");
      continue;
    }
    entries.push_back(parse_entry(name, info, buffer_size, path));
  }

  // No two tensors may share bytes (zero-size tensors occupy none).
  std::vector<const HeaderEntry*> by_offset;
  for (const auto& e : entries) {
    if (e.end > e.begin) by_offset.push_back(&e);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const HeaderEntry* a, const HeaderEntry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const HeaderEntry& prev = *by_offset[i - 1];
    const HeaderEntry& cur = *by_offset[i];
    TULU_CHECK(cur.begin >= prev.end, path, ": tensors '", prev.name, "' [", prev.begin, ", ", prev.end, ") and '",
               cur.name, "' [", cur.begin, ", ", cur.end, ") overlap");
  }

  // Keep the mapping alive first: views added before a later failure (a duplicate name)
  // must not dangle.
  store.keep_alive(file);
  const uint8_t* buffer = file->data() + buffer_start;
  for (const auto& e : entries) {
    store.add_view_or_copy(e.name, e.dtype, e.shape, buffer + e.begin, path);
  }
}

}  // namespace tulu

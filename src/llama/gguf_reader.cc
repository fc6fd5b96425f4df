// GGUF reader: a bounds-checked cursor over the mapping; every count and length is checked
// against the bytes left before anything is allocated, so a corrupt file cannot make us
// allocate or read out of bounds.
#include "llama/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace tulu {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxDims = 4;             // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;

class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t position() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    TULU_CHECK(n <= left(), path_, ": truncated file: ", what, " at byte ", pos_, " needs ", n,
               " bytes, only ", left(), " left");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));  // GGUF is little-endian, as are our targets
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " (string length)");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

// Smallest encoded size of one value of a type, to bound array counts before allocating.
uint64_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::Uint8:
    case GgufValueType::Int8:
    case GgufValueType::Bool:
      return 1;
    case GgufValueType::Uint16:
    case GgufValueType::Int16:
      return 2;
    case GgufValueType::Uint32:
    case GgufValueType::Int32:
    case GgufValueType::Float32:
      return 4;
    case GgufValueType::Uint64:
    case GgufValueType::Int64:
    case GgufValueType::Float64:
    case GgufValueType::String:
      return 8;
    case GgufValueType::Array:
      return 12;
  }
  return 1;
}

GgufValueType read_value_type(Cursor& in, const std::string& what, const std::string& path) {
  const uint32_t code = in.read<uint32_t>(what);
  TULU_CHECK(gguf_value_type_known(code), path, ": ", what, ": unknown value type ", code);
  return static_cast<GgufValueType>(code);
}

GgufValue read_value(Cursor& in, GgufValueType type, const std::string& what,
                     const std::string& path, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::Uint8:
      v.u = in.read<uint8_t>(what);
      break;
    case GgufValueType::Uint16:
      v.u = in.read<uint16_t>(what);
      break;
    case GgufValueType::Uint32:
      v.u = in.read<uint32_t>(what);
      break;
    case GgufValueType::Uint64:
      v.u = in.read<uint64_t>(what);
      break;
    case GgufValueType::Int8:
      v.i = in.read<int8_t>(what);
      break;
    case GgufValueType::Int16:
      v.i = in.read<int16_t>(what);
      break;
    case GgufValueType::Int32:
      v.i = in.read<int32_t>(what);
      break;
    case GgufValueType::Int64:
      v.i = in.read<int64_t>(what);
      break;
    case GgufValueType::Float32:
      v.f = in.read<float>(what);
      break;
    case GgufValueType::Float64:
      v.f = in.read<double>(what);
      break;
    case GgufValueType::Bool: {
      const uint8_t b = in.read<uint8_t>(what);
      TULU_CHECK(b <= 1, path, ": ", what, ": bool value ", int{b}, " is neither 0 nor 1");
      v.b = b != 0;
      break;
    }
    case GgufValueType::String:
      v.s = in.read_string(what);
      break;
    case GgufValueType::Array: {
      TULU_CHECK(depth < kMaxArrayDepth, path, ": ", what, ": arrays nested deeper than ",
                 kMaxArrayDepth);
      v.array_type = read_value_type(in, what + " (array element type)", path);
      const uint64_t count = in.read<uint64_t>(what + " (array length)");
      const uint64_t min_size = min_encoded_size(v.array_type);
      TULU_CHECK(count <= in.left() / min_size, path, ": ", what, ": array of ", count, " ",
                 gguf_value_type_name(static_cast<uint32_t>(v.array_type)),
                 " values cannot fit in the ", in.left(), " bytes left");
      v.array.reserve(static_cast<size_t>(count));
      for (uint64_t k = 0; k < count; ++k) {
        v.array.push_back(read_value(in, v.array_type, what, path, depth + 1));
      }
      break;
    }
  }
  return v;
}

bool is_unsigned(GgufValueType t) {
  return t == GgufValueType::Uint8 || t == GgufValueType::Uint16 || t == GgufValueType::Uint32 ||
         t == GgufValueType::Uint64;
}
bool is_signed(GgufValueType t) {
  return t == GgufValueType::Int8 || t == GgufValueType::Int16 || t == GgufValueType::Int32 ||
         t == GgufValueType::Int64;
}

int64_t as_int(const GgufValue& v, const std::string& where) {
  if (is_signed(v.type)) return v.i;
  if (is_unsigned(v.type)) {
    TULU_CHECK(v.u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": value ",
               v.u, " is too large");
    return static_cast<int64_t>(v.u);
  }
  fail(where, ": expected an integer, got ", gguf_value_type_name(static_cast<uint32_t>(v.type)));
}

double as_float(const GgufValue& v, const std::string& where) {
  if (v.type == GgufValueType::Float32 || v.type == GgufValueType::Float64) return v.f;
  if (is_signed(v.type) || is_unsigned(v.type)) return static_cast<double>(as_int(v, where));
  fail(where, ": expected a number, got ", gguf_value_type_name(static_cast<uint32_t>(v.type)));
}

}  // namespace

std::vector<int64_t> GgufTensorInfo::shape() const {
  std::vector<int64_t> s;
  for (auto it = ggml_dims.rbegin(); it != ggml_dims.rend(); ++it)
    s.push_back(static_cast<int64_t>(*it));
  return s;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->path_ = path;
  g->file_ = MappedFile::open(path);
  Cursor in(g->file_->data(), g->file_->size(), path);

  const uint32_t magic = in.read<uint32_t>("magic");
  TULU_CHECK(magic == kGgufMagic, path, ": not a GGUF file (bad magic)");
  g->version_ = in.read<uint32_t>("version");
  TULU_CHECK(g->version_ == 2 || g->version_ == 3, path, ": GGUF version ", g->version_,
             " is not supported (supported: 2, 3)");
  const uint64_t tensor_count = in.read<uint64_t>("tensor_count");
  const uint64_t kv_count = in.read<uint64_t>("metadata_kv_count");
  // Each key/value takes at least 12 bytes, each tensor info at least 24.
  TULU_CHECK(kv_count <= in.left() / 12, path, ": header field metadata_kv_count = ", kv_count,
             " exceeds what the file can hold");
  TULU_CHECK(tensor_count <= in.left() / 24, path, ": header field tensor_count = ", tensor_count,
             " exceeds what the file can hold");

  for (uint64_t k = 0; k < kv_count; ++k) {
    const std::string key = in.read_string(str_cat("metadata key #", k));
    const std::string what = str_cat("metadata '", key, "'");
    const GgufValueType type = read_value_type(in, what, path);
    GgufValue value = read_value(in, type, what, path, 0);
    TULU_CHECK(g->metadata_.emplace(key, std::move(value)).second, path, ": metadata key '", key,
               "' appears twice");
  }
  if (const GgufValue* a = g->find("general.alignment")) {
    TULU_CHECK(a->type == GgufValueType::Uint32, path,
               ": metadata 'general.alignment' must be uint32, got ",
               gguf_value_type_name(static_cast<uint32_t>(a->type)));
    TULU_CHECK(a->u != 0 && (a->u & (a->u - 1)) == 0, path,
               ": metadata 'general.alignment' = ", a->u, " is not a power of two");
    g->alignment_ = a->u;
  }

  g->tensors_.reserve(static_cast<size_t>(tensor_count));
  std::map<std::string, size_t> seen;
  for (uint64_t t = 0; t < tensor_count; ++t) {
    GgufTensorInfo info;
    info.name = in.read_string(str_cat("tensor info #", t, " name"));
    const std::string what = str_cat("tensor '", info.name, "'");
    TULU_CHECK(seen.emplace(info.name, t).second, path, ": ", what, " appears twice");
    const uint32_t n_dims = in.read<uint32_t>(what + " n_dims");
    TULU_CHECK(n_dims >= 1 && n_dims <= kMaxDims, path, ": ", what, ": n_dims = ", n_dims,
               " (must be 1..", kMaxDims, ")");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = in.read<uint64_t>(what + " dims");
      TULU_CHECK(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                     (dim == 0 || numel <= std::numeric_limits<uint64_t>::max() / dim),
                 path, ": ", what, ": dimension ", dim, " overflows the element count");
      numel *= dim;
      info.ggml_dims.push_back(dim);
    }
    info.ggml_type = in.read<uint32_t>(what + " type");
    const auto type = ggml_type_info(info.ggml_type);
    TULU_CHECK(type.has_value(), path, ": ", what, ": unknown ggml tensor type ", info.ggml_type);
    TULU_CHECK(info.ggml_dims[0] % type->block_elements == 0, path, ": ", what,
               ": innermost dimension ", info.ggml_dims[0], " is not a multiple of the ",
               type->name, " block size ", type->block_elements);
    const uint64_t blocks = numel / type->block_elements;
    TULU_CHECK(blocks <= std::numeric_limits<uint64_t>::max() / type->block_bytes, path, ": ", what,
               ": byte size overflows");
    info.nbytes = blocks * type->block_bytes;
    info.offset = in.read<uint64_t>(what + " offset");
    TULU_CHECK(info.offset % g->alignment_ == 0, path, ": ", what, ": data offset ", info.offset,
               " is not a multiple of the alignment ", g->alignment_);
    g->tensors_.push_back(std::move(info));
  }

  const uint64_t header_end = in.position();
  g->data_offset_ = (header_end + g->alignment_ - 1) / g->alignment_ * g->alignment_;
  const uint64_t file_size = g->file_->size();
  TULU_CHECK(g->data_offset_ <= file_size || tensor_count == 0, path,
             ": truncated file: the data section would start at byte ", g->data_offset_,
             ", the file has ", file_size);
  const uint64_t data_size = g->data_offset_ <= file_size ? file_size - g->data_offset_ : 0;

  // Bounds and overlap: sort by offset, each must end before the next begins.
  std::vector<const GgufTensorInfo*> by_offset;
  for (auto& info : g->tensors_) {
    TULU_CHECK(info.offset <= data_size && info.nbytes <= data_size - info.offset, path,
               ": tensor '", info.name, "' (", ggml_type_label(info.ggml_type), ", ", info.nbytes,
               " bytes at data offset ", info.offset,
               ") extends past the end of the file (data section holds ", data_size, " bytes)");
    info.data = g->file_->data() + g->data_offset_ + info.offset;
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo& prev = *by_offset[k - 1];
    TULU_CHECK(prev.offset + prev.nbytes <= by_offset[k]->offset, path, ": tensor '", prev.name,
               "' overlaps tensor '", by_offset[k]->name, "' in the data section");
  }
  return g;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {
const GgufValue& require(const GgufFile& g, const std::string& key) {
  const GgufValue* v = g.find(key);
  TULU_CHECK(v != nullptr, g.path(), ": metadata key '", key, "' is missing");
  return *v;
}
std::string where(const GgufFile& g, const std::string& key) {
  return str_cat(g.path(), ": metadata '", key, "'");
}
const GgufValue& require_array(const GgufFile& g, const std::string& key) {
  const GgufValue& v = require(g, key);
  TULU_CHECK(v.type == GgufValueType::Array, where(g, key), ": expected an array, got ",
             gguf_value_type_name(static_cast<uint32_t>(v.type)));
  return v;
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  TULU_CHECK(v.type == GgufValueType::String, where(*this, key), ": expected a string, got ",
             gguf_value_type_name(static_cast<uint32_t>(v.type)));
  return v.s;
}
std::optional<std::string> GgufFile::opt_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}
int64_t GgufFile::get_int(const std::string& key) const {
  return as_int(require(*this, key), where(*this, key));
}
std::optional<int64_t> GgufFile::opt_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_int(key);
}
double GgufFile::get_float(const std::string& key) const {
  return as_float(require(*this, key), where(*this, key));
}
std::optional<double> GgufFile::opt_float(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get_float(key);
}
std::optional<bool> GgufFile::opt_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  TULU_CHECK(v->type == GgufValueType::Bool, where(*this, key), ": expected a bool, got ",
             gguf_value_type_name(static_cast<uint32_t>(v->type)));
  return v->b;
}
std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = require_array(*this, key);
  TULU_CHECK(v.array_type == GgufValueType::String, where(*this, key),
             ": expected an array of strings");
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(e.s);
  return out;
}
std::vector<float> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue& v = require_array(*this, key);
  std::vector<float> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(static_cast<float>(as_float(e, where(*this, key))));
  return out;
}
std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = require_array(*this, key);
  std::vector<int64_t> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(as_int(e, where(*this, key)));
  return out;
}

}  // namespace tulu

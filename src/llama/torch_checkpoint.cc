// PyTorch checkpoints (torch.save zip archives, pytorch_model*.bin) without Python:
// zip central directory → restricted unpickling of <archive>/data.pkl → tensors as views of
// the stored <archive>/data/<key> entries (copied only when misaligned or non-contiguous).
#include <cstring>

#include "core/error.h"
#include "llama/checkpoint.h"
#include "llama/torch_pickle.h"
#include "llama/torch_zip.h"

namespace tulu {

namespace {

// The archive's top folder: the entry "<name>/data.pkl" (torch names it after the file).
std::string find_archive_prefix(const ZipArchive& zip) {
  std::string prefix;
  for (const auto& [name, entry] : zip.entries()) {
    const size_t slash = name.find('/');
    if (slash == std::string::npos || name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
    TULU_CHECK(prefix.empty(), zip.path(), ": the archive holds more than one data.pkl");
    prefix = name.substr(0, slash + 1);
  }
  TULU_CHECK(!prefix.empty(), zip.path(), ": no '<archive>/data.pkl' entry: not a torch.save checkpoint");
  return prefix;
}

// Adds one tensor: checks that its strided extent lies inside its storage and the storage
// inside its zip entry (overflow-safe), then views it in place or gathers a copy.
void add_tensor(const std::string& name, const PickledTensor& t, const ZipArchive& zip, const std::string& prefix,
                TensorStore& store) {
  const std::string& path = zip.path();
  const std::string where = str_cat(path, ": tensor '", name, "'");
  const std::string entry_name = prefix + "data/" + t.storage_key;
  TULU_CHECK(zip.contains(entry_name), where, ": its storage entry '", entry_name, "' is missing from the archive");
  const ZipEntry& entry = zip.entry(entry_name);
  const uint64_t esize = dtype_size(t.dtype);
  uint64_t storage_bytes = 0;
  TULU_CHECK(!__builtin_mul_overflow(static_cast<uint64_t>(t.storage_numel), esize, &storage_bytes) &&
                 storage_bytes <= entry.size,
             where, ": storage '", t.storage_key, "' claims ", t.storage_numel, " elements but its entry has ",
             entry.size, " bytes");

  // Highest element index reached, and whether the strides are the contiguous ones.
  uint64_t numel = 1, last = 0, expected_stride = 1;
  bool contiguous = true;
  for (size_t d = t.shape.size(); d-- > 0;) {
    const auto size = static_cast<uint64_t>(t.shape[d]);
    const auto stride = static_cast<uint64_t>(t.stride[d]);
    uint64_t reach = 0;
    TULU_CHECK(!__builtin_mul_overflow(numel, size, &numel), where, ": shape ", shape_to_string(t.shape),
               " overflows");
    if (size == 0) continue;
    TULU_CHECK(!__builtin_mul_overflow(size - 1, stride, &reach) && !__builtin_add_overflow(last, reach, &last),
               where, ": strides overflow");
    if (size != 1 && stride != expected_stride) contiguous = false;
    TULU_CHECK(!__builtin_mul_overflow(expected_stride, size, &expected_stride), where, ": shape overflows");
  }
  uint64_t end = 0;  // index of the last element reached, relative to the storage
  TULU_CHECK(!__builtin_add_overflow(static_cast<uint64_t>(t.storage_offset), last, &end) &&
                 (numel == 0 || end < static_cast<uint64_t>(t.storage_numel)),
             where, ": shape ", shape_to_string(t.shape), " with offset ", t.storage_offset,
             " reaches past the end of storage '", t.storage_key, "' (", t.storage_numel, " elements)");

  const uint8_t* base = zip.file()->data() + entry.data_offset;
  const uint8_t* first = base + (numel == 0 ? 0 : static_cast<uint64_t>(t.storage_offset) * esize);
  if (contiguous) {
    store.add_view_or_copy(name, t.dtype, t.shape, first, path);
    return;
  }
  // Non-contiguous (rare in state dicts): gather into an owned row-major buffer. Broadcast
  // (stride-0) views larger than their storage are refused: a state dict has none, and a
  // corrupt file must not make us allocate unbounded memory.
  TULU_CHECK(numel <= static_cast<uint64_t>(t.storage_numel), where, ": non-contiguous shape ",
             shape_to_string(t.shape), " has more elements than its storage (", t.storage_numel, ")");
  auto* out = static_cast<uint8_t*>(store.allocate(numel * esize));
  std::vector<int64_t> index(t.shape.size(), 0);
  for (uint64_t i = 0; i < numel; ++i) {
    uint64_t element = 0;
    for (size_t d = 0; d < index.size(); ++d) element += static_cast<uint64_t>(index[d] * t.stride[d]);
    std::memcpy(out + i * esize, first + element * esize, esize);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  store.add(name, TensorView{t.dtype, t.shape, out}, path);
}

}  // namespace

void read_torch_checkpoint(const std::string& path, TensorStore& store) {
  auto file = MappedFile::open(path);
  // torch.save before 1.6 wrote a bare pickle stream (starting with the PROTO opcode).
  TULU_CHECK(file->size() == 0 || file->data()[0] != 0x80, path,
             ": not a zip archive: this is the legacy (torch < 1.6) torch.save format; re-save it with "
             "torch.save(state_dict, path) from a recent PyTorch, or convert it to safetensors");
  const ZipArchive zip(file);
  const std::string prefix = find_archive_prefix(zip);
  if (zip.contains(prefix + "byteorder")) {
    const std::string_view order = zip.bytes(zip.entry(prefix + "byteorder"));
    TULU_CHECK(order == "little", path, ": byteorder is '", order, "'; only little-endian checkpoints are supported");
  }
  const auto tensors = unpickle_state_dict(zip.bytes(zip.entry(prefix + "data.pkl")), path);
  store.keep_alive(file);  // before adding views (see read_safetensors)
  for (const auto& [name, tensor] : tensors) add_tensor(name, tensor, zip, prefix, store);
}

}  // namespace tulu

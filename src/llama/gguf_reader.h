// GGUF files (llama.cpp's model format, versions 2 and 3): the header, the metadata
// key/value pairs and the tensor table, validated in full at open, with tensor data as
// views into a memory map (no copy).
//
// Layout (little-endian): "GGUF" u32 version, u64 tensor_count, u64 kv_count; kv_count ×
// (string key, u32 value type, value); tensor_count × (string name, u32 n_dims, u64
// dims[n_dims] in GGML order — innermost first, the reverse of PyTorch's —, u32 ggml type,
// u64 offset); padding to `general.alignment` (default 32); the data section. A string is
// u64 length + bytes (no terminator); an array is u32 element type, u64 count, elements.
// Tensor offsets are relative to the data section and multiples of the alignment.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "llama/gguf_types.h"

namespace tulu {

// One metadata value. `array` holds the elements of an Array (all of type array_type);
// integers are kept in `u` / `i` by signedness, floats in `f`.
struct GgufValue {
  GgufValueType type = GgufValueType::Uint8;
  GgufValueType array_type = GgufValueType::Uint8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  std::string s;
  std::vector<GgufValue> array;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ggml_dims;  // innermost first (GGML order)
  uint32_t ggml_type = 0;
  uint64_t offset = 0;            // relative to the data section
  uint64_t nbytes = 0;            // validated: dims × type size
  const uint8_t* data = nullptr;  // into the mapping

  // PyTorch order (outermost first).
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and validates the whole file; throws tulu::Error naming the file and the field or
  // tensor at fault (bad magic, unsupported version, truncation, unknown value or tensor
  // type, duplicate keys or names, offsets out of bounds or misaligned, overlapping data).
  static std::unique_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::shared_ptr<MappedFile>& mapping() const { return file_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // Checked accessors: throw tulu::Error naming the file and key when the key is absent
  // (the non-optional ones) or has another type.
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }
  std::string get_string(const std::string& key) const;
  std::optional<std::string> opt_string(const std::string& key) const;
  // Any integer type, range-checked into int64.
  int64_t get_int(const std::string& key) const;
  std::optional<int64_t> opt_int(const std::string& key) const;
  // Float32/Float64 (integers accepted too).
  double get_float(const std::string& key) const;
  std::optional<double> opt_float(const std::string& key) const;
  std::optional<bool> opt_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;

 private:
  GgufFile() = default;
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace tulu

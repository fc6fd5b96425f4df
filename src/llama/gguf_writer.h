// Writing GGUF v3 files: metadata in insertion order, tensors laid out in the order added,
// each at an offset aligned to 32 bytes (general.alignment's default), data produced one
// tensor at a time so that a model larger than memory can be written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "llama/gguf_reader.h"
#include "tensor/dtype.h"

namespace tulu {

class GgufWriter {
 public:
  void set_uint32(const std::string& key, uint32_t value);
  void set_int32(const std::string& key, int32_t value);
  void set_float32(const std::string& key, float value);
  void set_bool(const std::string& key, bool value);
  void set_string(const std::string& key, const std::string& value);
  void set_string_array(const std::string& key, const std::vector<std::string>& values);
  void set_float32_array(const std::string& key, const std::vector<float>& values);
  void set_int32_array(const std::string& key, const std::vector<int32_t>& values);
  // Any value as read from a GGUF file (copying metadata from one file to another).
  void set_value(const std::string& key, const GgufValue& value);

  // A tensor of `shape` in PyTorch order (written reversed, GGML order); its bytes come
  // from the fill callback of write(). Throws tulu::Error for a duplicate name or a shape
  // whose innermost dimension does not hold whole blocks of dtype.
  void add_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape);

  // fill(i, out) must write exactly the byte size of tensor i (in add order) into out.
  // progress(i) is called after tensor i is written (may be empty). Atomic: the file
  // appears complete or not at all.
  using Fill = std::function<void(size_t index, void* out)>;
  void write(const std::string& path, const Fill& fill,
             const std::function<void(size_t)>& progress = {}) const;

  size_t tensor_count() const { return tensors_.size(); }
  uint64_t tensor_bytes(size_t index) const { return tensors_.at(index).nbytes; }

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
  };
  void add_key(const std::string& key, uint32_t type, const std::string& encoded);

  std::vector<std::string> keys_;
  std::string metadata_;  // encoded key/value pairs
  std::vector<Tensor> tensors_;
};

}  // namespace tulu

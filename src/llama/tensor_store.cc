#include "llama/tensor_store.h"

#include "core/error.h"

namespace tulu {

void TensorStore::add(const std::string& name, const TensorView& view, const std::string& file) {
  auto [it, inserted] = tensors_.emplace(name, StoredTensor{view, file});
  if (!inserted) fail("tensor '", name, "' appears twice: in '", it->second.file, "' and in '", file, "'");
}

void* TensorStore::allocate(size_t nbytes) {
  // float[] from new is aligned to 16; over-allocate to reach 64-byte alignment.
  const size_t floats = (nbytes + 64 + sizeof(float) - 1) / sizeof(float);
  buffers_.emplace_back(new float[floats]);
  auto addr = reinterpret_cast<uintptr_t>(buffers_.back().get());
  addr = (addr + 63) & ~static_cast<uintptr_t>(63);
  return reinterpret_cast<void*>(addr);
}

const StoredTensor& TensorStore::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("missing tensor '", name, "'");
  return it->second;
}

}  // namespace tulu

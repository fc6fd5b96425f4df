#include "llama/tensor_store.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace tulu {

void TensorStore::add(const std::string& name, const TensorView& view, const std::string& file) {
  auto [it, inserted] = tensors_.emplace(name, StoredTensor{view, file});
  if (!inserted)
    fail("tensor '", name, "' appears twice: in '", it->second.file, "' and in '", file, "'");
}

void TensorStore::add_view_or_copy(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                   const void* data, const std::string& file) {
  TensorView view;
  view.dtype = dtype;
  view.shape = std::move(shape);
  view.data = data;
  const auto address = reinterpret_cast<uintptr_t>(data);
  if (address % dtype_alignment(dtype) != 0) {
    const size_t nbytes = view.nbytes();
    void* copy = allocate(nbytes);
    if (nbytes != 0) std::memcpy(copy, data, nbytes);
    view.data = copy;
    ++copied_;
  }
  add(name, view, file);
}

void* TensorStore::allocate(size_t nbytes) {
  // float[] from new is aligned to 16; over-allocate to reach 64-byte alignment.
  const size_t floats = (nbytes + 64 + sizeof(float) - 1) / sizeof(float);
  buffers_.emplace_back(new float[floats]);
  auto addr = reinterpret_cast<uintptr_t>(buffers_.back().get());
  addr = (addr + 63) & ~static_cast<uintptr_t>(63);
  return reinterpret_cast<void*>(addr);
}

void* TensorStore::allocate_pages(size_t nbytes) {
  page_buffers_.push_back(PageBuffer::allocate(nbytes, /*huge=*/true));
  return page_buffers_.back().data();
}

const MappedFile* TensorStore::sole_file() const {
  if (files_.size() != 1) return nullptr;
  for (const auto& [name, tensor] : tensors_)
    if (tensor.file != files_[0]->path()) return nullptr;
  return files_[0].get();
}

const MappedFile* TensorStore::file_holding(const void* p, size_t n) const {
  const auto begin = reinterpret_cast<uintptr_t>(p);
  for (const auto& file : files_) {
    const auto base = reinterpret_cast<uintptr_t>(file->data());
    if (begin >= base && begin - base < file->size() && n <= file->size() - (begin - base))
      return file.get();
  }
  return nullptr;
}

void TensorStore::release_file_bytes(const void* p, size_t n) const {
  if (const MappedFile* file = file_holding(p, n)) file->release(p, n);
}

const StoredTensor& TensorStore::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("missing tensor '", name, "'");
  return it->second;
}

}  // namespace tulu

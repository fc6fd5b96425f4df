// A set of named tensors read from checkpoint files, keeping the memory they view alive:
// mmap'ed files for data used in place, owned buffers for data that had to be copied
// (e.g. a PyTorch zip entry that is not aligned). Names are Hugging Face's.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/page_buffer.h"
#include "tensor/tensor.h"

namespace tulu {

struct StoredTensor {
  TensorView view;
  std::string file;  // which file it came from, for error messages
};

class TensorStore {
 public:
  // Throws tulu::Error if the name is already present (a tensor in two shards).
  void add(const std::string& name, const TensorView& view, const std::string& file);
  // Adds a view of `data` (which must stay alive: a kept-alive mapping) when it is aligned
  // for the dtype; otherwise copies the bytes into an owned, aligned buffer first, so that
  // kernels never see a misaligned float.
  void add_view_or_copy(const std::string& name, DType dtype, std::vector<int64_t> shape,
                        const void* data, const std::string& file);
  void keep_alive(std::shared_ptr<MappedFile> file) { files_.push_back(std::move(file)); }
  // Keeps any other memory that views point into (e.g. a mapped cache file) alive.
  void keep_alive_memory(std::shared_ptr<const void> memory) {
    memory_.push_back(std::move(memory));
  }
  // The one kept-alive file every tensor came from (all of a GGUF model's, copies made at
  // load included), or nullptr when there are none or several.
  const MappedFile* sole_file() const;
  // The kept-alive file whose bytes hold [p, p + n), or nullptr.
  const MappedFile* file_holding(const void* p, size_t n) const;
  // Allocates an owned buffer of nbytes (64-byte aligned) that lives as long as the store.
  void* allocate(size_t nbytes);
  // Allocates an owned, page-aligned PageBuffer (huge pages advised) of nbytes.
  void* allocate_pages(size_t nbytes);
  // Gives back the memory under [p, p + n) when it lies in one of the kept-alive files
  // (MappedFile::release: the bytes stay readable); otherwise does nothing.
  void release_file_bytes(const void* p, size_t n) const;

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws tulu::Error "missing tensor '<name>'" when absent.
  const StoredTensor& get(const std::string& name) const;
  const std::map<std::string, StoredTensor>& tensors() const { return tensors_; }
  size_t size() const { return tensors_.size(); }
  // How many tensors had to be copied (misaligned) rather than viewed in place.
  size_t copied_count() const { return copied_; }

 private:
  std::map<std::string, StoredTensor> tensors_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<std::unique_ptr<float[]>> buffers_;
  std::vector<PageBuffer> page_buffers_;
  std::vector<std::shared_ptr<const void>> memory_;
  size_t copied_ = 0;
};

}  // namespace tulu

// Reading and writing checkpoint files in Hugging Face layout.
//
// Readers accept, in a model directory as downloaded from the hub:
//   model.safetensors | model.safetensors.index.json + shards
//   pytorch_model.bin | pytorch_model.bin.index.json + shards (zip + pickle, torch.save)
// Preference order when several are present: sharded/single safetensors, then PyTorch.
// Every error names the file and, where known, the tensor.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "llama/tensor_store.h"

namespace tulu {

// One safetensors file: header validated (JSON, dtypes, offsets in bounds, no overlap,
// sizes equal shape × dtype), tensors added as views into the mmap (no copy).
void read_safetensors(const std::string& path, TensorStore& store);

// One torch.save zip archive (pytorch_model*.bin); a restricted pickle reader that
// accepts only what torch.save emits for a state dict; anything else is refused.
void read_torch_checkpoint(const std::string& path, TensorStore& store);

// Loads all weight files of a model directory (see the order above).
// Returns a description such as "safetensors (2 shards)" through *format if non-null.
TensorStore load_checkpoint_dir(const std::string& dir, std::string* format = nullptr);

// A tensor to write: name, dtype, shape, and its bytes (size must equal numel × dtype size).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// Writes one safetensors file atomically (temporary file, fsync, rename); tensors are laid
// out in the given order, data offsets aligned to 8 bytes as the reference writer does.
// `metadata` becomes the "__metadata__" entry (e.g. {"format": "pt"}).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {{"format", "pt"}});

// A tensor whose bytes are produced on demand, so that a checkpoint larger than memory can
// be written one tensor at a time: fill(out) must write exactly numel × dtype size bytes.
struct TensorSpecToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};
using FillTensor = std::function<void(size_t index, void* out)>;

// As write_safetensors, with each tensor's bytes produced by fill(i, buffer) for tensor i.
void write_safetensors_streamed(const std::string& path, const std::vector<TensorSpecToWrite>& tensors,
                                const FillTensor& fill,
                                const std::vector<std::pair<std::string, std::string>>& metadata = {{"format", "pt"}});

// Writes the weights of a model directory in the hub's layout: "model.safetensors" when
// shards == 1, else "model-0000i-of-0000N.safetensors" (contiguous groups of about equal
// bytes, in the given order) plus "model.safetensors.index.json" ({"metadata":
// {"total_size": bytes}, "weight_map": {name: file}}). Returns the file names written.
std::vector<std::string> write_safetensors_checkpoint(const std::string& dir,
                                                      const std::vector<TensorSpecToWrite>& tensors,
                                                      const FillTensor& fill, int shards);

}  // namespace tulu

// Reading and writing checkpoint files in Hugging Face layout.
//
// Readers accept, in a model directory as downloaded from the hub:
//   model.safetensors | model.safetensors.index.json + shards
//   pytorch_model.bin | pytorch_model.bin.index.json + shards (zip + pickle, torch.save)
// Preference order when several are present: sharded/single safetensors, then PyTorch.
// Every error names the file and, where known, the tensor.
#pragma once

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

}  // namespace tulu

// Writing the weights of a model directory in the hub's safetensors layout (single file or
// shards + index), as transformers' save_pretrained(safe_serialization=True) does.
#include <cstdio>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"

namespace tulu {

namespace {

uint64_t nbytes_of(const TensorSpecToWrite& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

// Splits [0, sizes.size()) into `shards` non-empty contiguous groups of about equal bytes;
// returns the first index of each group.
std::vector<size_t> shard_starts(const std::vector<uint64_t>& sizes, int shards) {
  uint64_t total = 0;
  for (uint64_t s : sizes) total += s;
  std::vector<size_t> starts = {0};
  uint64_t acc = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t groups_left = static_cast<size_t>(shards) - starts.size();
    const size_t tensors_left = sizes.size() - i;
    // Start a new shard when this group has reached its share of the bytes, or when every
    // remaining tensor is needed to keep the remaining shards non-empty.
    const bool full = acc >= total * starts.size() / static_cast<uint64_t>(shards);
    if (i > starts.back() && groups_left > 0 && (full || tensors_left == groups_left)) starts.push_back(i);
    acc += sizes[i];
  }
  return starts;
}

}  // namespace

std::vector<std::string> write_safetensors_checkpoint(const std::string& dir,
                                                      const std::vector<TensorSpecToWrite>& tensors,
                                                      const FillTensor& fill, int shards) {
  TULU_CHECK(shards >= 1 && static_cast<size_t>(shards) <= tensors.size(), "cannot split ", tensors.size(),
             " tensors into ", shards, " shards");
  if (shards == 1) {
    write_safetensors_streamed(join_path(dir, "model.safetensors"), tensors, fill);
    return {"model.safetensors"};
  }
  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    sizes.push_back(nbytes_of(t));
    total += sizes.back();
  }
  const std::vector<size_t> starts = shard_starts(sizes, shards);
  std::vector<std::string> files;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t s = 0; s < starts.size(); ++s) {
    const size_t begin = starts[s];
    const size_t end = s + 1 < starts.size() ? starts[s + 1] : tensors.size();
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, starts.size());
    const std::vector<TensorSpecToWrite> part(tensors.begin() + static_cast<std::ptrdiff_t>(begin),
                                              tensors.begin() + static_cast<std::ptrdiff_t>(end));
    write_safetensors_streamed(join_path(dir, name), part, [&](size_t i, void* out) { fill(begin + i, out); });
    for (const auto& t : part) weight_map[t.name] = name;
    files.push_back(name);
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(join_path(dir, "model.safetensors.index.json"), index.dump(2) + "\n");
  files.push_back("model.safetensors.index.json");
  return files;
}

}  // namespace tulu

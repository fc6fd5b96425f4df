#include "train/grad_dump.h"

#include "core/file_io.h"
#include "llama/checkpoint.h"

namespace tulu {

std::string grad_dump_batch_path(const std::string& safetensors_path) {
  const std::string suffix = ".safetensors";
  std::string stem = safetensors_path;
  if (stem.size() > suffix.size() && stem.ends_with(suffix)) {
    stem.resize(stem.size() - suffix.size());
  }
  return stem + ".batch.json";
}

void write_grad_tensors(const std::string& safetensors_path, const ParamLayout& layout,
                        const float* grads) {
  std::vector<TensorToWrite> tensors;
  tensors.reserve(layout.entries().size());
  for (const ParamEntry& entry : layout.entries()) {
    tensors.push_back({entry.name, DType::F32, entry.shape, grads + entry.offset});
  }
  write_safetensors(safetensors_path, tensors, {{"format", "pt"}});
}

void write_grad_dump(const std::string& safetensors_path, const ParamLayout& layout,
                     const float* grads, const std::vector<DumpedRow>& rows) {
  write_grad_tensors(safetensors_path, layout, grads);

  Json batch = Json::array();
  for (const DumpedRow& row : rows) {
    batch.push_back({{"input_ids", row.example->input_ids},
                     {"labels", row.example->labels},
                     {"micro_batch", row.micro_batch}});
  }
  write_file_atomic(grad_dump_batch_path(safetensors_path), batch.dump() + "\n");
}

}  // namespace tulu

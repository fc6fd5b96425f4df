// --dump-grads: the gradient of one optimizer step written for comparison with PyTorch.
//   FILE.safetensors   every parameter's gradient, fp32, under its Hugging Face name and
//                      PyTorch shape (layout order; a tied lm_head has no entry of its own)
//   FILE.batch.json    [{"input_ids": [...], "labels": [...], "micro_batch": k}, ...] the
//                      rows of that step in the order they were fed, labels unshifted as
//                      Hugging Face takes them (−100 = masked); micro_batch = the row's
//                      micro-batch index within the step (the gradient is the mean over
//                      micro-batches of each micro-batch's mean-token-loss gradient).
// FILE.batch.json replaces a trailing ".safetensors" of the given path (else it is appended).
#pragma once

#include <string>
#include <vector>

#include "train/param_set.h"
#include "train/sft_data.h"

namespace tulu {

struct DumpedRow {
  const SftExample* example = nullptr;
  int micro_batch = 0;
};

// The batch file's path for a gradient file path ("g.safetensors" → "g.batch.json").
std::string grad_dump_batch_path(const std::string& safetensors_path);

// Writes FILE.safetensors only (atomically): the part shared with DPO's dump, whose batch file
// lists preference pairs instead. grads: layout.total() floats.
void write_grad_tensors(const std::string& safetensors_path, const ParamLayout& layout,
                        const float* grads);

// Writes both files (atomically). grads: layout.total() floats.
void write_grad_dump(const std::string& safetensors_path, const ParamLayout& layout,
                     const float* grads, const std::vector<DumpedRow>& rows);

}  // namespace tulu

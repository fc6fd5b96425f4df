// The trainable parameters of a Llama model as one contiguous fp32 buffer (master
// weights), in llama_param_specs() order (HF names and shapes; a tied lm_head is not a
// separate parameter). The same layout is used for gradients and optimizer moments, so
// every per-parameter loop is a loop over one flat array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llama/config.h"
#include "llama/model.h"
#include "tensor/dtype.h"

namespace tulu {

struct ParamEntry {
  std::string name;            // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // PyTorch shape
  DType stored_dtype;          // dtype in the checkpoint we loaded (saved back in it)
  size_t offset = 0;           // first element in the flat buffer
  size_t numel = 0;
  // false for 1-D parameters (every RMSNorm weight). open-instruct's no_decay list ["bias",
  // "layer_norm.weight"] is a substring match that misses Llama's "input_layernorm.weight"
  // and so decays its norms; we exempt them all, as the issue asks (no effect at the Tulu 2
  // SFT recipe's weight_decay 0).
  bool weight_decay = true;
};

class ParamLayout {
 public:
  // Layout for a config; every stored_dtype = dtype.
  ParamLayout(const LlamaConfig& config, DType dtype);
  const std::vector<ParamEntry>& entries() const { return entries_; }
  size_t total() const { return total_; }
  // Throws tulu::Error naming the parameter when absent.
  const ParamEntry& at(const std::string& name) const;
  // Mutable (the loader records the stored dtype of each tensor).
  std::vector<ParamEntry>& mutable_entries() { return entries_; }

 private:
  std::vector<ParamEntry> entries_;
  size_t total_ = 0;
};

// Master weights loaded from a model: every tensor converted to fp32 (BF16/F16 exactly;
// quantized dtypes are refused: "training needs F32/BF16/F16 weights"). Returns the
// layout (with stored dtypes) and fills values (resized to layout.total()).
ParamLayout load_master_weights(const LlamaModel& model, std::vector<float>& values);

}  // namespace tulu

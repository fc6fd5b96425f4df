// ParamLayout from the parameter registry, and fp32 master weights from a loaded model.
#include "train/param_set.h"

#include "core/error.h"
#include "kernels/elementwise.h"

namespace tulu {

ParamLayout::ParamLayout(const LlamaConfig& config, DType dtype) {
  for (auto& spec : llama_param_specs(config)) {
    ParamEntry entry;
    entry.name = std::move(spec.name);
    entry.shape = std::move(spec.shape);
    entry.stored_dtype = dtype;
    entry.offset = total_;
    entry.numel = 1;
    for (int64_t d : entry.shape) entry.numel *= static_cast<size_t>(d);
    // Decay only the matrices. open-instruct's finetune.py exempts names containing "bias"
    // or "layer_norm.weight"; that substring test misses Llama's "input_layernorm.weight",
    // "post_attention_layernorm.weight" and "model.norm.weight", so there every RMSNorm
    // weight is decayed. We exempt all 1-D parameters (every norm), as the issue asks; it
    // only matters when weight_decay > 0 (the Tulu 2 SFT recipe uses 0).
    entry.weight_decay = entry.shape.size() > 1;
    total_ += entry.numel;
    entries_.push_back(std::move(entry));
  }
}

const ParamEntry& ParamLayout::at(const std::string& name) const {
  for (const auto& entry : entries_) {
    if (entry.name == name) return entry;
  }
  fail("parameter '", name, "' is not part of this model (", entries_.size(), " parameters)");
}

namespace {

// The model's weight views in llama_param_specs() order (the tied lm_head is not listed).
std::vector<const TensorView*> views_in_spec_order(const LlamaModel& model) {
  const LlamaWeights& w = model.weights();
  std::vector<const TensorView*> views = {&w.embed_tokens};
  for (const LayerWeights& layer : w.layers) {
    for (const TensorView* v : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj,
                                &layer.gate_proj, &layer.up_proj, &layer.down_proj,
                                &layer.input_layernorm, &layer.post_attention_layernorm}) {
      views.push_back(v);
    }
  }
  views.push_back(&w.norm);
  if (!model.config().tie_word_embeddings) views.push_back(&w.lm_head);
  return views;
}

}  // namespace

ParamLayout load_master_weights(const LlamaModel& model, std::vector<float>& values) {
  ParamLayout layout(model.config(), DType::F32);
  const std::vector<const TensorView*> views = views_in_spec_order(model);
  auto& entries = layout.mutable_entries();
  TULU_CHECK(views.size() == entries.size(), model.source(), ": model has ", views.size(),
             " weight tensors, the parameter registry lists ", entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorView& view = *views[i];
    TULU_CHECK(!dtype_is_quantized(view.dtype), model.source(), ": tensor '", entries[i].name,
               "' is ", dtype_name(model.store().get(entries[i].name).view.dtype),
               ": training needs F32/BF16/F16 weights (use the original Hugging Face checkpoint, "
               "not a quantized one)");
    TULU_CHECK(view.shape == entries[i].shape, model.source(), ": tensor '", entries[i].name,
               "': expected shape ", shape_to_string(entries[i].shape), ", model has ",
               shape_to_string(view.shape));
    entries[i].stored_dtype = view.dtype;
  }
  values.assign(layout.total(), 0.0f);
  for (size_t i = 0; i < entries.size(); ++i) {
    convert_to_f32(views[i]->data, views[i]->dtype, entries[i].numel,
                   values.data() + entries[i].offset);
  }
  return layout;
}

}  // namespace tulu

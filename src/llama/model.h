// A loaded Llama model: its config and its weights as views (HF names, HF layout, no
// permutation) into the checkpoint files. Immutable after load; shareable across threads.
// On CPUs with the AVX-512 VNNI kernels, Q4_0/Q8_0 linear weights are repacked at load into
// the 16-row interleaved layouts (llama/weight_repack.h): weights() then views those
// copies, while store() keeps the file's views as read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "llama/config.h"
#include "llama/tensor_store.h"

namespace tulu {

// Shapes are PyTorch's [out_features, in_features] for linear weights.
struct LayerWeights {
  TensorView input_layernorm;           // [hidden]
  TensorView q_proj, k_proj, v_proj;    // [q_dim, hidden], [kv_dim, hidden], [kv_dim, hidden]
  TensorView o_proj;                    // [hidden, q_dim]
  TensorView post_attention_layernorm;  // [hidden]
  TensorView gate_proj, up_proj;        // [intermediate, hidden]
  TensorView down_proj;                 // [hidden, intermediate]
};

struct LlamaWeights {
  TensorView embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  TensorView norm;     // [hidden]
  TensorView lm_head;  // [vocab, hidden]; the embed_tokens view when tied
};

// One entry of the parameter registry: Hugging Face name and expected shape.
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Every parameter the config implies, in the order transformers lists them
// (embed, layers 0..L-1 {q,k,v,o,gate,up,down,input_layernorm,post_attention_layernorm}, norm,
// lm_head unless tied). Drives loading, saving, init and parameter counting.
std::vector<ParamSpec> llama_param_specs(const LlamaConfig& config);

// Buffers that old checkpoints carry besides parameters and that loading ignores
// ("model.layers.N.self_attn.rotary_emb.inv_freq": recomputed from rope_theta).
bool is_ignorable_buffer(const std::string& name);

class LlamaModel {
 public:
  // Loads config.json (+ generation_config.json if present) and the weights from a model
  // directory; checks every tensor: missing, unexpected (names outside the registry,
  // except ignorable buffers such as rotary_emb.inv_freq), wrong shape. Errors name the
  // file and tensor.
  // Tied embeddings: lm_head.weight absent → lm_head is the embed_tokens view; present while
  // tie_word_embeddings is true → ignored, as transformers' tie_weights() does.
  static std::unique_ptr<LlamaModel> load(const std::string& dir);
  // Binds already-read tensors (used by load and by tests).
  LlamaModel(LlamaConfig config, TensorStore store, std::string source);

  const LlamaConfig& config() const { return config_; }
  // generation_config.json when the directory has one (else all fields empty).
  const GenerationConfig& generation_config() const { return generation_config_; }
  // "safetensors (2 shards)", "pytorch (1 file)"; empty when built from a store directly.
  const std::string& weight_format() const { return weight_format_; }
  const LlamaWeights& weights() const { return weights_; }
  const TensorStore& store() const { return store_; }
  const std::string& source() const { return source_; }
  // Parameters the config implies (a tied lm_head counted once, as transformers'
  // num_parameters() does).
  int64_t parameter_count() const;
  // Bytes of weights repacked at load (0 when none were).
  uint64_t repacked_bytes() const { return repacked_bytes_; }
  // The cache file the repacked weights are mapped from ("" when copied into memory), and
  // whether this load wrote it (llama/repack_cache.h).
  const std::string& repack_cache() const { return repack_cache_; }
  bool repack_cache_built() const { return repack_cache_built_; }
  // Whether prompt batches of this model's BF16 weights round their activations to bf16
  // (kernels/matmul.h): the process-wide mode when On or Off; under Auto (the default),
  // true for a model loaded from a GGUF file (llama.cpp's numerics for its own format),
  // false for a Hugging Face directory or a store bound directly (the fp32 reference, as
  // transformers computes).
  bool bf16_activations() const;

 private:
  LlamaConfig config_;
  TensorStore store_;
  LlamaWeights weights_;
  std::string source_;  // directory or file it came from
  GenerationConfig generation_config_;
  std::string weight_format_;
  uint64_t repacked_bytes_ = 0;
  std::string repack_cache_;
  bool repack_cache_built_ = false;
  bool from_gguf_ = false;
};

}  // namespace tulu

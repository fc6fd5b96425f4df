// The Llama model configuration, read from a Hugging Face config.json
// (LlamaForCausalLM) with the fields that change the math, and generation_config.json.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace tulu {

struct RopeScaling {
  enum class Kind { None, Linear };
  Kind kind = Kind::None;
  double factor = 1.0;  // linear: positions are divided by factor
};

struct LlamaConfig {
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // absent in config.json = num_attention_heads (MHA)
  int head_dim = 0;             // absent = hidden_size / num_attention_heads
  int vocab_size = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;  // absent = 10000
  RopeScaling rope_scaling;
  int max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o biases; Llama 2 has none (true is refused)
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  std::string torch_dtype = "float32";  // informational; tensors carry their own dtypes
  std::vector<int> bos_token_ids;        // int or list in config.json
  std::vector<int> eos_token_ids;        // int or list
  std::optional<int> pad_token_id;

  int kv_dim() const { return num_key_value_heads * head_dim; }
  int q_dim() const { return num_attention_heads * head_dim; }
};

// Parses a config.json object; `source` names the file in error messages. Validates
// every value (positive sizes, heads dividing, known rope_scaling kind, hidden_act silu,
// model_type llama when present) and throws tulu::Error naming the field otherwise.
LlamaConfig parse_llama_config(const Json& json, const std::string& source);
LlamaConfig load_llama_config(const std::string& path);

// The config.json text we write (HF field names; loads in transformers).
Json llama_config_to_json(const LlamaConfig& config);

// generation_config.json: the fields that affect our generation defaults.
struct GenerationConfig {
  std::vector<int> eos_token_ids;  // overrides config.json's when present
  std::optional<int> bos_token_id;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int> top_k, max_new_tokens;
};
GenerationConfig parse_generation_config(const Json& json, const std::string& source);

}  // namespace tulu

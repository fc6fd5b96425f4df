#include "llama/config.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu {

namespace {

// Sizes above this are certainly a corrupt file; the limit also keeps every product of two
// sizes far from int64 overflow.
constexpr int64_t kMaxDimension = int64_t{1} << 24;
// 1e15 parameters (the largest models are ~1e12) and 65536 layers (they have ~130).
constexpr double kMaxParameters = 1e15;
constexpr int kMaxLayers = 1 << 16;

int positive_int(const Json& json, const std::string& key, const std::string& source) {
  const int64_t v = json_int(json, key, source);
  TULU_CHECK(v > 0 && v <= kMaxDimension, source, ": field '", key, "': expected an integer in [1, ",
             kMaxDimension, "], got ", v);
  return static_cast<int>(v);
}

double positive_number(const Json& json, const std::string& key, double fallback, const std::string& source) {
  const double v = json_opt_number(json, key, source).value_or(fallback);
  TULU_CHECK(std::isfinite(v) && v > 0, source, ": field '", key, "': expected a positive number, got ", v);
  return v;
}

// bos_token_id / eos_token_id: absent/null, an int, or a list of ints.
std::vector<int> token_id_list(const Json& json, const std::string& key, int vocab_size, const std::string& source) {
  std::vector<int> ids;
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return ids;
  auto add = [&](const Json& v) {
    TULU_CHECK(v.is_number_integer(), source, ": field '", key, "': expected an integer or a list of integers, got ",
               json_preview(*it));
    const int64_t id = v.get<int64_t>();
    TULU_CHECK(id >= 0 && (vocab_size <= 0 || id < vocab_size), source, ": field '", key, "': token id ", id,
               " is outside the vocabulary [0, ", vocab_size, ")");
    ids.push_back(static_cast<int>(id));
  };
  if (it->is_array()) {
    for (const Json& v : *it) add(v);
  } else {
    add(*it);
  }
  return ids;
}

RopeScaling parse_rope_scaling(const Json& json, const std::string& source) {
  RopeScaling scaling;
  auto it = json.find("rope_scaling");
  if (it == json.end() || it->is_null()) return scaling;
  TULU_CHECK(it->is_object(), source, ": field 'rope_scaling': expected null or an object, got ", json_preview(*it));
  // transformers < 4.43 writes "type", later versions "rope_type".
  std::optional<std::string> kind = json_opt_string(*it, "rope_type", source + ": rope_scaling");
  if (!kind) kind = json_opt_string(*it, "type", source + ": rope_scaling");
  TULU_CHECK(kind.has_value(), source, ": field 'rope_scaling': missing 'type' (or 'rope_type') in ",
             json_preview(*it));
  if (*kind == "default") return scaling;  // transformers' name for "no scaling"
  TULU_CHECK(*kind == "linear", source, ": field 'rope_scaling': unsupported type \"", *kind,
             "\" (supported: linear; dynamic, yarn, llama3 and others are not implemented)");
  scaling.kind = RopeScaling::Kind::Linear;
  scaling.factor = json_number(*it, "factor", source + ": rope_scaling");
  TULU_CHECK(std::isfinite(scaling.factor) && scaling.factor >= 1.0, source,
             ": field 'rope_scaling.factor': expected a number >= 1, got ", scaling.factor);
  return scaling;
}

}  // namespace

LlamaConfig parse_llama_config(const Json& json, const std::string& source) {
  TULU_CHECK(json.is_object(), source, ": expected a JSON object, got ", json_preview(json));
  if (auto model_type = json_opt_string(json, "model_type", source)) {
    TULU_CHECK(*model_type == "llama", source, ": field 'model_type': expected \"llama\", got \"", *model_type, "\"");
  }
  LlamaConfig c;
  c.hidden_size = positive_int(json, "hidden_size", source);
  c.intermediate_size = positive_int(json, "intermediate_size", source);
  c.num_hidden_layers = positive_int(json, "num_hidden_layers", source);
  c.num_attention_heads = positive_int(json, "num_attention_heads", source);
  c.num_key_value_heads = json.contains("num_key_value_heads") && !json["num_key_value_heads"].is_null()
                              ? positive_int(json, "num_key_value_heads", source)
                              : c.num_attention_heads;
  TULU_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, source, ": num_attention_heads (",
             c.num_attention_heads, ") is not a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  if (json.contains("head_dim") && !json["head_dim"].is_null()) {
    c.head_dim = positive_int(json, "head_dim", source);
  } else {
    TULU_CHECK(c.hidden_size % c.num_attention_heads == 0, source, ": hidden_size (", c.hidden_size,
               ") is not a multiple of num_attention_heads (", c.num_attention_heads, ") and head_dim is absent");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  TULU_CHECK(c.head_dim % 2 == 0, source, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  // q_dim()/kv_dim() are ints: keep heads × head_dim in range.
  TULU_CHECK(int64_t{c.num_attention_heads} * c.head_dim <= kMaxDimension, source, ": num_attention_heads × head_dim = ",
             int64_t{c.num_attention_heads} * c.head_dim, " exceeds ", kMaxDimension);
  c.vocab_size = positive_int(json, "vocab_size", source);
  // Bound the whole model so that every count and byte size derived from it (parameter
  // counts, tensor sizes, the registry's length) fits comfortably in 64 bits.
  {
    const double h = c.hidden_size, q = double(c.num_attention_heads) * c.head_dim,
                 kv = double(c.num_key_value_heads) * c.head_dim;
    const double per_layer = h * (q + 2 * kv) + q * h + 3.0 * h * c.intermediate_size;
    const double params = 2.0 * c.vocab_size * h + c.num_hidden_layers * per_layer;
    TULU_CHECK(params <= kMaxParameters && c.num_hidden_layers <= kMaxLayers, source,
               ": implausible model size (", params, " parameters, ", c.num_hidden_layers, " layers)");
  }
  c.rms_norm_eps = positive_number(json, "rms_norm_eps", 1e-6, source);
  c.rope_theta = positive_number(json, "rope_theta", 10000.0, source);
  c.rope_scaling = parse_rope_scaling(json, source);
  c.max_position_embeddings = json.contains("max_position_embeddings") && !json["max_position_embeddings"].is_null()
                                  ? positive_int(json, "max_position_embeddings", source)
                                  : 2048;
  c.tie_word_embeddings = json_opt_bool(json, "tie_word_embeddings", source).value_or(false);
  c.attention_bias = json_opt_bool(json, "attention_bias", source).value_or(false);
  c.mlp_bias = json_opt_bool(json, "mlp_bias", source).value_or(false);
  TULU_CHECK(!c.attention_bias, source, ": field 'attention_bias': true is not supported (Llama has no biases)");
  TULU_CHECK(!c.mlp_bias, source, ": field 'mlp_bias': true is not supported (Llama has no biases)");
  c.hidden_act = json_opt_string(json, "hidden_act", source).value_or("silu");
  TULU_CHECK(c.hidden_act == "silu", source, ": field 'hidden_act': expected \"silu\", got \"", c.hidden_act, "\"");
  c.torch_dtype = json_opt_string(json, "torch_dtype", source).value_or("float32");
  TULU_CHECK(c.torch_dtype == "float32" || c.torch_dtype == "float16" || c.torch_dtype == "bfloat16", source,
             ": field 'torch_dtype': expected float32, float16 or bfloat16, got \"", c.torch_dtype, "\"");
  c.bos_token_ids = token_id_list(json, "bos_token_id", c.vocab_size, source);
  c.eos_token_ids = token_id_list(json, "eos_token_id", c.vocab_size, source);
  if (auto pad = json_opt_int(json, "pad_token_id", source)) {
    // Early Llama conversions wrote -1 for "no pad token".
    if (*pad != -1) {
      TULU_CHECK(*pad >= 0 && *pad < c.vocab_size, source, ": field 'pad_token_id': token id ", *pad,
                 " is outside the vocabulary [0, ", c.vocab_size, ")");
      c.pad_token_id = static_cast<int>(*pad);
    }
  }
  return c;
}

LlamaConfig load_llama_config(const std::string& path) { return parse_llama_config(read_json_file(path), path); }

Json llama_config_to_json(const LlamaConfig& c) {
  auto ids = [](const std::vector<int>& v) -> Json {
    if (v.empty()) return nullptr;
    if (v.size() == 1) return v[0];
    return v;
  };
  Json json = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"vocab_size", c.vocab_size},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"max_position_embeddings", c.max_position_embeddings},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"hidden_act", c.hidden_act},
      {"attention_bias", c.attention_bias},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"pretraining_tp", 1},
      {"use_cache", true},
      {"torch_dtype", c.torch_dtype},
      {"bos_token_id", ids(c.bos_token_ids)},
      {"eos_token_id", ids(c.eos_token_ids)},
      {"transformers_version", "4.35.2"},
  };
  // Only write head_dim when it differs from the implied one (older transformers reject
  // nothing, but keep the file minimal and identical to what they write).
  if (c.head_dim != c.hidden_size / c.num_attention_heads) json["head_dim"] = c.head_dim;
  if (c.rope_scaling.kind == RopeScaling::Kind::Linear) {
    json["rope_scaling"] = {{"type", "linear"}, {"factor", c.rope_scaling.factor}};
  } else {
    json["rope_scaling"] = nullptr;
  }
  json["pad_token_id"] = c.pad_token_id ? Json(*c.pad_token_id) : Json(nullptr);
  return json;
}

GenerationConfig parse_generation_config(const Json& json, const std::string& source) {
  TULU_CHECK(json.is_object(), source, ": expected a JSON object, got ", json_preview(json));
  GenerationConfig g;
  g.eos_token_ids = token_id_list(json, "eos_token_id", /*vocab_size=*/0, source);
  if (auto bos = json_opt_int(json, "bos_token_id", source)) {
    TULU_CHECK(*bos >= 0 && *bos <= std::numeric_limits<int>::max(), source, ": field 'bos_token_id': invalid id ",
               *bos);
    g.bos_token_id = static_cast<int>(*bos);
  }
  g.do_sample = json_opt_bool(json, "do_sample", source);
  g.temperature = json_opt_number(json, "temperature", source);
  TULU_CHECK(!g.temperature || (std::isfinite(*g.temperature) && *g.temperature >= 0), source,
             ": field 'temperature': expected a number >= 0, got ", g.temperature.value_or(0));
  g.top_p = json_opt_number(json, "top_p", source);
  TULU_CHECK(!g.top_p || (*g.top_p > 0 && *g.top_p <= 1), source, ": field 'top_p': expected a number in (0, 1], got ",
             g.top_p.value_or(0));
  g.repetition_penalty = json_opt_number(json, "repetition_penalty", source);
  TULU_CHECK(!g.repetition_penalty || (std::isfinite(*g.repetition_penalty) && *g.repetition_penalty > 0), source,
             ": field 'repetition_penalty': expected a positive number, got ", g.repetition_penalty.value_or(0));
  if (auto top_k = json_opt_int(json, "top_k", source)) {
    TULU_CHECK(*top_k >= 0 && *top_k <= std::numeric_limits<int>::max(), source,
               ": field 'top_k': expected an integer >= 0, got ", *top_k);
    g.top_k = static_cast<int>(*top_k);
  }
  if (auto n = json_opt_int(json, "max_new_tokens", source)) {
    TULU_CHECK(*n > 0 && *n <= std::numeric_limits<int>::max(), source,
               ": field 'max_new_tokens': expected a positive integer, got ", *n);
    g.max_new_tokens = static_cast<int>(*n);
  }
  return g;
}

}  // namespace tulu

// The parameter registry and binding of loaded tensors to it.
#include "llama/model.h"

#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/matmul.h"
#include "llama/checkpoint.h"
#include "llama/gguf_llama.h"
#include "llama/weight_repack.h"

namespace tulu {

namespace {

std::string layer_prefix(int i) { return str_cat("model.layers.", i, "."); }

// At most `limit` names, then "and N more".
std::string name_list(const std::vector<std::string>& names, size_t limit = 5) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > limit) s += str_cat(" and ", names.size() - limit, " more");
  return s;
}

}  // namespace

std::vector<ParamSpec> llama_param_specs(const LlamaConfig& c) {
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, vocab = c.vocab_size;
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  std::vector<ParamSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {vocab, hidden}});
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = layer_prefix(i);
    specs.push_back({p + "self_attn.q_proj.weight", {q_dim, hidden}});
    specs.push_back({p + "self_attn.k_proj.weight", {kv_dim, hidden}});
    specs.push_back({p + "self_attn.v_proj.weight", {kv_dim, hidden}});
    specs.push_back({p + "self_attn.o_proj.weight", {hidden, q_dim}});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, hidden}});
    specs.push_back({p + "mlp.up_proj.weight", {inter, hidden}});
    specs.push_back({p + "mlp.down_proj.weight", {hidden, inter}});
    specs.push_back({p + "input_layernorm.weight", {hidden}});
    specs.push_back({p + "post_attention_layernorm.weight", {hidden}});
  }
  specs.push_back({"model.norm.weight", {hidden}});
  if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {vocab, hidden}});
  return specs;
}

bool is_ignorable_buffer(const std::string& name) {
  static const std::string prefix = "model.layers.";
  static const std::string suffix = ".self_attn.rotary_emb.inv_freq";
  if (name.size() <= prefix.size() + suffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  const std::string index = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  return index.find_first_not_of("0123456789") == std::string::npos;
}

LlamaModel::LlamaModel(LlamaConfig config, TensorStore store, std::string source)
    : config_(std::move(config)), store_(std::move(store)), source_(std::move(source)) {
  const std::vector<ParamSpec> specs = llama_param_specs(config_);
  std::set<std::string> expected;
  std::vector<std::string> missing;
  for (const auto& spec : specs) {
    expected.insert(spec.name);
    if (!store_.contains(spec.name)) {
      missing.push_back(spec.name);
      continue;
    }
    const StoredTensor& t = store_.get(spec.name);
    TULU_CHECK(t.view.shape == spec.shape, t.file, ": tensor '", spec.name, "': expected shape ",
               shape_to_string(spec.shape), ", file has ", shape_to_string(t.view.shape));
  }
  TULU_CHECK(missing.empty(), source_, ": ", missing.size(), " tensor(s) missing from the checkpoint: ",
             name_list(missing), " (config.json: ", config_.num_hidden_layers, " layers, tie_word_embeddings ",
             config_.tie_word_embeddings ? "true" : "false", ")");

  std::vector<std::string> unexpected;
  for (const auto& [name, t] : store_.tensors()) {
    if (expected.count(name) || is_ignorable_buffer(name)) continue;
    // A tied model that also stores lm_head: transformers ties it to the embedding and the
    // stored copy is unused; we do the same.
    if (config_.tie_word_embeddings && name == "lm_head.weight") continue;
    unexpected.push_back(name + "' in '" + t.file);
  }
  TULU_CHECK(unexpected.empty(), source_, ": ", unexpected.size(),
             " unexpected tensor(s) not part of a Llama model with this config.json: ", name_list(unexpected));

  auto view = [&](const std::string& name) { return store_.get(name).view; };
  weights_.embed_tokens = view("model.embed_tokens.weight");
  weights_.layers.resize(static_cast<size_t>(config_.num_hidden_layers));
  for (int i = 0; i < config_.num_hidden_layers; ++i) {
    const std::string p = layer_prefix(i);
    LayerWeights& w = weights_.layers[static_cast<size_t>(i)];
    w.input_layernorm = view(p + "input_layernorm.weight");
    w.q_proj = view(p + "self_attn.q_proj.weight");
    w.k_proj = view(p + "self_attn.k_proj.weight");
    w.v_proj = view(p + "self_attn.v_proj.weight");
    w.o_proj = view(p + "self_attn.o_proj.weight");
    w.post_attention_layernorm = view(p + "post_attention_layernorm.weight");
    w.gate_proj = view(p + "mlp.gate_proj.weight");
    w.up_proj = view(p + "mlp.up_proj.weight");
    w.down_proj = view(p + "mlp.down_proj.weight");
  }
  weights_.norm = view("model.norm.weight");
  weights_.lm_head = config_.tie_word_embeddings ? weights_.embed_tokens : view("lm_head.weight");
  WeightRepack repack = repack_weights_for_decode(weights_, store_);
  repacked_bytes_ = repack.bytes;
  repack_cache_ = std::move(repack.cache);
  repack_cache_built_ = repack.cache_built;
}

std::unique_ptr<LlamaModel> LlamaModel::load(const std::string& dir) {
  if (const auto gguf_path = find_gguf_model(dir)) {
    GgufLlama gguf = read_gguf_llama(*gguf_path);
    auto model = std::make_unique<LlamaModel>(std::move(gguf.config), std::move(gguf.store), *gguf_path);
    model->generation_config_ = std::move(gguf.generation);
    model->weight_format_ = std::move(gguf.format);
    model->from_gguf_ = true;
    return model;
  }
  TULU_CHECK(is_directory(dir), "model directory '", dir, "' does not exist or is not a directory");
  const std::string config_path = join_path(dir, "config.json");
  TULU_CHECK(file_exists(config_path), dir, ": config.json is missing (not a Hugging Face model directory?)");
  LlamaConfig config = load_llama_config(config_path);
  GenerationConfig generation;
  const std::string generation_path = join_path(dir, "generation_config.json");
  if (file_exists(generation_path)) {
    generation = parse_generation_config(read_json_file(generation_path), generation_path);
  }
  std::string format;
  TensorStore store = load_checkpoint_dir(dir, &format);
  auto model = std::make_unique<LlamaModel>(std::move(config), std::move(store), dir);
  model->generation_config_ = std::move(generation);
  model->weight_format_ = std::move(format);
  return model;
}

int64_t LlamaModel::parameter_count() const {
  int64_t total = 0;
  for (const auto& spec : llama_param_specs(config_)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    total += n;
  }
  return total;
}

bool LlamaModel::bf16_activations() const {
  switch (bf16_activations_mode()) {
    case Bf16Activations::On: return true;
    case Bf16Activations::Off: return false;
    case Bf16Activations::Auto: break;
  }
  return from_gguf_;
}

}  // namespace tulu

// Llama GGUF files → Hugging Face names, layout and config.
#include "llama/gguf_llama.h"

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu {

namespace {

// Per-layer names: GGUF suffix after "blk.N." ↔ HF suffix after "model.layers.N.".
const std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
};
const std::pair<const char*, const char*> kGlobalNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

// Splits "<prefix><digits>.<rest>"; false when the name does not have that form.
bool split_layer(const std::string& name, const std::string& prefix, std::string* index,
                 std::string* rest) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return false;
  *index = name.substr(prefix.size(), dot - prefix.size());
  if (index->find_first_not_of("0123456789") != std::string::npos || index->size() > 9)
    return false;
  *rest = name.substr(dot + 1);
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int to_int(const GgufFile& g, const std::string& key, int64_t v) {
  TULU_CHECK(v >= 0 && v <= 1'000'000'000, g.path(), ": metadata '", key, "' = ", v,
             " is out of range");
  return static_cast<int>(v);
}

}  // namespace

std::optional<std::string> hf_name_from_gguf(const std::string& name) {
  for (const auto& [gguf, hf] : kGlobalNames) {
    if (name == gguf) return std::string(hf);
  }
  std::string index, rest;
  if (!split_layer(name, "blk.", &index, &rest)) return std::nullopt;
  for (const auto& [gguf, hf] : kLayerNames) {
    if (rest == gguf) return "model.layers." + index + "." + hf;
  }
  return std::nullopt;
}

std::optional<std::string> gguf_name_from_hf(const std::string& name) {
  for (const auto& [gguf, hf] : kGlobalNames) {
    if (name == hf) return std::string(gguf);
  }
  std::string index, rest;
  if (!split_layer(name, "model.layers.", &index, &rest)) return std::nullopt;
  for (const auto& [gguf, hf] : kLayerNames) {
    if (rest == hf) return "blk." + index + "." + gguf;
  }
  return std::nullopt;
}

int permuted_head_count(const std::string& hf_name, const LlamaConfig& config) {
  if (ends_with(hf_name, ".self_attn.q_proj.weight")) return config.num_attention_heads;
  if (ends_with(hf_name, ".self_attn.k_proj.weight")) return config.num_key_value_heads;
  return 0;
}

size_t hf_row_of_gguf_row(size_t gguf_row, size_t rows, int heads) {
  const size_t head_rows = rows / static_cast<size_t>(heads);
  const size_t half = head_rows / 2;
  const size_t h = gguf_row / head_rows, within = gguf_row % head_rows;
  const size_t i = within / 2, j = within % 2;
  return h * head_rows + j * half + i;
}

LlamaConfig llama_config_from_gguf(const GgufFile& g) {
  const std::string arch = g.get_string("general.architecture");
  TULU_CHECK(arch == "llama", g.path(), ": general.architecture is '", arch,
             "'; only 'llama' models are supported");
  auto int_key = [&](const std::string& key) { return to_int(g, key, g.get_int(key)); };

  Json json;
  json["model_type"] = "llama";
  json["hidden_size"] = int_key("llama.embedding_length");
  json["intermediate_size"] = int_key("llama.feed_forward_length");
  json["num_hidden_layers"] = int_key("llama.block_count");
  json["num_attention_heads"] = int_key("llama.attention.head_count");
  if (g.has("llama.attention.head_count_kv"))
    json["num_key_value_heads"] = int_key("llama.attention.head_count_kv");
  if (g.has("llama.attention.key_length")) {
    const int key_length = int_key("llama.attention.key_length");
    if (g.has("llama.attention.value_length")) {
      TULU_CHECK(int_key("llama.attention.value_length") == key_length, g.path(),
                 ": llama.attention.value_length differs from key_length (not a Llama model)");
    }
    json["head_dim"] = key_length;
  }
  json["rms_norm_eps"] = g.get_float("llama.attention.layer_norm_rms_epsilon");
  if (const auto theta = g.opt_float("llama.rope.freq_base")) json["rope_theta"] = *theta;
  if (const auto context = g.opt_int("llama.context_length")) {
    json["max_position_embeddings"] = to_int(g, "llama.context_length", *context);
  }
  const std::string scaling = g.opt_string("llama.rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    json["rope_scaling"] = {{"type", "linear"},
                            {"factor", g.get_float("llama.rope.scaling.factor")}};
  } else if (const auto old_scale = g.opt_float("llama.rope.scale_linear");
             old_scale && *old_scale != 1.0) {
    json["rope_scaling"] = {{"type", "linear"}, {"factor", *old_scale}};
  } else {
    TULU_CHECK(scaling == "none", g.path(), ": llama.rope.scaling.type '", scaling,
               "' is not supported (supported: none, linear)");
  }
  const GgufTensorInfo* embed = g.find_tensor("token_embd.weight");
  TULU_CHECK(embed != nullptr && embed->ggml_dims.size() == 2, g.path(),
             ": tensor 'token_embd.weight' is missing or not 2-D");
  json["vocab_size"] =
      to_int(g, "token_embd.weight dims[1]", static_cast<int64_t>(embed->ggml_dims[1]));
  json["tie_word_embeddings"] = g.find_tensor("output.weight") == nullptr;
  if (const auto bos = g.opt_int("tokenizer.ggml.bos_token_id")) json["bos_token_id"] = *bos;
  if (const auto eos = g.opt_int("tokenizer.ggml.eos_token_id")) json["eos_token_id"] = *eos;
  if (const auto pad = g.opt_int("tokenizer.ggml.padding_token_id")) json["pad_token_id"] = *pad;
  LlamaConfig config = parse_llama_config(json, g.path() + " (llama.* metadata)");
  if (const auto rope_dims = g.opt_int("llama.rope.dimension_count")) {
    TULU_CHECK(*rope_dims == config.head_dim, g.path(),
               ": llama.rope.dimension_count = ", *rope_dims, " differs from the head dimension ",
               config.head_dim, " (partial rotary embeddings are not Llama's)");
  }
  return config;
}

GgufLlama read_gguf_llama(const std::string& path) {
  const std::unique_ptr<GgufFile> g = GgufFile::open(path);
  GgufLlama out;
  out.config = llama_config_from_gguf(*g);
  out.config.torch_dtype = "gguf";
  if (const auto eos = g->opt_int("tokenizer.ggml.eos_token_id")) {
    out.generation.eos_token_ids = {static_cast<int>(*eos)};
  }
  if (const auto bos = g->opt_int("tokenizer.ggml.bos_token_id"))
    out.generation.bos_token_id = static_cast<int>(*bos);
  out.store.keep_alive(g->mapping());

  std::set<std::string> types;
  for (const GgufTensorInfo& info : g->tensors()) {
    const auto hf = hf_name_from_gguf(info.name);
    // Names outside the Llama set are kept under their GGUF name, so that the model's
    // "unexpected tensor" check names them.
    const std::string name = hf.value_or(info.name);
    const auto dtype = dtype_from_ggml(info.ggml_type);
    TULU_CHECK(dtype.has_value(), path, ": tensor '", info.name, "' has type ",
               ggml_type_label(info.ggml_type), ", which this build cannot compute with");
    types.insert(std::string(dtype_name(*dtype)));
    const std::vector<int64_t> shape = info.shape();
    const int heads = permuted_head_count(name, out.config);
    if (heads == 0) {
      TensorView view;
      view.dtype = *dtype;
      view.shape = shape;
      view.data = info.data;
      // Data offsets are multiples of general.alignment in a page-aligned mapping, so this
      // copies only for a file with an alignment below the type's (e.g. 1).
      if (reinterpret_cast<uintptr_t>(info.data) % dtype_alignment(*dtype) != 0) {
        void* copy = out.store.allocate(static_cast<size_t>(info.nbytes));
        std::memcpy(copy, info.data, static_cast<size_t>(info.nbytes));
        view.data = copy;
      }
      out.store.add(name, view, path);
      continue;
    }
    TULU_CHECK(shape.size() == 2 && shape[0] % (2 * heads) == 0, path, ": tensor '", info.name,
               "' has shape ", shape_to_string(shape), ", whose rows do not split into ", heads,
               " heads of even size");
    const size_t rows = static_cast<size_t>(shape[0]);
    const size_t row_bytes = static_cast<size_t>(info.nbytes / rows);
    auto* dst = static_cast<uint8_t*>(out.store.allocate(static_cast<size_t>(info.nbytes)));
    for (size_t r = 0; r < rows; ++r) {
      std::memcpy(dst + hf_row_of_gguf_row(r, rows, heads) * row_bytes, info.data + r * row_bytes,
                  row_bytes);
    }
    TensorView view;
    view.dtype = *dtype;
    view.shape = shape;
    view.data = dst;
    out.store.add(name, view, path);
  }
  std::string type_list;
  for (const auto& t : types) type_list += (type_list.empty() ? "" : "+") + t;
  out.format =
      str_cat("gguf v", g->version(), " (", type_list, ", ", g->tensors().size(), " tensors)");
  return out;
}

std::optional<std::string> find_gguf_model(const std::string& path) {
  if (!is_directory(path)) {
    if (file_exists(path) && ends_with(path, ".gguf")) return path;
    return std::nullopt;
  }
  for (const char* hf : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                         "pytorch_model.bin.index.json"}) {
    if (file_exists(join_path(path, hf))) return std::nullopt;
  }
  std::vector<std::string> found;
  if (DIR* dir = opendir(path.c_str())) {
    while (const dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (ends_with(name, ".gguf") && !is_directory(join_path(path, name))) found.push_back(name);
    }
    closedir(dir);
  }
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  if (found.size() > 1) {
    std::string names;
    for (const auto& n : found) names += (names.empty() ? "'" : ", '") + n + "'";
    fail(path, ": holds several GGUF files (", names, "); name one with -m");
  }
  return join_path(path, found[0]);
}

}  // namespace tulu

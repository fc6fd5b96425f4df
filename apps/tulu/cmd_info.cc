// tulu info: what a model directory holds (config, parameters, dtypes, weight format,
// memory needed, tokenizer, chat format), after loading and validating every tensor.
#include <cstdio>
#include <iostream>
#include <map>

#include "command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "llama/gguf_llama.h"
#include "llama/model.h"
#include "llama/weight_repack.h"
#include "model_tokenizer.h"
#include "tokenizer/chat_format.h"

namespace tulu::cli {

namespace {

struct InfoOptions {
  ModelOptions model;
  bool json = false;
};

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2fB", static_cast<double>(n) / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(n) / 1e6);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

Json build_info(const LlamaModel& model, const std::string& dir) {
  const LlamaConfig& c = model.config();
  Json info;
  info["model_dir"] = dir;
  info["config"] = llama_config_to_json(c);
  info["parameters"] = model.parameter_count();
  info["weight_format"] = model.weight_format();

  // Per-dtype counts over the parameters the model uses (a tied lm_head once).
  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;
  uint64_t weight_bytes = 0;
  Json tensors = Json::array();
  for (const auto& spec : llama_param_specs(c)) {
    const StoredTensor& t = model.store().get(spec.name);
    auto& [count, bytes] = by_dtype[std::string(dtype_name(t.view.dtype))];
    ++count;
    bytes += t.view.nbytes();
    weight_bytes += t.view.nbytes();
    tensors.push_back({{"name", spec.name}, {"dtype", dtype_name(t.view.dtype)}, {"shape", t.view.shape}});
  }
  Json dtypes = Json::object();
  for (const auto& [name, cb] : by_dtype) dtypes[name] = {{"tensors", cb.first}, {"bytes", cb.second}};
  info["dtypes"] = dtypes;
  info["tensors"] = tensors;
  info["ignored_tensors"] = model.store().size() - tensors.size();
  info["weight_bytes"] = weight_bytes;
  // The KV cache holds fp32 keys and values for every layer and position (see session.h).
  uint64_t kv_bytes = 2ull * sizeof(float);
  for (uint64_t factor : {uint64_t(c.num_hidden_layers), uint64_t(c.max_position_embeddings), uint64_t(c.kv_dim())}) {
    TULU_CHECK(!__builtin_mul_overflow(kv_bytes, factor, &kv_bytes), dir, ": the KV cache size overflows 64 bits");
  }
  info["max_context"] = c.max_position_embeddings;
  info["kv_cache_bytes_at_max_context"] = kv_bytes;

  Json tokenizer = Json::object();
  const bool gguf = find_gguf_model(dir).has_value();
  if (gguf) {
    // A GGUF file carries its vocabulary (tokenizer.ggml.*) and chat template itself.
    tokenizer["gguf tokenizer.ggml.* vocabulary"] = true;
  } else {
    for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"}) {
      tokenizer[name] = file_exists(join_path(dir, name));
    }
  }
  info["tokenizer_files"] = tokenizer;
  info["chat_format"] = std::string(chat_format_name(chat_format_for_model(dir)));
  // Whether it came from a recognised chat_template or is the default for Llama models.
  bool detected = false;
  if (gguf) {
    const auto tmpl = gguf_chat_template(dir);
    detected = tmpl.has_value() && detect_chat_format(*tmpl).has_value();
  }
  const std::string tokenizer_config = join_path(dir, "tokenizer_config.json");
  if (!gguf && file_exists(tokenizer_config)) {
    const Json tc = read_json_file(tokenizer_config);
    if (tc.is_object() && tc.contains("chat_template") && tc["chat_template"].is_string()) {
      detected = detect_chat_format(tc["chat_template"].get<std::string>()).has_value();
    }
  }
  info["chat_format_source"] = detected ? "chat_template" : "default";
  return info;
}

void print_text(const Json& info) {
  const Json& c = info["config"];
  std::cout << "model:          " << info["model_dir"].get<std::string>() << "\n"
            << "architecture:   LlamaForCausalLM (" << c["num_hidden_layers"] << " layers, hidden "
            << c["hidden_size"] << ", intermediate " << c["intermediate_size"] << ", heads "
            << c["num_attention_heads"] << ", KV heads " << c["num_key_value_heads"] << ", vocab " << c["vocab_size"]
            << ")\n"
            << "rms_norm_eps:   " << c["rms_norm_eps"] << "\n"
            << "rope:           theta " << c["rope_theta"] << ", scaling "
            << (c["rope_scaling"].is_null() ? std::string("none") : c["rope_scaling"].dump()) << "\n"
            << "context:        " << c["max_position_embeddings"] << " positions\n"
            << "embeddings:     " << (c["tie_word_embeddings"].get<bool>() ? "tied" : "untied (separate lm_head)")
            << "\n"
            << "bos / eos:      " << c["bos_token_id"].dump() << " / " << c["eos_token_id"].dump() << "\n"
            << "parameters:     " << info["parameters"] << " (" << human_count(info["parameters"].get<int64_t>())
            << ")\n"
            << "weights:        " << info["weight_format"].get<std::string>() << ", "
            << human_bytes(info["weight_bytes"].get<uint64_t>()) << "\n";
  for (const auto& [name, d] : info["dtypes"].items()) {
    std::cout << "  " << name << ": " << d["tensors"] << " tensors, " << human_bytes(d["bytes"].get<uint64_t>())
              << "\n";
  }
  if (info["ignored_tensors"].get<int64_t>() > 0) {
    std::cout << "  (" << info["ignored_tensors"] << " stored tensors ignored: rotary buffers or a tied lm_head)\n";
  }
  std::cout << "KV cache:       " << human_bytes(info["kv_cache_bytes_at_max_context"].get<uint64_t>())
            << " per sequence at " << info["max_context"] << " tokens (fp32)\n"
            << "memory needed:  "
            << human_bytes(info["weight_bytes"].get<uint64_t>() + info["kv_cache_bytes_at_max_context"].get<uint64_t>())
            << " (weights, memory-mapped, + one full KV cache)\n"
            << "tokenizer:      ";
  bool any = false;
  for (const auto& [name, found] : info["tokenizer_files"].items()) {
    if (found.get<bool>() && name != "tokenizer_config.json") {
      std::cout << (any ? ", " : "") << name;
      any = true;
    }
  }
  std::cout << (any ? "" : "MISSING (no tokenizer.model or tokenizer.json)") << "\n"
            << "chat format:    " << info["chat_format"].get<std::string>()
            << (info["chat_format_source"] == "chat_template" ? " (recognised from the chat_template)"
                                                              : " (default for Llama models; no known chat_template)")
            << "\n";
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  app.add_option("-m,--model", o->model.model_dir, "model directory (config.json + weights)")->required();
  app.add_flag("--json", o->json, "print one JSON object (config, parameters, dtypes, tensors, memory)");
  return [o] {
    set_weight_repack(false);  // info describes the file; nothing is multiplied
    auto model = LlamaModel::load(o->model.model_dir);
    const Json info = build_info(*model, o->model.model_dir);
    if (o->json) {
      std::cout << info.dump(2) << "\n";
    } else {
      print_text(info);
    }
    return 0;
  };
}

const bool registered = register_command({"info", "show a model's config, parameters, dtypes and memory needs", 90,
                                          setup});

}  // namespace

}  // namespace tulu::cli

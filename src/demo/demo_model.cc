// The demo's starting model (see demo_model.h).
#include "demo/demo_model.h"

#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"
#include "llama/config.h"
#include "llama/model.h"
#include "llama/random_init.h"

namespace tulu {

DemoModelInfo write_demo_model(const std::string& dir, uint64_t seed,
                               const std::string& tokenizer_model,
                               const std::string& tokenizer_config) {
  TULU_CHECK(!tokenizer_model.empty(), "demo model: no tokenizer.model bytes");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  TULU_CHECK(!ec, "cannot create directory '", dir, "': ", ec.message());
  const Json config_json = {
      {"model_type", "llama"},
      {"hidden_size", 128},
      {"intermediate_size", 336},
      {"num_hidden_layers", 2},
      {"num_attention_heads", 4},
      {"num_key_value_heads", 4},
      {"vocab_size", 32000},
      {"rms_norm_eps", 1e-6},
      {"rope_theta", 10000.0},
      {"max_position_embeddings", 128},
      {"tie_word_embeddings", false},
      {"torch_dtype", "float32"},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
  };
  const LlamaConfig config = parse_llama_config(config_json, "the demo model");
  const std::vector<ParamSpec> specs = llama_param_specs(config);
  std::vector<TensorSpecToWrite> tensors;
  DemoModelInfo info;
  for (const ParamSpec& spec : specs) {
    tensors.push_back({spec.name, DType::F32, spec.shape});
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    info.parameters += n;
  }
  constexpr double kInitializerRange = 0.02;  // transformers' LlamaConfig default
  write_safetensors_checkpoint(
      dir, tensors,
      [&](size_t i, void* out) {
        fill_initial_weights(specs[i], seed, kInitializerRange, DType::F32, out);
      },
      1);
  write_file_atomic(join_path(dir, "config.json"), llama_config_to_json(config).dump(2) + "\n");
  const Json generation = {{"bos_token_id", 1}, {"eos_token_id", 2}};
  write_file_atomic(join_path(dir, "generation_config.json"), generation.dump(2) + "\n");
  write_file_atomic(join_path(dir, "tokenizer.model"), tokenizer_model);
  write_file_atomic(join_path(dir, "tokenizer_config.json"), tokenizer_config);
  info.layers = config.num_hidden_layers;
  info.hidden = config.hidden_size;
  info.vocab = config.vocab_size;
  return info;
}

}  // namespace tulu

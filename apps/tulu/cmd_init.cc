// tulu init: writes a seeded random (UNTRAINED) Llama model directory in exactly the
// Hugging Face layout, for tests and demos: config.json, generation_config.json,
// model.safetensors (or shards + index), tokenizer.model, tokenizer_config.json,
// special_tokens_map.json and a README.md saying the weights are random.
#include <filesystem>
#include <iostream>
#include <map>

#include "command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "embedded_files.h"
#include "llama/checkpoint.h"
#include "llama/config.h"
#include "llama/model.h"
#include "llama/random_init.h"

namespace tulu::cli {

namespace {

// The Llama 2 tokenizer embedded in the binary has this many pieces; a smaller vocabulary
// would let the tokenizer produce ids the model cannot embed.
constexpr int kTokenizerVocab = 32000;

struct Preset {
  int hidden, intermediate, layers, heads, kv_heads, max_positions;
  double eps;
};

// Shapes of known models (weights are always random).
const std::map<std::string, Preset>& presets() {
  static const std::map<std::string, Preset> table = {
      {"tiny", {64, 172, 2, 4, 2, 2048, 1e-6}},            // GQA, small enough for every test
      {"110m", {768, 2048, 12, 12, 12, 2048, 1e-5}},       // llama2.c stories110M shape
      {"1.1b", {2048, 5632, 22, 32, 4, 2048, 1e-5}},       // TinyLlama 1.1B shape
      {"7b", {4096, 11008, 32, 32, 32, 8192, 1e-6}},       // Tulu 2 7B shape
      {"13b", {5120, 13824, 40, 40, 40, 8192, 1e-6}},      // Tulu 2 13B shape
      {"70b", {8192, 28672, 80, 64, 8, 8192, 1e-5}},       // Tulu 2 70B shape (GQA)
  };
  return table;
}

struct InitOptions {
  std::string out_dir;
  std::string preset = "tiny";
  int hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int vocab = kTokenizerVocab, max_positions = 0;
  double eps = 0, rope_theta = 10000.0;
  bool tie = false, force = false;
  std::string dtype = "f32";
  int shards = 1;
  uint64_t seed = 0;
};

LlamaConfig build_config(const InitOptions& o) {
  const Preset& p = presets().at(o.preset);
  Json json = {
      {"model_type", "llama"},
      {"hidden_size", o.hidden ? o.hidden : p.hidden},
      {"intermediate_size", o.intermediate ? o.intermediate : p.intermediate},
      {"num_hidden_layers", o.layers ? o.layers : p.layers},
      {"num_attention_heads", o.heads ? o.heads : p.heads},
      {"vocab_size", o.vocab},
      {"rms_norm_eps", o.eps > 0 ? o.eps : p.eps},
      {"rope_theta", o.rope_theta},
      {"max_position_embeddings", o.max_positions ? o.max_positions : p.max_positions},
      {"tie_word_embeddings", o.tie},
      {"torch_dtype", o.dtype == "f32" ? "float32" : o.dtype == "bf16" ? "bfloat16" : "float16"},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
  };
  // --heads without --kv-heads means MHA, not the preset's GQA ratio.
  json["num_key_value_heads"] = o.kv_heads ? o.kv_heads : (o.heads ? o.heads : p.kv_heads);
  if (o.head_dim) json["head_dim"] = o.head_dim;
  // The same validation as loading: what we write must load.
  return parse_llama_config(json, "tulu init options");
}

DType parse_dtype_option(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  return DType::F16;
}

// Refuses a non-empty directory unless --force; with --force removes the weight files a
// previous model may have left (a stale index would shadow the new weights).
void prepare_directory(const InitOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(o.out_dir)) {
    TULU_CHECK(fs::is_directory(o.out_dir), "'", o.out_dir, "' exists and is not a directory");
    const bool empty = fs::is_empty(o.out_dir, ec);
    TULU_CHECK(empty || o.force, "'", o.out_dir, "' is not empty; use --force to overwrite the model files in it");
    for (const auto& entry : fs::directory_iterator(o.out_dir)) {
      const std::string name = entry.path().filename().string();
      const bool weights = name.ends_with(".safetensors") || name == "model.safetensors.index.json" ||
                           (name.starts_with("pytorch_model") && (name.ends_with(".bin") || name.ends_with(".json")));
      if (weights) fs::remove(entry.path(), ec);
    }
  } else {
    fs::create_directories(o.out_dir, ec);
    TULU_CHECK(!ec, "cannot create directory '", o.out_dir, "': ", ec.message());
  }
}

std::string readme_text(const LlamaConfig& c, const InitOptions& o, int64_t params) {
  return str_cat(
      "# UNTRAINED random Llama model\n\n",
      "This directory was written by `tulu init` (preset `", o.preset, "`, seed ", o.seed, ").\n",
      "Its weights are **random** (normal(0, 0.02), RMSNorm weights 1, as transformers initialises ",
      "a new LlamaForCausalLM): it has learned nothing and generates gibberish. It exists to ",
      "test and demonstrate tulu.cpp and loads unchanged in Hugging Face transformers.\n\n",
      "- parameters: ", params, "\n- hidden_size ", c.hidden_size, ", intermediate_size ", c.intermediate_size,
      ", layers ", c.num_hidden_layers, ", heads ", c.num_attention_heads, " (", c.num_key_value_heads,
      " KV heads), vocab ", c.vocab_size, "\n- dtype ", c.torch_dtype,
      ", tie_word_embeddings ", c.tie_word_embeddings ? "true" : "false", "\n",
      "- tokenizer: the Llama 2 SentencePiece tokenizer (tokenizer.model)\n");
}

const char* kSpecialTokensMap = R"({
  "bos_token": {"content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
  "eos_token": {"content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
  "unk_token": {"content": "<unk>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false}
}
)";

int run_init(const InitOptions& o) {
  const LlamaConfig config = build_config(o);
  TULU_CHECK(config.vocab_size >= kTokenizerVocab, "--vocab-size ", config.vocab_size,
             " is smaller than the tokenizer's ", kTokenizerVocab, " tokens");
  const DType dtype = parse_dtype_option(o.dtype);
  const std::vector<ParamSpec> specs = llama_param_specs(config);
  TULU_CHECK(o.shards <= static_cast<int>(specs.size()), "--shards ", o.shards, " exceeds the number of tensors (",
             specs.size(), ")");
  prepare_directory(o);

  std::vector<TensorSpecToWrite> tensors;
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const auto& s : specs) {
    tensors.push_back({s.name, dtype, s.shape});
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    params += n;
    bytes += static_cast<uint64_t>(n) * dtype_size(dtype);
  }
  constexpr double kInitializerRange = 0.02;  // transformers' LlamaConfig default
  std::vector<std::string> files = write_safetensors_checkpoint(
      o.out_dir, tensors,
      [&](size_t i, void* out) { fill_initial_weights(specs[i], o.seed, kInitializerRange, dtype, out); }, o.shards);

  auto write = [&](const std::string& name, std::string_view content) {
    write_file_atomic(join_path(o.out_dir, name), content);
    files.push_back(name);
  };
  write("config.json", llama_config_to_json(config).dump(2) + "\n");
  const Json generation = {{"_from_model_config", true}, {"bos_token_id", 1}, {"eos_token_id", 2},
                           {"transformers_version", "4.35.2"}};
  write("generation_config.json", generation.dump(2) + "\n");
  write("tokenizer.model", embedded_tokenizer_model());
  write("tokenizer_config.json", embedded_tokenizer_config());
  write("special_tokens_map.json", kSpecialTokensMap);
  write("README.md", readme_text(config, o, params));

  std::cout << "wrote an UNTRAINED random Llama model (" << params << " parameters, " << dtype_name(dtype) << ", "
            << bytes << " bytes of weights) to " << o.out_dir << ":\n";
  for (const auto& f : files) std::cout << "  " << f << "\n";
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  app.add_option("-o,--output", o->out_dir, "directory to write the model into")->required();
  std::vector<std::string> preset_names;
  for (const auto& [name, p] : presets()) preset_names.push_back(name);
  app.add_option("--preset", o->preset, "shape preset: tiny, 110m, 1.1b, 7b, 13b, 70b (others override it)")
      ->check(CLI::IsMember(preset_names))
      ->capture_default_str();
  auto positive = CLI::Range(1, 1 << 24);
  app.add_option("--hidden-size", o->hidden, "hidden size")->check(positive);
  app.add_option("--intermediate-size", o->intermediate, "MLP intermediate size")->check(positive);
  app.add_option("--layers", o->layers, "number of layers")->check(positive);
  app.add_option("--heads", o->heads, "attention heads")->check(positive);
  app.add_option("--kv-heads", o->kv_heads, "key/value heads (default: --heads, i.e. MHA)")->check(positive);
  app.add_option("--head-dim", o->head_dim, "head dimension (default hidden / heads)")->check(positive);
  app.add_option("--vocab-size", o->vocab, "vocabulary size (>= 32000, the tokenizer's)")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--max-position-embeddings", o->max_positions, "context length")->check(positive);
  app.add_option("--rms-norm-eps", o->eps, "RMSNorm epsilon")->check(CLI::Range(1e-12, 1.0));
  app.add_option("--rope-theta", o->rope_theta, "RoPE base")->check(CLI::Range(1.0, 1e12))->capture_default_str();
  app.add_flag("--tie-embeddings", o->tie, "tie lm_head to the token embedding");
  app.add_option("--dtype", o->dtype, "weight dtype: f32, bf16 or f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  app.add_option("--shards", o->shards, "number of safetensors shards (> 1 writes an index)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--seed", o->seed, "random seed")->capture_default_str();
  app.add_flag("--force", o->force, "write into a non-empty directory (replacing model files)");
  return [o] { return run_init(*o); };
}

const bool registered = register_command({"init", "write a seeded random (untrained) model in Hugging Face layout",
                                          10, setup});

}  // namespace

}  // namespace tulu::cli

// tulu quantize IN OUT --type f32|f16|bf16|q8_0|q4_0: a Hugging Face model directory (or a
// GGUF file: re-quantized from its dequantized weights, tokenizer metadata copied) → one GGUF
// v3 file in llama.cpp's layout, carrying the config (llama.* keys), the tokenizer
// (tokenizer.model's pieces, scores and types; BOS/EOS/UNK ids; add_bos/add_eos; the chat
// template) and the weights: 1-D tensors (norms) stay F32 as llama.cpp writes them, q/k rows
// permuted into Meta's interleaved RoPE order. Q8_0/Q4_0 use ggml's reference quantizers
// (tensor/quant_blocks.h) on every 2-D tensor, as convert_hf_to_gguf.py --outtype q8_0 does;
// a tensor whose rows are not whole 32-element blocks falls back to F16 (as the converter
// does), which is reported.
#include <iostream>

#include "command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "llama/gguf_llama.h"
#include "llama/gguf_writer.h"
#include "llama/model.h"
#include "llama/weight_repack.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"
#include "tokenizer/sentencepiece_model_file.h"
#include "tokenizer/tokenizer_config.h"

namespace tulu::cli {

namespace {

struct QuantizeOptions {
  std::string input, output, type = "f16", name;
};

struct TargetType {
  const char* option;
  DType dtype;
  uint32_t file_type;  // llama.cpp's LLAMA_FTYPE_* for general.file_type
};
const TargetType kTargets[] = {
    {"f32", DType::F32, 0},   {"f16", DType::F16, 1},   {"bf16", DType::BF16, 32},
    {"q8_0", DType::Q8_0, 7}, {"q4_0", DType::Q4_0, 2},
};

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

void write_config(GgufWriter& w, const LlamaConfig& c, const std::string& name,
                  uint32_t file_type) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", name);
  w.set_uint32("general.file_type", file_type);
  w.set_uint32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  w.set_uint32("llama.context_length", static_cast<uint32_t>(c.max_position_embeddings));
  w.set_uint32("llama.embedding_length", static_cast<uint32_t>(c.hidden_size));
  w.set_uint32("llama.block_count", static_cast<uint32_t>(c.num_hidden_layers));
  w.set_uint32("llama.feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  w.set_uint32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.set_uint32("llama.attention.head_count", static_cast<uint32_t>(c.num_attention_heads));
  w.set_uint32("llama.attention.head_count_kv", static_cast<uint32_t>(c.num_key_value_heads));
  if (c.head_dim * c.num_attention_heads != c.hidden_size) {
    w.set_uint32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
    w.set_uint32("llama.attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  w.set_float32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
  w.set_float32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  if (c.rope_scaling.kind == RopeScaling::Kind::Linear) {
    w.set_string("llama.rope.scaling.type", "linear");
    w.set_float32("llama.rope.scaling.factor", static_cast<float>(c.rope_scaling.factor));
  }
}

// tokenizer.model (+ tokenizer_config.json) → tokenizer.ggml.* as llama.cpp's converter
// writes them; tokens padded to the model's vocabulary with UNUSED "[PAD<i>]" entries.
void write_tokenizer(GgufWriter& w, const std::string& dir, const LlamaConfig& c) {
  const std::string model_path = join_path(dir, "tokenizer.model");
  TULU_CHECK(file_exists(model_path), dir,
             ": tokenizer.model is missing (GGUF files carry the SentencePiece "
             "vocabulary; a tokenizer.json alone is not supported)");
  const std::vector<SentencePieceEntry> pieces =
      read_sentencepiece_pieces(read_text_file(model_path), model_path);
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  int unk = 0;
  for (size_t id = 0; id < pieces.size(); ++id) {
    tokens.push_back(pieces[id].piece);
    scores.push_back(pieces[id].score);
    types.push_back(pieces[id].type);
    if (pieces[id].type == SentencePieceEntry::Unknown) unk = static_cast<int>(id);
  }
  for (size_t id = tokens.size(); id < static_cast<size_t>(c.vocab_size); ++id) {
    tokens.push_back(str_cat("[PAD", id, "]"));
    scores.push_back(-1000.0f);
    types.push_back(SentencePieceEntry::Unused);
  }
  const std::optional<TokenizerConfig> tc = read_tokenizer_config_in_dir(dir);
  auto id_of = [&](const std::optional<std::string>& piece, int fallback) {
    if (piece) {
      for (size_t id = 0; id < tokens.size(); ++id) {
        if (tokens[id] == *piece) return static_cast<int>(id);
      }
    }
    return fallback;
  };
  const int bos =
      id_of(tc ? tc->bos_token : std::nullopt, c.bos_token_ids.empty() ? 1 : c.bos_token_ids[0]);
  const int eos =
      id_of(tc ? tc->eos_token : std::nullopt, c.eos_token_ids.empty() ? 2 : c.eos_token_ids[0]);
  unk = id_of(tc ? tc->unk_token : std::nullopt, unk);

  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_float32_array("tokenizer.ggml.scores", scores);
  w.set_int32_array("tokenizer.ggml.token_type", types);
  w.set_uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
  w.set_uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  w.set_uint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(unk));
  if (c.pad_token_id && *c.pad_token_id >= 0) {
    w.set_uint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*c.pad_token_id));
  }
  w.set_bool("tokenizer.ggml.add_bos_token", tc && tc->add_bos_token ? *tc->add_bos_token : true);
  w.set_bool("tokenizer.ggml.add_eos_token", tc && tc->add_eos_token ? *tc->add_eos_token : false);
  if (tc && tc->chat_template) w.set_string("tokenizer.chat_template", *tc->chat_template);
}

int run_quantize(const QuantizeOptions& o) {
  const TargetType* target = nullptr;
  for (const auto& t : kTargets) {
    if (o.type == t.option) target = &t;
  }
  TULU_CHECK(target != nullptr, "--type ", o.type,
             " is not supported (supported: f32, f16, bf16, q8_0, q4_0)");
  set_weight_repack(false);  // the file's tensors are read as stored, never multiplied
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(o.input);
  const LlamaConfig& config = model->config();

  GgufWriter w;
  write_config(w, config, o.name.empty() ? base_name(o.input) : o.name, target->file_type);
  if (dtype_is_quantized(target->dtype)) w.set_uint32("general.quantization_version", 2);
  if (const auto gguf = find_gguf_model(o.input)) {
    // Re-quantizing a GGUF file: its tokenizer metadata is copied as it is.
    const auto source = GgufFile::open(*gguf);
    for (const auto& [key, value] : source->metadata()) {
      if (key.rfind("tokenizer.", 0) == 0) w.set_value(key, value);
    }
  } else {
    write_tokenizer(w, o.input, config);
  }

  const std::vector<ParamSpec> specs = llama_param_specs(config);
  std::vector<DType> dtypes;
  uint64_t total = 0;
  for (const auto& spec : specs) {
    const auto gguf_name = gguf_name_from_hf(spec.name);
    TULU_CHECK(gguf_name.has_value(), "no GGUF name for tensor '", spec.name, "'");
    DType dtype = spec.shape.size() == 1 ? DType::F32 : target->dtype;
    if (static_cast<uint64_t>(spec.shape.back()) % dtype_block_elements(dtype) != 0) {
      std::cout << "quantize: " << spec.name << " " << shape_to_string(spec.shape) << ": rows of "
                << spec.shape.back() << " are not whole " << dtype_name(dtype)
                << " blocks; writing F16\n";
      dtype = DType::F16;
    }
    dtypes.push_back(dtype);
    w.add_tensor(*gguf_name, dtype, spec.shape);
    total += w.tensor_bytes(w.tensor_count() - 1);
  }
  std::cout << "quantize: " << o.input << " (" << model->weight_format() << ") -> " << o.output
            << " (" << dtype_name(target->dtype) << ", " << specs.size() << " tensors, " << total
            << " bytes of weights)\n";

  w.write(
      o.output,
      [&](size_t i, void* out) {
        const ParamSpec& spec = specs[i];
        const std::vector<float> values = to_f32(model->store().get(spec.name).view);
        const size_t rows = spec.shape.size() == 1 ? 1 : static_cast<size_t>(spec.shape[0]);
        const size_t cols = values.size() / rows;
        const size_t row_bytes = static_cast<size_t>(w.tensor_bytes(i) / rows);
        const int heads = permuted_head_count(spec.name, config);
        for (size_t r = 0; r < rows; ++r) {
          const size_t source = heads ? hf_row_of_gguf_row(r, rows, heads) : r;
          encode_row(values.data() + source * cols, cols, dtypes[i],
                     static_cast<uint8_t*>(out) + r * row_bytes);
        }
      },
      [&](size_t i) {
        std::cout << "[" << (i + 1) << "/" << specs.size() << "] "
                  << *gguf_name_from_hf(specs[i].name) << " " << shape_to_string(specs[i].shape)
                  << " " << dtype_name(dtypes[i]) << "\n"
                  << std::flush;
      });
  std::cout << "wrote " << o.output << "\n";
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  app.add_option("input", o->input, "Hugging Face model directory (or a GGUF file)")->required();
  app.add_option("output", o->output, "GGUF file to write")->required();
  app.add_option("--type", o->type, "weight type of the 2-D tensors: f32, f16, bf16, q8_0, q4_0")
      ->capture_default_str();
  app.add_option("--name", o->name, "general.name (default: the input's base name)");
  return [o] { return run_quantize(*o); };
}

const bool registered = register_command(
    {"quantize", "convert a model to a GGUF file (f32, f16, bf16, q8_0, q4_0)", 60, setup});

}  // namespace

}  // namespace tulu::cli

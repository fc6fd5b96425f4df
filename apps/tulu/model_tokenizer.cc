#include "model_tokenizer.h"

#include "core/error.h"
#include "llama/gguf_llama.h"
#include "llama/gguf_reader.h"
#include "tokenizer/gguf_vocab.h"

namespace tulu::cli {

namespace {

GgufVocab read_vocab(const GgufFile& g) {
  const std::string model = g.get_string("tokenizer.ggml.model");
  TULU_CHECK(model == "llama", g.path(), ": tokenizer.ggml.model is '", model,
             "'; only 'llama' (SentencePiece) vocabularies are supported");
  GgufVocab v;
  v.source = g.path();
  v.tokens = g.get_string_array("tokenizer.ggml.tokens");
  v.scores = g.get_float_array("tokenizer.ggml.scores");
  for (int64_t t : g.get_int_array("tokenizer.ggml.token_type")) {
    TULU_CHECK(t >= 0 && t <= 1000, g.path(), ": tokenizer.ggml.token_type value ", t,
               " is out of range");
    v.types.push_back(static_cast<int>(t));
  }
  auto id = [&](const char* key, int fallback) {
    const auto value = g.opt_int(key);
    if (!value) return fallback;
    TULU_CHECK(*value >= 0 && *value < static_cast<int64_t>(v.tokens.size()), g.path(), ": ", key,
               " = ", *value, " is outside the vocabulary of ", v.tokens.size(), " tokens");
    return static_cast<int>(*value);
  };
  v.bos_id = id("tokenizer.ggml.bos_token_id", 1);
  v.eos_id = id("tokenizer.ggml.eos_token_id", 2);
  v.unk_id = id("tokenizer.ggml.unknown_token_id", 0);
  if (g.has("tokenizer.ggml.padding_token_id")) v.pad_id = id("tokenizer.ggml.padding_token_id", 0);
  v.add_bos = g.opt_bool("tokenizer.ggml.add_bos_token").value_or(true);
  v.add_eos = g.opt_bool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = g.opt_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  v.remove_extra_whitespaces =
      g.opt_bool("tokenizer.ggml.remove_extra_whitespaces").value_or(false);
  return v;
}

}  // namespace

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& model_path) {
  if (const auto gguf = find_gguf_model(model_path)) {
    return load_gguf_vocab_tokenizer(read_vocab(*GgufFile::open(*gguf)));
  }
  return Tokenizer::load_dir(model_path);
}

std::unique_ptr<Tokenizer> load_tokenizer_or_model(const std::string& path) {
  if (path.ends_with(".json")) return Tokenizer::load_json(path);
  if (path.ends_with(".model")) return Tokenizer::load_sentencepiece(path);
  return load_model_tokenizer(path);
}

std::optional<std::string> gguf_chat_template(const std::string& model_path) {
  const auto gguf = find_gguf_model(model_path);
  if (!gguf) return std::nullopt;
  return GgufFile::open(*gguf)->opt_string("tokenizer.chat_template");
}

ChatFormat chat_format_for_model(const std::string& model_path) {
  if (find_gguf_model(model_path)) {
    const auto chat_template = gguf_chat_template(model_path);
    if (chat_template) {
      if (const auto format = detect_chat_format(*chat_template)) return *format;
    }
    return ChatFormat::Tulu;
  }
  return chat_format_for_dir(model_path);
}

}  // namespace tulu::cli

#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/loaders.h"
#include "tokenizer/piece_decoding.h"

namespace tulu {

std::unique_ptr<Tokenizer> Tokenizer::load_json(const std::string& tokenizer_json_path) {
  return load_tokenizer_json(tokenizer_json_path, nullptr);
}

std::unique_ptr<Tokenizer> Tokenizer::load_sentencepiece(const std::string& tokenizer_model_path) {
  return load_sentencepiece_model(tokenizer_model_path, nullptr);
}

std::unique_ptr<Tokenizer> Tokenizer::load_dir(const std::string& dir) {
  TULU_CHECK(is_directory(dir), dir, ": not a directory");
  const std::optional<TokenizerConfig> config = read_tokenizer_config_in_dir(dir);
  const TokenizerConfig* config_ptr = config ? &*config : nullptr;
  const std::string json_path = join_path(dir, "tokenizer.json");
  if (file_exists(json_path)) return load_tokenizer_json(json_path, config_ptr);
  const std::string model_path = join_path(dir, "tokenizer.model");
  if (file_exists(model_path)) return load_sentencepiece_model(model_path, config_ptr);
  fail(dir, ": no tokenizer.json or tokenizer.model in this directory");
}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDecoder::finish(std::string text) {
  if (!started_ && !text.empty()) {
    started_ = true;
    if (text.front() == ' ') text.erase(0, 1);
  }
  return text;
}

std::string IncrementalDecoder::push(int id) {
  const std::string piece = tokenizer_.id_to_piece(id);  // throws for a bad id
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  const std::string token = piece_decoding::replace_metaspace(piece);
  const int byte = piece_decoding::byte_fallback_value(token);
  if (byte >= 0) {
    pending_bytes_.push_back(static_cast<char>(byte));
    return {};
  }
  std::string text;
  if (!pending_bytes_.empty()) {
    piece_decoding::append_byte_run(text, pending_bytes_);
    pending_bytes_.clear();
  }
  text += token;
  return finish(std::move(text));
}

std::string IncrementalDecoder::flush() {
  std::string text;
  if (!pending_bytes_.empty()) piece_decoding::append_byte_run(text, pending_bytes_);
  text = finish(std::move(text));
  reset();
  return text;
}

void IncrementalDecoder::reset() {
  pending_bytes_.clear();
  started_ = false;
}

}  // namespace tulu

// Files compiled into the binary (see embedded_tokenizer.S).
#pragma once

#include <string_view>

extern "C" {
extern const char tulu_embedded_tokenizer_model[];
extern const char tulu_embedded_tokenizer_model_end[];
extern const char tulu_embedded_tokenizer_config[];
extern const char tulu_embedded_tokenizer_config_end[];
}

namespace tulu::cli {

// data/llama2-tokenizer/tokenizer.model (Meta's Llama 2 SentencePiece model).
inline std::string_view embedded_tokenizer_model() {
  return {tulu_embedded_tokenizer_model,
          static_cast<size_t>(tulu_embedded_tokenizer_model_end - tulu_embedded_tokenizer_model)};
}

// data/llama2-tokenizer/tokenizer_config.json (LlamaTokenizer, with the Tulu 2 chat_template).
inline std::string_view embedded_tokenizer_config() {
  return {tulu_embedded_tokenizer_config,
          static_cast<size_t>(tulu_embedded_tokenizer_config_end - tulu_embedded_tokenizer_config)};
}

}  // namespace tulu::cli

// tokenizer_config.json (transformers): the parts that change how text becomes ids.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"

namespace tulu {

struct TokenizerConfig {
  std::string path;                   // for messages
  std::optional<bool> add_bos_token;  // absent: the tokenizer's own default
  std::optional<bool> add_eos_token;
  bool legacy = true;  // absent or null means true (transformers' default)
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> unk_token;
  std::vector<AddedToken> added_tokens;  // added_tokens_decoder, by id (flags as written)
  std::optional<std::string> chat_template;
};

// Reads and checks the file; throws tulu::Error naming the path and field.
TokenizerConfig read_tokenizer_config(const std::string& path);

// "<dir>/tokenizer_config.json" when it exists.
std::optional<TokenizerConfig> read_tokenizer_config_in_dir(const std::string& dir);

}  // namespace tulu

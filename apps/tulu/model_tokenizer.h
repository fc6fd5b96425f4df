// The tokenizer and chat format of the model `-m` names: a GGUF model's tokenizer.ggml.* vocabulary
// (see tokenizer/gguf_vocab.h), else Tokenizer::load_dir on the Hugging Face directory.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace tulu::cli {

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& model_path);

// load_model_tokenizer, or the tokenizer file itself when `path` names a tokenizer.json or
// tokenizer.model (the data-inspection commands need only the tokenizer).
std::unique_ptr<Tokenizer> load_tokenizer_or_model(const std::string& path);

// The chat template of a GGUF model (tokenizer.chat_template), nullopt when `model_path` is
// not a GGUF model or its file has none.
std::optional<std::string> gguf_chat_template(const std::string& model_path);

// The chat format of the model `-m` names: a GGUF model's tokenizer.chat_template when it is
// a known format, else chat_format_for_dir's choice (tokenizer_config.json, default Tulu).
ChatFormat chat_format_for_model(const std::string& model_path);

}  // namespace tulu::cli

// The two loaders behind Tokenizer::load_json / load_sentencepiece / load_dir. A config
// (tokenizer_config.json) may adjust BOS/EOS handling, special tokens and extra added
// tokens; nullptr means the file alone decides.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace tulu {

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path,
                                               const TokenizerConfig* config);
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path,
                                                    const TokenizerConfig* config);
// The same from the bytes of a serialized ModelProto (a tokenizer.model's content, or one
// built in memory, e.g. from a GGUF vocabulary); `path` names the source in messages.
std::unique_ptr<Tokenizer> load_sentencepiece_proto(const std::string& bytes, const std::string& path,
                                                    const TokenizerConfig* config);

}  // namespace tulu

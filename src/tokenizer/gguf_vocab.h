// A Llama tokenizer from the vocabulary a GGUF file carries (tokenizer.ggml.model "llama":
// SentencePiece BPE with byte fallback). The tokenizer layer does not read GGUF files; the
// caller (apps) reads the tokenizer.ggml.* keys into a GgufVocab. We rebuild an equivalent
// SentencePiece ModelProto in memory (pieces, scores, types; BPE, byte fallback, special ids;
// the Llama normalizer: identity rules, dummy prefix, whitespace kept and escaped to "▁")
// and load it through libsentencepiece, so that it encodes exactly as tokenizer.model does,
// with the same added-token splitting as Tokenizer::load_dir.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tulu {

struct GgufVocab {
  std::string source;  // the GGUF file, for messages
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int>
      types;  // SentencePiece piece types: 1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte
  int bos_id = 1, eos_id = 2, unk_id = 0;
  std::optional<int> pad_id;
  bool add_bos = true, add_eos = false;
  bool add_space_prefix = true;           // tokenizer.ggml.add_space_prefix
  bool remove_extra_whitespaces = false;  // tokenizer.ggml.remove_extra_whitespaces
};

// Checks sizes, types and ids (tulu::Error naming the source and field).
void validate_gguf_vocab(const GgufVocab& vocab);

// The serialized ModelProto described above.
std::string sentencepiece_proto_from_vocab(const GgufVocab& vocab);

std::unique_ptr<Tokenizer> load_gguf_vocab_tokenizer(const GgufVocab& vocab);

}  // namespace tulu

// GgufVocab → SentencePiece ModelProto bytes (protobuf wire format written by hand; field
// numbers from sentencepiece_model.proto) → the SentencePiece-backed tokenizer.
#include "tokenizer/gguf_vocab.h"

#include <cstring>

#include "core/error.h"
#include "tokenizer/loaders.h"
#include "tokenizer/sentencepiece_model_file.h"
#include "tokenizer/tokenizer_config.h"

namespace tulu {

namespace {

// sentencepiece_model.proto field numbers.
constexpr int kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr int kPiecePiece = 1, kPieceScore = 2, kPieceType = 3;
constexpr int kTrainerModelType = 3, kTrainerVocabSize = 4, kTrainerByteFallback = 35,
              kTrainerUnkId = 40, kTrainerBosId = 41, kTrainerEosId = 42, kTrainerPadId = 43;
constexpr int kNormalizerName = 1, kNormalizerAddDummyPrefix = 3,
              kNormalizerRemoveExtraWhitespaces = 4, kNormalizerEscapeWhitespaces = 5;
constexpr int kModelTypeBpe = 2;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type));
}
// int32 fields are encoded as 64-bit two's complement varints (so -1 takes 10 bytes).
void put_int(std::string& out, int field, int64_t v) {
  put_tag(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_float(std::string& out, int field, float v) {
  put_tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

}  // namespace

void validate_gguf_vocab(const GgufVocab& v) {
  const size_t n = v.tokens.size();
  TULU_CHECK(n > 0, v.source, ": tokenizer.ggml.tokens is empty");
  TULU_CHECK(v.scores.size() == n, v.source, ": tokenizer.ggml.scores has ", v.scores.size(),
             " entries, tokenizer.ggml.tokens has ", n);
  TULU_CHECK(v.types.size() == n, v.source, ": tokenizer.ggml.token_type has ", v.types.size(),
             " entries, tokenizer.ggml.tokens has ", n);
  for (size_t i = 0; i < n; ++i) {
    TULU_CHECK(v.types[i] >= SentencePieceEntry::Normal && v.types[i] <= SentencePieceEntry::Byte,
               v.source, ": tokenizer.ggml.token_type[", i, "] = ", v.types[i],
               " is not a SentencePiece piece type (1..6)");
    TULU_CHECK(!v.tokens[i].empty(), v.source, ": tokenizer.ggml.tokens[", i, "] is empty");
  }
  auto check_id = [&](int id, const char* key) {
    TULU_CHECK(id >= 0 && static_cast<size_t>(id) < n, v.source, ": ", key, " = ", id,
               " is outside the vocabulary of ", n, " tokens");
  };
  check_id(v.bos_id, "tokenizer.ggml.bos_token_id");
  check_id(v.eos_id, "tokenizer.ggml.eos_token_id");
  check_id(v.unk_id, "tokenizer.ggml.unknown_token_id");
  if (v.pad_id) check_id(*v.pad_id, "tokenizer.ggml.padding_token_id");
  TULU_CHECK(v.types[static_cast<size_t>(v.unk_id)] == SentencePieceEntry::Unknown, v.source,
             ": the unknown token ", v.unk_id, " ('", v.tokens[static_cast<size_t>(v.unk_id)],
             "') does not have token type 2 (unknown)");
}

std::string sentencepiece_proto_from_vocab(const GgufVocab& v) {
  std::string model;
  bool has_bytes = false;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    std::string piece;
    put_bytes(piece, kPiecePiece, v.tokens[i]);
    put_float(piece, kPieceScore, v.scores[i]);
    put_int(piece, kPieceType, v.types[i]);
    put_bytes(model, kModelPieces, piece);
    has_bytes = has_bytes || v.types[i] == SentencePieceEntry::Byte;
  }
  std::string trainer;
  put_int(trainer, kTrainerModelType, kModelTypeBpe);
  put_int(trainer, kTrainerVocabSize, static_cast<int64_t>(v.tokens.size()));
  put_int(trainer, kTrainerByteFallback, has_bytes ? 1 : 0);
  put_int(trainer, kTrainerUnkId, v.unk_id);
  put_int(trainer, kTrainerBosId, v.bos_id);
  put_int(trainer, kTrainerEosId, v.eos_id);
  put_int(trainer, kTrainerPadId, v.pad_id.value_or(-1));
  put_bytes(model, kModelTrainerSpec, trainer);
  std::string normalizer;
  put_bytes(normalizer, kNormalizerName, "identity");
  put_int(normalizer, kNormalizerAddDummyPrefix, v.add_space_prefix ? 1 : 0);
  put_int(normalizer, kNormalizerRemoveExtraWhitespaces, v.remove_extra_whitespaces ? 1 : 0);
  put_int(normalizer, kNormalizerEscapeWhitespaces, 1);
  put_bytes(model, kModelNormalizerSpec, normalizer);
  return model;
}

std::unique_ptr<Tokenizer> load_gguf_vocab_tokenizer(const GgufVocab& v) {
  validate_gguf_vocab(v);
  TokenizerConfig config;
  config.path = v.source;
  config.add_bos_token = v.add_bos;
  config.add_eos_token = v.add_eos;
  config.bos_token = v.tokens[static_cast<size_t>(v.bos_id)];
  config.eos_token = v.tokens[static_cast<size_t>(v.eos_id)];
  config.unk_token = v.tokens[static_cast<size_t>(v.unk_id)];
  return load_sentencepiece_proto(sentencepiece_proto_from_vocab(v),
                                  v.source + " (tokenizer.ggml.*)", &config);
}

}  // namespace tulu

// tokenizer.model (SentencePiece) → PieceTokenizer, behaving as Hugging Face's Llama
// tokenizers do with legacy: true: added tokens (the model's control and unknown pieces,
// its user-defined pieces, and tokenizer_config.json's added_tokens_decoder) are split out
// of the text first, and each remaining segment goes through SentencePiece on its own —
// so each segment gets SentencePiece's dummy-prefix "▁". Decoding uses the shared Llama
// decoder rules, not SentencePiece's Decode, so that it equals HF's decode.
#include <sentencepiece_processor.h>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/loaders.h"
#include "tokenizer/piece_tokenizer.h"
#include "tokenizer/sentencepiece_model_file.h"

namespace tulu {

namespace {

class SentencePieceEncoder final : public SegmentEncoder {
 public:
  SentencePieceEncoder(std::unique_ptr<sentencepiece::SentencePieceProcessor> processor,
                       std::string path)
      : processor_(std::move(processor)), path_(std::move(path)) {}

  void encode(std::string_view segment, bool /*at_text_start*/,
              std::vector<int>& ids) const override {
    std::vector<int> piece_ids;
    const auto status = processor_->Encode(segment, &piece_ids);
    TULU_CHECK(status.ok(), path_, ": SentencePiece failed to encode text: ", status.ToString());
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;  // Encode is const-safe
  std::string path_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path,
                                                    const TokenizerConfig* config) {
  if (config) {
    TULU_CHECK(config->legacy, config->path, ": 'legacy': false is not supported with ", path,
               " (Hugging Face's non-legacy Llama tokenization, which drops the \"\u2581\" "
               "prefix after special tokens); provide a tokenizer.json or use legacy: true");
  }
  return load_sentencepiece_proto(read_text_file(path), path, config);
}

std::unique_ptr<Tokenizer> load_sentencepiece_proto(const std::string& bytes, const std::string& path,
                                                    const TokenizerConfig* config) {
  const std::vector<SentencePieceEntry> entries = read_sentencepiece_pieces(bytes, path);

  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->LoadFromSerializedProto(bytes);
  TULU_CHECK(status.ok(), path, ": SentencePiece could not load the model: ", status.ToString());
  TULU_CHECK(processor->GetPieceSize() == static_cast<int>(entries.size()), path,
             ": SentencePiece reports ", processor->GetPieceSize(), " pieces, the file has ",
             entries.size());

  PieceTokenizerParts parts;
  parts.source = path;
  std::vector<AddedToken> added;
  for (size_t id = 0; id < entries.size(); ++id) {
    const SentencePieceEntry& entry = entries[id];
    parts.pieces.push_back(entry.piece);
    const bool control_or_unknown =
        entry.type == SentencePieceEntry::Control || entry.type == SentencePieceEntry::Unknown;
    if (control_or_unknown || entry.type == SentencePieceEntry::UserDefined) {
      added.push_back({static_cast<int>(id), entry.piece, control_or_unknown, false, false});
    }
  }
  if (config) {
    // added_tokens_decoder entries: override the flags of model pieces, or extend the vocabulary.
    // They are matched on the raw text whatever their `normalized` flag, as transformers' slow
    // LlamaTokenizer does (its trie ignores the flag); single_word is not implemented.
    for (const AddedToken& token : config->added_tokens) {
      TULU_CHECK(!token.single_word, config->path, ": added token '", token.content,
                 "': single_word added tokens are not supported");
      AddedToken raw = token;
      raw.normalized = false;
      if (token.id < static_cast<int>(parts.pieces.size())) {
        TULU_CHECK(parts.pieces[token.id] == token.content, config->path, ": added token ",
                   token.id, " is '", token.content, "' but ", path, " has '",
                   parts.pieces[token.id], "' there");
        bool replaced = false;
        for (AddedToken& existing : added) {
          if (existing.id == raw.id) existing = raw, replaced = true;
        }
        if (!replaced) added.push_back(raw);
      } else {
        TULU_CHECK(token.id == static_cast<int>(parts.pieces.size()), config->path,
                   ": added token '", token.content, "' has id ", token.id,
                   " but the vocabulary ends at ", parts.pieces.size(),
                   " (ids must be contiguous)");
        parts.pieces.push_back(token.content);
        added.push_back(raw);
      }
    }
  }

  const auto id_of = [&](const std::optional<std::string>& name, int fallback, const char* field) {
    if (!name) return fallback;
    for (size_t id = 0; id < parts.pieces.size(); ++id) {
      if (parts.pieces[id] == *name) return static_cast<int>(id);
    }
    fail(config->path, ": ", field, " '", *name, "' is not in the vocabulary of ", path);
  };
  parts.bos_id = id_of(config ? config->bos_token : std::nullopt, processor->bos_id(), "bos_token");
  parts.eos_id = id_of(config ? config->eos_token : std::nullopt, processor->eos_id(), "eos_token");
  parts.unk_id = id_of(config ? config->unk_token : std::nullopt, processor->unk_id(), "unk_token");
  // LlamaTokenizer's defaults: add_bos_token true, add_eos_token false.
  parts.add_bos = config && config->add_bos_token ? *config->add_bos_token : true;
  parts.add_eos = config && config->add_eos_token ? *config->add_eos_token : false;
  parts.added_tokens = std::move(added);
  parts.encoder = std::make_unique<SentencePieceEncoder>(std::move(processor), path);
  return std::make_unique<PieceTokenizer>(std::move(parts));
}

}  // namespace tulu

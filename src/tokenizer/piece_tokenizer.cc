#include "tokenizer/piece_tokenizer.h"

#include "core/error.h"
#include "tokenizer/piece_decoding.h"
#include "tokenizer/utf8.h"

namespace tulu {

PieceTokenizer::PieceTokenizer(PieceTokenizerParts parts)
    : source_(std::move(parts.source)),
      pieces_(std::move(parts.pieces)),
      bos_id_(parts.bos_id),
      eos_id_(parts.eos_id),
      unk_id_(parts.unk_id),
      add_bos_(parts.add_bos),
      add_eos_(parts.add_eos),
      encoder_(std::move(parts.encoder)) {
  const int size = static_cast<int>(pieces_.size());
  TULU_CHECK(size > 0, source_, ": empty vocabulary");
  TULU_CHECK(encoder_ != nullptr, source_, ": no encoder");
  for (const auto& [name, id] : {std::pair{"bos", bos_id_}, {"eos", eos_id_}, {"unk", unk_id_}}) {
    TULU_CHECK(id >= -1 && id < size, source_, ": ", name, " token id ", id,
               " is outside the vocabulary [0, ", size, ")");
  }
  TULU_CHECK(!add_bos_ || bos_id_ >= 0, source_,
             ": add_bos_token is set but there is no bos token");
  TULU_CHECK(!add_eos_ || eos_id_ >= 0, source_,
             ": add_eos_token is set but there is no eos token");
  special_.assign(pieces_.size(), 0);
  for (const AddedToken& token : parts.added_tokens) {
    TULU_CHECK(token.id >= 0 && token.id < size, source_, ": added token '", token.content,
               "' has id ", token.id, " outside the vocabulary [0, ", size, ")");
    TULU_CHECK(pieces_[token.id] == token.content, source_, ": added token id ", token.id, " is '",
               token.content, "' but the vocabulary has '", pieces_[token.id], "' there");
    if (token.special) special_[token.id] = 1;
  }
  decoded_pieces_.reserve(pieces_.size());
  byte_values_.reserve(pieces_.size());
  for (const std::string& piece : pieces_) {
    decoded_pieces_.push_back(piece_decoding::replace_metaspace(piece));
    byte_values_.push_back(piece_decoding::byte_fallback_value(decoded_pieces_.back()));
  }
  // Normalized added tokens are the encoder's business (matched after normalization).
  std::vector<AddedToken> raw_tokens;
  for (AddedToken& token : parts.added_tokens) {
    if (!token.normalized) raw_tokens.push_back(std::move(token));
  }
  splitter_ = AddedTokenSplitter(std::move(raw_tokens));
}

std::vector<int> PieceTokenizer::encode(std::string_view text, bool add_bos) const {
  const size_t bad = utf8::first_invalid_offset(text);
  TULU_CHECK(bad == text.size(), "tokenizer: text is not valid UTF-8 (byte offset ", bad, ")");
  std::vector<int> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && add_bos_) ids.push_back(bos_id_);
  for (const TextSegment& segment : splitter_.split(text)) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
    } else {
      encoder_->encode(segment.text, segment.text.data() == text.data(), ids);
    }
  }
  if (add_bos && add_eos_) ids.push_back(eos_id_);
  return ids;
}

void PieceTokenizer::check_id(int id) const {
  TULU_CHECK(id >= 0 && id < vocab_size(), "tokenizer: token id ", id,
             " is outside the vocabulary [0, ", vocab_size(), ")");
}

std::string PieceTokenizer::decode(std::span<const int> ids, bool skip_special) const {
  // HF: drop skipped specials, then Replace → ByteFallback → Fuse → Strip over the rest.
  std::string text;
  std::string byte_run;
  for (int id : ids) {
    check_id(id);
    if (skip_special && special_[id]) continue;
    if (byte_values_[id] >= 0) {
      byte_run.push_back(static_cast<char>(byte_values_[id]));
      continue;
    }
    if (!byte_run.empty()) {
      piece_decoding::append_byte_run(text, byte_run);
      byte_run.clear();
    }
    text += decoded_pieces_[id];
  }
  if (!byte_run.empty()) piece_decoding::append_byte_run(text, byte_run);
  if (!text.empty() && text.front() == ' ') text.erase(0, 1);
  return text;
}

std::string PieceTokenizer::id_to_piece(int id) const {
  check_id(id);
  return pieces_[id];
}

bool PieceTokenizer::is_special(int id) const {
  check_id(id);
  return special_[id];
}

}  // namespace tulu

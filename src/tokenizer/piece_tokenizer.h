// The one Tokenizer implementation behind both loaders: a vocabulary of pieces, the added
// tokens split out of the text first, a SegmentEncoder for the plain text between them
// (the tokenizer.json normalizer + BPE, or libsentencepiece), and the Llama decoder.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

// Encodes one stretch of plain text (no added tokens in it, not yet normalized).
class SegmentEncoder {
 public:
  virtual ~SegmentEncoder() = default;
  // Appends the ids of `segment` (valid UTF-8, non-empty). at_text_start: the segment
  // begins at offset 0 of the whole input (Metaspace's prepend_scheme "first" needs it).
  virtual void encode(std::string_view segment, bool at_text_start,
                      std::vector<int>& ids) const = 0;
};

struct PieceTokenizerParts {
  std::string source;                    // file the tokenizer came from, for messages
  std::vector<std::string> pieces;       // id → piece; its size is vocab_size()
  std::vector<AddedToken> added_tokens;  // split from the raw text unless `normalized`
  int bos_id = -1;                       // -1: none
  int eos_id = -1;
  int unk_id = -1;
  bool add_bos = true;   // what encode(text, add_bos=true) adds, as HF's
  bool add_eos = false;  // add_special_tokens=True does for this tokenizer
  std::unique_ptr<SegmentEncoder> encoder;
};

class PieceTokenizer final : public Tokenizer {
 public:
  // Checks the parts (ids in range, pieces present); throws tulu::Error naming `source`.
  explicit PieceTokenizer(PieceTokenizerParts parts);

  std::vector<int> encode(std::string_view text, bool add_bos) const override;
  std::string decode(std::span<const int> ids, bool skip_special) const override;
  std::string id_to_piece(int id) const override;
  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  bool is_special(int id) const override;
  int bos_id() const override { return bos_id_; }
  int eos_id() const override { return eos_id_; }
  int unk_id() const override { return unk_id_; }

 private:
  void check_id(int id) const;

  std::string source_;
  std::vector<std::string> pieces_;
  std::vector<std::string> decoded_pieces_;  // id → piece with "▁" → " "
  std::vector<int> byte_values_;             // id → byte of a <0xNN> piece, or -1
  std::vector<uint8_t> special_;  // id → 1 when special (vector<bool> trips -Wnull-dereference)
  AddedTokenSplitter splitter_;
  int bos_id_;
  int eos_id_;
  int unk_id_;
  bool add_bos_;
  bool add_eos_;
  std::unique_ptr<SegmentEncoder> encoder_;
};

}  // namespace tulu

// Token counts of a text's prefixes — tokenizer.encode(text.substr(0, b), /*add_bos=*/true)
// .size() — for a rising sequence of b, in time linear in the text instead of one full
// encode per prefix. open-instruct masks a conversation by tokenizing every prefix that ends
// a message; done literally that is O(turns × length) per row.
//
// Why it is exact: Tokenizer::encode splits the text at added-token strings first and
// encodes the pieces between them one by one (Hugging Face's behaviour). So when the text
// has an EOS string ("</s>") ending at byte a, the tokens of text[:b] (b ≥ a) are the tokens
// of text[:a] followed by those of text[a:b] encoded as a piece that follows an added token
// — which is encode(eos_string + text[a:b], false) without its first id. The caller names
// such anchors (the "</s>" it wrote after each assistant turn); each anchor's segment is
// encoded once, each query encodes only the bytes since the last anchor.
//
// The assumption is checked: verify() compares the ids assembled up to the last
// anchor reached with the full text's own encoding; callers fall back to plain encodes
// when it fails (a tokenizer that does not split there) or when usable() is false (one that
// appends EOS itself, where counts do not add up this way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tulu {

class PrefixTokenCounter {
 public:
  // `text` must outlive the counter. `anchors`: rising byte offsets, each just after an
  // occurrence of the tokenizer's EOS piece in `text`.
  PrefixTokenCounter(const Tokenizer& tokenizer, std::string_view text,
                     std::vector<size_t> anchors);

  // False when encode("", true) is not exactly [BOS] (e.g. add_eos_token): use plain encodes.
  bool usable() const { return usable_; }

  // Token count of encode(text[:bytes], true). Queries should not go down; one that does
  // is answered with a plain encode.
  int64_t count(size_t bytes);

  // Whether the counts given so far can be trusted: no piece broke the split assumption,
  // and `full_ids` — the plain encoding of a text that begins with text[:a], a the last
  // anchor reached — begins with the ids assembled piece by piece for text[:a].
  bool verify(std::span<const int> full_ids) const;

 private:
  const Tokenizer& tokenizer_;
  std::string_view text_;
  std::string eos_;
  std::vector<size_t> anchors_;
  size_t next_anchor_ = 0;
  size_t position_ = 0;   // the last anchor reached (0: none)
  std::vector<int> ids_;  // encode(text[:position_], true), assembled segment by segment
  bool usable_ = true;
  bool failed_ = false;  // a piece did not encode as the split assumption says
  std::string scratch_;
};

}  // namespace tulu

// Added tokens (the special <unk>, <s>, </s> of Llama, and any extra ones) are found in the
// raw text before normalization and become their ids directly, as Hugging Face tokenizers'
// AddedVocabulary does for tokens with normalized=false: leftmost-longest, non-overlapping
// matches; lstrip/rstrip widen a match over neighbouring whitespace.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tulu {

struct AddedToken {
  int id = -1;
  std::string content;
  bool special = false;  // skipped by decode(skip_special=true)
  bool lstrip = false;   // the match swallows whitespace on its left
  bool rstrip = false;   // ... and on its right
  // As written in the file. The splitter always matches on the raw text; loaders decide
  // what they accept (tokenizer.json: neither flag; tokenizer_config.json: see there).
  bool normalized = false;
  bool single_word = false;
};

// A piece of the input: either an added token (token_id >= 0) or plain text to normalize
// and encode (token_id == -1). Views point into the text passed to split().
struct TextSegment {
  std::string_view text;
  int token_id = -1;
};

class AddedTokenSplitter {
 public:
  AddedTokenSplitter() = default;
  // Tokens with empty content are ignored (they can never match).
  explicit AddedTokenSplitter(std::vector<AddedToken> tokens);

  // Splits text into plain segments (never empty) and added-token matches, in order.
  std::vector<TextSegment> split(std::string_view text) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  // For each first byte, indices into tokens_ ordered longest content first.
  std::vector<std::vector<size_t>> by_first_byte_;
};

}  // namespace tulu

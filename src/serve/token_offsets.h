// Where each token of an encoded text came from, as text-generation-inference's
// POST /tokenize reports it: TGI encodes with the Rust `tokenizers` Tokenizer::encode, whose
// offsets are UTF-8 byte offsets into the input, and returns per token {id, text, start,
// stop}. Hugging Face's rules, which this reproduces for the Llama tokenizers:
//  * tokens added by add_special_tokens (BOS, EOS) cover nothing: start = stop = 0, text "";
//  * the dummy-prefix "▁" a segment gets is aligned to the segment's first character
//    ("▁Hello" at the start covers "Hello"; a lone dummy "▁" covers that first character);
//  * byte-fallback tokens each cover the whole character their byte belongs to (the four
//    tokens of "😀" all have the same start and stop);
//  * an added token written in the text ("</s>") covers its literal.
// text is the input's bytes [start, stop). (TGI itself slices its text by characters using
// these byte offsets, which differs from the covered bytes only for non-ASCII input.)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tulu {

struct TokenSpan {
  int id = 0;
  size_t start = 0;  // byte offset into the input, inclusive
  size_t stop = 0;   // exclusive
  std::string text;  // input[start, stop)
};

// ids = tokenizer.encode(input, add_special). When the tokens cannot be aligned with the
// input (a tokenizer whose normalizer changes the text, an <unk>), every token gets
// start = stop = 0 and an empty text, as TGI does when offsets are missing. Throws
// tulu::Error for input that is not valid UTF-8 (as encode does).
std::vector<TokenSpan> tokenize_with_offsets(const Tokenizer& tokenizer, std::string_view input,
                                             bool add_special);

}  // namespace tulu

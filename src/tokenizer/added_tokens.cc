#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace tulu {

namespace {

// Rust's char::is_whitespace (the Unicode White_Space property), which tokenizers uses
// for lstrip/rstrip.
bool is_rust_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

char32_t code_point_at(std::string_view text, size_t pos, size_t length) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  if (length == 1) return byte(0);
  if (length == 2) return ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
  if (length == 3) return ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
  return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
         (byte(3) & 0x3F);
}

// End of the whitespace run starting at pos (text is valid UTF-8).
size_t skip_whitespace_forward(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    const size_t length = utf8::valid_char_length(text, pos);
    if (length == 0 || !is_rust_whitespace(code_point_at(text, pos, length))) break;
    pos += length;
  }
  return pos;
}

// Start of the whitespace run ending at end, not going below floor.
size_t skip_whitespace_backward(std::string_view text, size_t end, size_t floor) {
  while (end > floor) {
    size_t start = end - 1;
    while (start > floor && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    const size_t length = utf8::valid_char_length(text, start);
    if (length != end - start || !is_rust_whitespace(code_point_at(text, start, length))) break;
    end = start;
  }
  return end;
}

}  // namespace

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens)
    : tokens_(std::move(tokens)), by_first_byte_(256) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

std::vector<TextSegment> AddedTokenSplitter::split(std::string_view text) const {
  std::vector<TextSegment> segments;
  size_t plain_start = 0;  // start of the text not yet emitted
  size_t pos = 0;
  while (pos < text.size() && !tokens_.empty()) {
    const AddedToken* match = nullptr;
    for (size_t index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const std::string& content = tokens_[index].content;
      if (text.substr(pos, content.size()) == content) {
        match = &tokens_[index];
        break;  // longest first
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + match->content.size();
    if (match->lstrip) start = skip_whitespace_backward(text, start, plain_start);
    if (match->rstrip) stop = skip_whitespace_forward(text, stop);
    if (start > plain_start)
      segments.push_back({text.substr(plain_start, start - plain_start), -1});
    segments.push_back({text.substr(start, stop - start), match->id});
    plain_start = stop;
    pos = stop;
  }
  if (plain_start < text.size()) segments.push_back({text.substr(plain_start), -1});
  return segments;
}

}  // namespace tulu

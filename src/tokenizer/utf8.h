// UTF-8 helpers shared by the tokenizer and the chat formats. Validity follows Rust's
// String::from_utf8 (and Python's strict codec): no overlong forms, no surrogates, nothing
// above U+10FFFF — Hugging Face's decoders make their choices with exactly this rule.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tulu::utf8 {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Length in bytes of the valid character starting at text[pos], or 0 when the bytes there
// are not a complete, valid UTF-8 sequence.
size_t valid_char_length(std::string_view text, size_t pos);

bool is_valid(std::string_view text);

// Byte offset of the first invalid or incomplete sequence; text.size() when valid.
size_t first_invalid_offset(std::string_view text);

// Appends the UTF-8 encoding of a Unicode scalar value.
void append_code_point(std::string& out, char32_t code_point);

// Python's str.isspace() for one code point (the whitespace that str.strip() removes).
bool is_python_whitespace(char32_t code_point);

// Python's str.strip() with no argument: removes leading and trailing Unicode whitespace.
// `text` must be valid UTF-8.
std::string_view python_strip(std::string_view text);

}  // namespace tulu::utf8

#include "tokenizer/utf8.h"

namespace tulu::utf8 {

namespace {
bool is_continuation(unsigned char byte) {
  return (byte & 0xC0) == 0x80;
}

// Decodes the valid character at text[pos] into *code_point; returns its length or 0.
size_t decode_char(std::string_view text, size_t pos, char32_t* code_point) {
  const auto byte_at = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const size_t left = text.size() - pos;
  const unsigned char lead = byte_at(pos);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  size_t length = 0;
  char32_t value = 0;
  char32_t minimum = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return 0;  // continuation byte, C0/C1 (always overlong) or F5..FF
  }
  if (left < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if (!is_continuation(byte_at(pos + i))) return 0;
    value = (value << 6) | (byte_at(pos + i) & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *code_point = value;
  return length;
}
}  // namespace

size_t valid_char_length(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  char32_t ignored = 0;
  return decode_char(text, pos, &ignored);
}

size_t first_invalid_offset(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t length = valid_char_length(text, pos);
    if (length == 0) return pos;
    pos += length;
  }
  return text.size();
}

bool is_valid(std::string_view text) {
  return first_invalid_offset(text) == text.size();
}

void append_code_point(std::string& out, char32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

bool is_python_whitespace(char32_t c) {
  // The code points for which CPython's str.isspace() is true (Unicode 14/15).
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string_view python_strip(std::string_view text) {
  // Leading: walk forward over whitespace characters.
  size_t begin = 0;
  while (begin < text.size()) {
    char32_t c = 0;
    const size_t length = decode_char(text, begin, &c);
    if (length == 0 || !is_python_whitespace(c)) break;
    begin += length;
  }
  // Trailing: walk backward to each character start.
  size_t end = text.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && is_continuation(static_cast<unsigned char>(text[start]))) --start;
    char32_t c = 0;
    const size_t length = decode_char(text, start, &c);
    if (length != end - start || !is_python_whitespace(c)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace tulu::utf8

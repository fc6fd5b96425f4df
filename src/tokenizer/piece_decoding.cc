#include "tokenizer/piece_decoding.h"

#include "tokenizer/utf8.h"

namespace tulu::piece_decoding {

std::string replace_metaspace(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  size_t pos = 0;
  while (pos < piece.size()) {
    if (piece.substr(pos, kMetaspace.size()) == kMetaspace) {
      out.push_back(' ');
      pos += kMetaspace.size();
    } else {
      out.push_back(piece[pos++]);
    }
  }
  return out;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

int byte_fallback_value(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token.back() != '>') return -1;
  const char high = token[3];
  const int low = hex_digit(token[4]);
  if (low < 0) return -1;
  if (high == '+') return low;  // from_str_radix accepts a leading plus sign
  const int high_value = hex_digit(high);
  return high_value < 0 ? -1 : high_value * 16 + low;
}

void append_byte_run(std::string& out, std::string_view bytes) {
  if (utf8::is_valid(bytes)) {
    out.append(bytes);
    return;
  }
  for (size_t i = 0; i < bytes.size(); ++i) out.append(utf8::kReplacementCharacter);
}

}  // namespace tulu::piece_decoding

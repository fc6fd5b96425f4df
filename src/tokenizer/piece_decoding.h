// The Llama decoder of Hugging Face tokenizers, piece by piece:
//   Sequence[Replace "▁"→" ", ByteFallback, Fuse, Strip(" ", start=1, stop=0)].
// Every Tokenizer we build decodes with exactly these rules (load_json refuses any other
// decoder), so the batch decode and the streaming IncrementalDecoder share them.
#pragma once

#include <string>
#include <string_view>

namespace tulu::piece_decoding {

inline constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // "▁" U+2581

// The Replace step: every "▁" in the piece becomes a space.
std::string replace_metaspace(std::string_view piece);

// The ByteFallback test: a token of exactly 6 bytes "<0x" HH ">" whose HH parses as a
// base-16 u8 (Rust's u8::from_str_radix, which also takes "+H"); its byte value, else -1.
int byte_fallback_value(std::string_view token);

// Appends a finished run of byte-fallback bytes as ByteFallback renders it: the bytes
// themselves when the whole run is valid UTF-8, else one U+FFFD per byte.
void append_byte_run(std::string& out, std::string_view bytes);

}  // namespace tulu::piece_decoding

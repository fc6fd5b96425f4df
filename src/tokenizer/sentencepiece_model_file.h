// The piece table of a SentencePiece model file (a ModelProto protobuf), read with a small
// wire-format reader so that a truncated or garbage file gives an error naming the file
// and byte offset, and so that piece types (which libsentencepiece's API does not expose
// for user-defined pieces) are known.
#pragma once

#include <string>
#include <vector>

namespace tulu {

struct SentencePieceEntry {
  enum Type { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
  std::string piece;
  float score = 0.0f;
  int type = Normal;
};

// Parses `bytes` (the whole file); throws tulu::Error naming `path` on malformed input.
std::vector<SentencePieceEntry> read_sentencepiece_pieces(const std::string& bytes,
                                                          const std::string& path);

}  // namespace tulu

#include "tokenizer/sentencepiece_model_file.h"

#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace tulu {

namespace {

// Reads protobuf wire format from [data, data + size); `base` is the offset in the file.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base, const std::string& path)
      : data_(data), base_(base), path_(path) {}

  bool done() const { return pos_ >= data_.size(); }
  size_t offset() const { return base_ + pos_; }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      TULU_CHECK(pos_ < data_.size(), path_,
                 ": not a SentencePiece model (truncated varint at byte ", offset(), ")");
      const auto byte = static_cast<unsigned char>(data_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail(path_, ": not a SentencePiece model (varint too long at byte ", offset(), ")");
  }

  std::string_view bytes(size_t length) {
    TULU_CHECK(length <= data_.size() - pos_, path_, ": not a SentencePiece model (a field of ",
               length, " bytes at byte ", offset(), " runs past the end: file truncated?)");
    const std::string_view out = data_.substr(pos_, length);
    pos_ += length;
    return out;
  }

  // Skips a field's value of the given wire type.
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        break;
      case 1:
        bytes(8);
        break;
      case 2:
        bytes(length());
        break;
      case 5:
        bytes(4);
        break;
      default:
        fail(path_, ": not a SentencePiece model (wire type ", wire_type, " at byte ", offset(),
             ")");
    }
  }

  size_t length() {
    const uint64_t n = varint();
    TULU_CHECK(n <= data_.size(), path_, ": not a SentencePiece model (length ", n, " at byte ",
               offset(), " exceeds the data)");
    return static_cast<size_t>(n);
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  size_t base_;
  const std::string& path_;
};

SentencePieceEntry read_piece(std::string_view data, size_t base, const std::string& path) {
  WireReader reader(data, base, path);
  SentencePieceEntry entry;
  bool has_piece = false;
  while (!reader.done()) {
    const uint64_t key = reader.varint();
    const auto field = static_cast<uint32_t>(key >> 3);
    const auto wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      entry.piece = std::string(reader.bytes(reader.length()));
      has_piece = true;
    } else if (field == 2 && wire == 5) {
      const std::string_view raw = reader.bytes(4);
      std::memcpy(&entry.score, raw.data(), 4);
    } else if (field == 3 && wire == 0) {
      entry.type = static_cast<int>(reader.varint());
      TULU_CHECK(entry.type >= 1 && entry.type <= 6, path, ": piece at byte ", base,
                 " has unknown type ", entry.type);
    } else {
      reader.skip(wire);
    }
  }
  TULU_CHECK(has_piece, path, ": piece at byte ", base, " has no text");
  TULU_CHECK(utf8::is_valid(entry.piece), path, ": piece at byte ", base, " is not valid UTF-8");
  return entry;
}

}  // namespace

std::vector<SentencePieceEntry> read_sentencepiece_pieces(const std::string& bytes,
                                                          const std::string& path) {
  WireReader reader(bytes, 0, path);
  std::vector<SentencePieceEntry> pieces;
  while (!reader.done()) {
    const uint64_t key = reader.varint();
    const auto field = static_cast<uint32_t>(key >> 3);
    const auto wire = static_cast<uint32_t>(key & 7);
    TULU_CHECK(field != 0, path, ": not a SentencePiece model (field 0 at byte ", reader.offset(),
               ")");
    if (field == 1 && wire == 2) {
      const size_t length = reader.length();
      const size_t start = reader.offset();
      pieces.push_back(read_piece(reader.bytes(length), start, path));
    } else {
      reader.skip(wire);
    }
  }
  TULU_CHECK(!pieces.empty(), path, ": not a SentencePiece model (no pieces)");
  return pieces;
}

}  // namespace tulu

// Byte-pair encoding of one word, as Hugging Face tokenizers' BPE model does it
// (models/bpe: merge_word + Word::merge_all): the word is split into characters (unknown
// characters become <0xNN> byte pieces with byte_fallback, else the unk token, fused when
// fuse_unk), then the pair with the lowest merge rank is merged first, ties going to the
// leftmost pair, until no adjacent pair has a merge. A heap of candidate pairs over a
// doubly linked list of symbols makes this O(n log n): a 100 KB word is fine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tulu {

// Hash/equality that let unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceToId = std::unordered_map<std::string, int, StringHash, std::equal_to<>>;

struct BpeOptions {
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;  // a word that is itself in the vocabulary is one token
  int unk_id = -1;             // -1: no unk token (unknown characters are dropped, as HF does)
};

class BpeModel {
 public:
  // merges[i] = (left id, right id, merged id), rank i. A pair listed twice keeps its last
  // rank, as HF's map collection does.
  struct Merge {
    int left;
    int right;
    int merged;
  };
  BpeModel(PieceToId vocab, const std::vector<Merge>& merges, BpeOptions options);

  // Appends the ids of `word` (already normalized; valid UTF-8).
  void encode_word(std::string_view word, std::vector<int>& ids) const;

 private:
  struct RankedMerge {
    uint32_t rank;
    int merged;
  };
  static uint64_t pair_key(int left, int right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const RankedMerge* find_merge(int left, int right) const;

  PieceToId vocab_;
  std::unordered_map<uint64_t, RankedMerge> merges_;
  int byte_ids_[256];  // id of "<0xNN>", or -1
  BpeOptions options_;
};

}  // namespace tulu

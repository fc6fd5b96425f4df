#include "tokenizer/bpe.h"

#include <cstdio>
#include <queue>

#include "tokenizer/utf8.h"

namespace tulu {

BpeModel::BpeModel(PieceToId vocab, const std::vector<Merge>& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(options) {
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    merges_[pair_key(m.left, m.right)] = RankedMerge{static_cast<uint32_t>(rank), m.merged};
  }
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", byte);
    const auto it = vocab_.find(std::string_view(name));
    byte_ids_[byte] = it == vocab_.end() ? -1 : it->second;
  }
}

const BpeModel::RankedMerge* BpeModel::find_merge(int left, int right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

namespace {

struct Symbol {
  int id;
  int prev;  // index of the previous live symbol, -1 at the start
  int next;  // index of the next live symbol, -1 at the end
  bool alive;
};

struct Candidate {
  uint32_t rank;
  int pos;  // index of the left symbol
  int merged;
};

// std::priority_queue pops the "largest": make that the lowest rank, then leftmost.
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.pos > b.pos;
  }
};

}  // namespace

void BpeModel::encode_word(std::string_view word, std::vector<int>& ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }

  // 1. Characters → initial symbols.
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool pending_unk = false;  // a fused unk waiting to be emitted
  const auto add_symbol = [&](int id) {
    const int index = static_cast<int>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  };
  const auto flush_unk = [&] {
    if (pending_unk) add_symbol(options_.unk_id);
    pending_unk = false;
  };
  size_t pos = 0;
  while (pos < word.size()) {
    size_t length = utf8::valid_char_length(word, pos);
    if (length == 0) length = 1;  // callers pass valid UTF-8; stay safe regardless
    const std::string_view character = word.substr(pos, length);
    pos += length;
    if (const auto it = vocab_.find(character); it != vocab_.end()) {
      flush_unk();
      add_symbol(it->second);
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes_known = true;
      for (char c : character) all_bytes_known &= byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all_bytes_known) {
        // HF emits a pending unk only before a known character, not before byte pieces.
        for (char c : character) add_symbol(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (options_.unk_id >= 0) {
      if (!options_.fuse_unk) flush_unk();
      pending_unk = true;
    }
  }
  flush_unk();

  // 2. Merge, lowest rank first.
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateAfter> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const RankedMerge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push(Candidate{m->rank, static_cast<int>(i), m->merged});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    const int right_index = left.next;
    const Symbol right = symbols[right_index];
    // A stale entry: the pair changed since it was queued (HF compares the merged id).
    const RankedMerge* current = find_merge(left.id, right.id);
    if (current == nullptr || current->merged != top.merged) continue;
    left.id = top.merged;
    left.next = right.next;
    symbols[right_index].alive = false;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const RankedMerge* m = find_merge(symbols[left.prev].id, left.id)) {
        queue.push(Candidate{m->rank, left.prev, m->merged});
      }
    }
    if (left.next >= 0) {
      if (const RankedMerge* m = find_merge(left.id, symbols[left.next].id)) {
        queue.push(Candidate{m->rank, top.pos, m->merged});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.alive) ids.push_back(s.id);
  }
}

}  // namespace tulu

// BpeModel against a plain reference: the O(n²) textbook BPE that rescans the word for the
// lowest-ranked adjacent pair (leftmost on ties) and merges it, on merges learned from a
// random corpus by a textbook BPE trainer — so every merged piece has exactly one pair, as
// in real BPE vocabularies. Plus byte fallback and unk details.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>

#include "tokenizer/bpe.h"

namespace tulu {
namespace {

struct LearnedBpe {
  PieceToId vocab;
  std::vector<std::string> pieces;
  std::vector<BpeModel::Merge> merges;
};

// Textbook BPE training over words of single-byte symbols: merge the most frequent pair.
LearnedBpe learn_bpe(const std::vector<std::string>& corpus, const std::string& alphabet,
                     int merges) {
  LearnedBpe bpe;
  const auto add = [&](const std::string& piece) {
    bpe.vocab.emplace(piece, static_cast<int>(bpe.pieces.size()));
    bpe.pieces.push_back(piece);
  };
  for (char c : alphabet) add(std::string(1, c));
  std::vector<std::vector<std::string>> words;
  for (const std::string& w : corpus) {
    std::vector<std::string> symbols;
    for (char c : w) symbols.emplace_back(1, c);
    words.push_back(symbols);
  }
  for (int m = 0; m < merges; ++m) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& w : words) {
      for (size_t i = 0; i + 1 < w.size(); ++i) ++counts[{w[i], w[i + 1]}];
    }
    std::pair<std::string, std::string> best;
    int best_count = 0;
    for (const auto& [pair, count] : counts) {
      if (count > best_count && !bpe.vocab.count(pair.first + pair.second))
        best = pair, best_count = count;
    }
    if (best_count == 0) break;
    add(best.first + best.second);
    bpe.merges.push_back({bpe.vocab.at(best.first), bpe.vocab.at(best.second),
                          bpe.vocab.at(best.first + best.second)});
    for (auto& w : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == best.first && w[i + 1] == best.second) {
          merged.push_back(best.first + best.second);
          ++i;
        } else {
          merged.push_back(w[i]);
        }
      }
      w = merged;
    }
  }
  return bpe;
}

// The O(n²) reference encoder.
std::vector<int> naive_bpe(const LearnedBpe& bpe, const std::string& word) {
  std::vector<int> symbols;
  for (char c : word) symbols.push_back(bpe.vocab.at(std::string(1, c)));
  while (true) {
    size_t best_pos = 0;
    size_t best_rank = SIZE_MAX;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      for (size_t r = 0; r < bpe.merges.size() && r < best_rank; ++r) {
        if (bpe.merges[r].left == symbols[i] && bpe.merges[r].right == symbols[i + 1]) {
          best_rank = r, best_pos = i;
          break;
        }
      }
    }
    if (best_rank == SIZE_MAX) return symbols;
    symbols[best_pos] = bpe.merges[best_rank].merged;
    symbols.erase(symbols.begin() + static_cast<long>(best_pos) + 1);
  }
}

std::string random_word(std::mt19937& rng, const std::string& alphabet, size_t length) {
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::string w;
  for (size_t i = 0; i < length; ++i) w.push_back(alphabet[pick(rng)]);
  return w;
}

TEST(Bpe, MatchesTextbookBpeOnRandomWords) {
  std::mt19937 rng(42);
  const std::string alphabet = "abcde";
  std::vector<std::string> corpus;
  // A skewed corpus so that long merges (runs, repeats) get learned.
  for (int i = 0; i < 200; ++i)
    corpus.push_back(random_word(rng, "aab", 12) + random_word(rng, alphabet, 6));
  const LearnedBpe bpe = learn_bpe(corpus, alphabet, 60);
  ASSERT_GT(bpe.merges.size(), 40u);
  const BpeModel model(bpe.vocab, bpe.merges, BpeOptions{});
  int checked = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string word = random_word(rng, i % 2 ? alphabet : "aab", 1 + i % 40);
    std::vector<int> got;
    model.encode_word(word, got);
    ASSERT_EQ(got, naive_bpe(bpe, word)) << "word " << word;
    ++checked;
  }
  EXPECT_EQ(checked, 2000);
}

TEST(Bpe, ByteFallbackForUnknownCharacters) {
  PieceToId vocab{{"a", 0}, {"b", 1}, {"ab", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab.emplace(name, 3 + b);
  }
  const BpeModel model(vocab, {{0, 1, 2}}, BpeOptions{.byte_fallback = true});
  std::vector<int> ids;
  model.encode_word(
      "ab\xC3\xA9"
      "ab",
      ids);  // "abéab": é is C3 A9
  EXPECT_EQ(ids, (std::vector<int>{2, 3 + 0xC3, 3 + 0xA9, 2}));
}

TEST(Bpe, UnknownCharactersWithoutByteFallbackBecomeUnkFusedOrNot) {
  const PieceToId vocab{{"<unk>", 0}, {"a", 1}};
  std::vector<int> fused, separate;
  BpeModel(vocab, {}, BpeOptions{.fuse_unk = true, .unk_id = 0})
      .encode_word(
          "a\xC3\xA9\xC3\xA9"
          "a",
          fused);
  BpeModel(vocab, {}, BpeOptions{.fuse_unk = false, .unk_id = 0})
      .encode_word(
          "a\xC3\xA9\xC3\xA9"
          "a",
          separate);
  EXPECT_EQ(fused, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(separate, (std::vector<int>{1, 0, 0, 1}));
}

TEST(Bpe, IgnoreMergesTakesWholeWordFromVocabulary) {
  // "abc" is in the vocabulary but no merge chain builds it.
  const PieceToId vocab{{"a", 0}, {"b", 1}, {"c", 2}, {"abc", 3}, {"ab", 4}};
  const std::vector<BpeModel::Merge> merges{{0, 1, 4}};
  std::vector<int> with, without;
  BpeModel(vocab, merges, BpeOptions{.ignore_merges = true}).encode_word("abc", with);
  BpeModel(vocab, merges, BpeOptions{}).encode_word("abc", without);
  EXPECT_EQ(with, (std::vector<int>{3}));
  EXPECT_EQ(without, (std::vector<int>{4, 2}));
}

TEST(Bpe, LongWordIsFast) {
  std::mt19937 rng(7);
  std::vector<std::string> corpus;
  for (int i = 0; i < 100; ++i) corpus.push_back(random_word(rng, "abcd", 20));
  const LearnedBpe bpe = learn_bpe(corpus, "abcd", 40);
  const BpeModel model(bpe.vocab, bpe.merges, BpeOptions{});
  const std::string word = random_word(rng, "abcd", 100000);
  const auto start = std::chrono::steady_clock::now();
  std::vector<int> ids;
  model.encode_word(word, ids);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string rebuilt;
  for (int id : ids) rebuilt += bpe.pieces[id];
  EXPECT_EQ(rebuilt, word);
  EXPECT_LT(seconds, 1.0);  // O(n²) rescans would take minutes here
}

}  // namespace
}  // namespace tulu

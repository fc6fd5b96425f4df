// IncrementalDecoder invariants on the real Llama 2 vocabulary, over random id sequences
// rich in byte-fallback pieces (valid and broken UTF-8) and special tokens: the outputs
// concatenated with flush() equal decode(all ids); no output is ever invalid UTF-8.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace tulu {
namespace {

const std::string kLlamaDir = std::string(TULU_SOURCE_DIR) + "/data/llama2-tokenizer";

std::vector<int> random_ids(std::mt19937& rng, int vocab_size) {
  std::vector<int> ids;
  const int n = 1 + static_cast<int>(rng() % 40);
  for (int i = 0; i < n; ++i) {
    const unsigned kind = rng() % 10;
    if (kind < 3) {
      ids.push_back(static_cast<int>(rng() % vocab_size));
    } else if (kind < 6) {
      ids.push_back(3 + static_cast<int>(rng() % 256));  // <0x00>..<0xFF> are ids 3..258
    } else if (kind < 8) {
      // A whole multi-byte character as byte pieces, sometimes cut short.
      static const std::vector<std::string> chars{"\xC3\xA9", "\xE4\xBD\xA0", "\xF0\x9F\x98\x80",
                                                  "\xF0\x93\x80\x80"};
      std::string c = chars[rng() % chars.size()];
      if (rng() % 3 == 0) c.resize(1 + rng() % c.size());
      for (unsigned char b : c) ids.push_back(3 + b);
    } else if (kind < 9) {
      ids.push_back(static_cast<int>(rng() % 3));  // <unk> <s> </s>
    } else {
      ids.push_back(29871);  // "▁": a lone space, tests the leading strip
    }
  }
  return ids;
}

TEST(IncrementalDecoder, ConcatenationEqualsDecodeAndStaysValidUtf8) {
  for (const std::string file : {"/tokenizer.json", "/tokenizer.model"}) {
    const auto tokenizer = file.ends_with(".json")
                               ? Tokenizer::load_json(kLlamaDir + file)
                               : Tokenizer::load_sentencepiece(kLlamaDir + file);
    std::mt19937 rng(11);
    int sequences = 0;
    for (int trial = 0; trial < 3000; ++trial) {
      const std::vector<int> ids = random_ids(rng, tokenizer->vocab_size());
      for (bool skip : {false, true}) {
        IncrementalDecoder decoder(*tokenizer, skip);
        std::string streamed;
        for (int id : ids) {
          const std::string part = decoder.push(id);
          ASSERT_TRUE(utf8::is_valid(part)) << "invalid UTF-8 emitted at trial " << trial;
          streamed += part;
        }
        const std::string tail = decoder.flush();
        ASSERT_TRUE(utf8::is_valid(tail));
        streamed += tail;
        ASSERT_EQ(streamed, tokenizer->decode(ids, skip))
            << file << " trial " << trial << " skip " << skip;
        ++sequences;
      }
    }
    EXPECT_EQ(sequences, 6000);
  }
}

TEST(IncrementalDecoder, HoldsAByteRunUntilItEnds) {
  const auto tokenizer = Tokenizer::load_json(kLlamaDir + "/tokenizer.json");
  IncrementalDecoder decoder(*tokenizer, false);
  // "▁", four byte pieces, then the piece "a".
  const std::vector<int> ids = tokenizer->encode(
      "\xF0\x9F\x98\x80"
      "a",
      false);
  ASSERT_EQ(ids.size(), 6u);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += decoder.push(ids[i]);
  EXPECT_EQ(out, "");  // the run could still turn invalid: nothing shown yet
  out += decoder.push(ids.back());
  EXPECT_EQ(out, tokenizer->decode(ids, false));
  EXPECT_EQ(decoder.flush(), "");
}

TEST(IncrementalDecoder, ResetAndBadIds) {
  const auto tokenizer = Tokenizer::load_json(kLlamaDir + "/tokenizer.json");
  IncrementalDecoder decoder(*tokenizer, true);
  EXPECT_THROW(decoder.push(32000), Error);
  const std::vector<int> ids = tokenizer->encode(" Hello world", true);
  std::string first;
  for (int id : ids) first += decoder.push(id);
  first += decoder.flush();
  std::string second;  // flush() starts a new sequence: the leading strip applies again
  for (int id : ids) second += decoder.push(id);
  second += decoder.flush();
  EXPECT_EQ(first, tokenizer->decode(ids, true));
  EXPECT_EQ(second, first);
}

TEST(IncrementalDecoder, ConstantTimePerToken) {
  const auto tokenizer = Tokenizer::load_json(kLlamaDir + "/tokenizer.json");
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "word ";
  const std::vector<int> ids = tokenizer->encode(text, true);
  IncrementalDecoder decoder(*tokenizer, true);
  const auto start = std::chrono::steady_clock::now();
  std::string streamed;
  for (int id : ids) streamed += decoder.push(id);
  streamed += decoder.flush();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(streamed, tokenizer->decode(ids, true));
  EXPECT_LT(seconds, 2.0);  // re-decoding the whole prefix each step would be O(n²): minutes
}

}  // namespace
}  // namespace tulu

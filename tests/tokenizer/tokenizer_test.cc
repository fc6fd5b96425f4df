// The two loaders on the real Llama 2 files: tokenizer.json through our BPE and
// tokenizer.model through libsentencepiece must give the same ids (an independent
// implementation each); facts from TULU2.md; speed on a 100 KB word; errors on bad ids/text.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace tulu {
namespace {

const std::string kLlamaDir = std::string(TULU_SOURCE_DIR) + "/data/llama2-tokenizer";

class LlamaTokenizers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    json_ = Tokenizer::load_json(kLlamaDir + "/tokenizer.json").release();
    sp_ = Tokenizer::load_sentencepiece(kLlamaDir + "/tokenizer.model").release();
  }
  static void TearDownTestSuite() {
    delete json_;
    delete sp_;
  }
  static Tokenizer* json_;
  static Tokenizer* sp_;
};
Tokenizer* LlamaTokenizers::json_ = nullptr;
Tokenizer* LlamaTokenizers::sp_ = nullptr;

TEST_F(LlamaTokenizers, VocabularyAndSpecialTokens) {
  for (const Tokenizer* t : {json_, sp_}) {
    EXPECT_EQ(t->vocab_size(), 32000);
    // TULU2.md: <unk>, <s>, </s> are the special tokens, ids 0, 1, 2.
    EXPECT_EQ(t->unk_id(), 0);
    EXPECT_EQ(t->bos_id(), 1);
    EXPECT_EQ(t->eos_id(), 2);
    EXPECT_EQ(t->id_to_piece(1), "<s>");
    EXPECT_TRUE(t->is_special(0) && t->is_special(1) && t->is_special(2));
    EXPECT_FALSE(t->is_special(3));
  }
  for (int id = 0; id < 32000; ++id) ASSERT_EQ(json_->id_to_piece(id), sp_->id_to_piece(id)) << id;
}

TEST_F(LlamaTokenizers, TuluTagsAreOrdinaryPieces) {
  // TULU2.md: "<|user|>\n" at text start = 529 29989 1792 29989 29958 13, after BOS.
  const std::vector<int> want{1, 529, 29989, 1792, 29989, 29958, 13};
  EXPECT_EQ(json_->encode("<|user|>\n", true), want);
  EXPECT_EQ(sp_->encode("<|user|>\n", true), want);
}

TEST_F(LlamaTokenizers, LoadersAgreeOnRandomText) {
  const std::vector<std::string> atoms{"a",
                                       "b",
                                       "the",
                                       " ",
                                       "  ",
                                       "\n",
                                       "\t",
                                       "é",
                                       "e\xCC\x81",
                                       "你",
                                       "好",
                                       "\xF0\x9F\x98\x80",
                                       "\xF0\x9F\xA6\xA9",
                                       "<s>",
                                       "</s>",
                                       "<unk>",
                                       "</",
                                       "s>",
                                       "<|user|>",
                                       "\xE2\x96\x81",
                                       "123",
                                       "!",
                                       "'"};
  std::mt19937 rng(3);
  int checked = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) text += atoms[rng() % atoms.size()];
    const bool bos = i % 2 == 0;
    ASSERT_EQ(json_->encode(text, bos), sp_->encode(text, bos)) << "text '" << text << "'";
    ++checked;
  }
  EXPECT_EQ(checked, 3000);
}

TEST_F(LlamaTokenizers, HundredKilobyteWordIsFast) {
  std::mt19937 rng(5);
  std::string word;
  while (word.size() < 100000) word.push_back(static_cast<char>('a' + rng() % 26));
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = json_->encode(word, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
#if defined(__SANITIZE_ADDRESS__)
  const double limit = 10.0;  // sanitizers slow everything ~5-10x
#else
  const double limit = 1.0;
#endif
  EXPECT_LT(seconds, limit);
  EXPECT_EQ(json_->decode(ids, false), word);
  EXPECT_EQ(ids, sp_->encode(word, false));
}

TEST_F(LlamaTokenizers, DecodeRoundTripsText) {
  for (const std::string text : {"Hello world", "  two leading spaces", "tabs\tand\nnewlines",
                                 "你好 😀 🦩", "trailing  "}) {
    for (const Tokenizer* t : {json_, sp_}) EXPECT_EQ(t->decode(t->encode(text, true), true), text);
  }
}

TEST_F(LlamaTokenizers, BadIdsAndTextAreErrors) {
  const std::vector<int> bad_ids{1, 32000};
  const std::vector<int> negative{-1};
  for (const Tokenizer* t : {json_, sp_}) {
    EXPECT_THROW(t->decode(bad_ids, false), Error);
    EXPECT_THROW(t->decode(negative, true), Error);
    EXPECT_THROW(t->id_to_piece(32000), Error);
    EXPECT_THROW(t->encode("bad \xC3( utf-8", true), Error);
    EXPECT_THROW(t->encode("\xED\xA0\x80 surrogate", true), Error);
  }
}

TEST(TokenizerDir, PrefersJsonAndReadsConfig) {
  const auto from_dir = Tokenizer::load_dir(kLlamaDir);
  EXPECT_EQ(from_dir->encode("Hi", true).front(), 1);
  EXPECT_THROW(Tokenizer::load_dir(kLlamaDir + "/does-not-exist"), Error);
  EXPECT_THROW(Tokenizer::load_dir(std::string(TULU_SOURCE_DIR) + "/src"), Error);
}

}  // namespace
}  // namespace tulu

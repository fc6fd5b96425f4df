// PrefixTokenCounter: its counts equal plain encodes of every prefix (both Llama loaders,
// random conversations with "</s>", "<s>", "<unk>" inside the content), queries that go
// back, bad anchors; and with a toy tokenizer that does NOT split at "</s>" the broken
// assumption is detected and encode_sft_row falls back to plain encodes (its labels then
// equal open-instruct's loop run with plain encodes, written out here).
#include "train/sft_prefix_tokens.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "train/sft_data.h"

namespace tulu {
namespace {

const std::string kLlamaDir = std::string(TULU_SOURCE_DIR) + "/data/llama2-tokenizer";

const std::vector<std::string> kPieces = {
    "Hello", " ",  "  ",         "\n",   "\n\n", "\t", "world", "</s>",   "<s>",   "<unk>",
    "</",    "s>", "<|user|>\n", "你好", "😀",    "é",  "x",     "\u3000", "1 2 3", "."};

// A Tulu-like text with "</s>" after each assistant turn; returns the anchors.
std::string random_conversation(std::mt19937& rng, std::vector<size_t>& anchors) {
  std::string text;
  const int turns = static_cast<int>(rng() % 6) + 1;
  for (int t = 0; t < turns; ++t) {
    text += t % 2 == 0 ? "<|user|>\n" : "<|assistant|>\n";
    const int pieces = static_cast<int>(rng() % 6);
    for (int p = 0; p < pieces; ++p) text += kPieces[rng() % kPieces.size()];
    if (t % 2 == 1) {
      text += "</s>";
      anchors.push_back(text.size());
    }
    text += "\n";
  }
  return text;
}

// Byte offsets at character boundaries only (the tokenizer needs valid UTF-8).
std::vector<size_t> char_boundaries(const std::string& text) {
  std::vector<size_t> out;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) out.push_back(i);
  }
  return out;
}

TEST(PrefixTokenCounter, EqualsPlainEncodesOnLlama) {
  const auto json = Tokenizer::load_dir(kLlamaDir);
  const auto sp = Tokenizer::load_sentencepiece(kLlamaDir + "/tokenizer.model");
  std::mt19937 rng(17);
  for (const Tokenizer* tokenizer : {json.get(), sp.get()}) {
    for (int round = 0; round < 60; ++round) {
      std::vector<size_t> anchors;
      const std::string text = random_conversation(rng, anchors);
      PrefixTokenCounter counter(*tokenizer, text, anchors);
      ASSERT_TRUE(counter.usable());
      for (size_t b : char_boundaries(text)) {
        if (rng() % 3 != 0 && b != text.size()) continue;  // a rising subset of prefixes
        ASSERT_EQ(counter.count(b),
                  static_cast<int64_t>(tokenizer->encode(text.substr(0, b), true).size()))
            << "prefix " << b << " of " << text;
      }
      EXPECT_TRUE(counter.verify(tokenizer->encode(text, true)));
      // Going back is answered too (by a plain encode).
      EXPECT_EQ(counter.count(0), 1);
    }
  }
}

TEST(PrefixTokenCounter, AnchorsNotAfterEosMeanPlainEncodes) {
  const auto tokenizer = Tokenizer::load_dir(kLlamaDir);
  const std::string text = "<|user|>\nhi\n<|assistant|>\nyo</s>\n<|user|>\nagain\n";
  PrefixTokenCounter counter(*tokenizer, text, {5});
  EXPECT_FALSE(counter.usable());
  EXPECT_EQ(counter.count(text.size()), static_cast<int64_t>(tokenizer->encode(text, true).size()));
  EXPECT_TRUE(counter.verify(tokenizer->encode(text, true)));
}

// One id per byte (byte + 3), "</s>" → 2; unlike Hugging Face's tokenizers, the pieces
// around "</s>" are not independent: with kMerge "</s>\n" is ONE token (7), with kEndMark a
// text ending in "</s>" gets an extra id 9 (so a prefix's ids are not a prefix of the
// whole text's ids).
class NoSplitTokenizer : public Tokenizer {
 public:
  enum Mode { kMerge, kEndMark };
  explicit NoSplitTokenizer(Mode mode) : mode_(mode) {}
  std::vector<int> encode(std::string_view text, bool add_bos) const override {
    std::vector<int> ids;
    if (add_bos) ids.push_back(1);
    if (mode_ == kEndMark && text.ends_with("</s>")) {
      ids = encode(text.substr(0, text.size() - 4), add_bos);
      ids.push_back(2);
      ids.push_back(9);
      return ids;
    }
    for (size_t i = 0; i < text.size();) {
      if (mode_ == kMerge && text.substr(i, 5) == "</s>\n") {
        ids.push_back(7);
        i += 5;
      } else if (text.substr(i, 4) == "</s>") {
        ids.push_back(2);
        i += 4;
      } else {
        ids.push_back(static_cast<unsigned char>(text[i]) + 3);
        ++i;
      }
    }
    return ids;
  }
  std::string decode(std::span<const int>, bool) const override { return ""; }
  std::string id_to_piece(int id) const override { return id == 2 ? "</s>" : "?"; }
  int vocab_size() const override { return 300; }
  bool is_special(int id) const override { return id < 3; }
  int bos_id() const override { return 1; }
  int eos_id() const override { return 2; }
  int unk_id() const override { return 0; }

 private:
  Mode mode_;
};

class NoSplit : public ::testing::TestWithParam<NoSplitTokenizer::Mode> {};

TEST_P(NoSplit, DetectedAndSftFallsBackToPlainEncodes) {
  const NoSplitTokenizer tokenizer(GetParam());
  const std::string text = "<|user|>\na\n<|assistant|>\nb</s>\n<|user|>\nc\n<|assistant|>\nd</s>\n";
  std::vector<size_t> anchors = {text.find("</s>") + 4, text.rfind("</s>") + 4};
  PrefixTokenCounter counter(tokenizer, text, anchors);
  ASSERT_TRUE(counter.usable());
  int wrong = 0;
  for (size_t b = 0; b <= text.size(); ++b) {
    wrong +=
        counter.count(b) != static_cast<int64_t>(tokenizer.encode(text.substr(0, b), true).size());
  }
  EXPECT_EQ(wrong > 0, GetParam() == NoSplitTokenizer::kEndMark);  // kMerge: caught per piece
  EXPECT_FALSE(counter.verify(tokenizer.encode(text, true)));

  // encode_sft_row must still give open-instruct's labels: its loop with plain encodes.
  const Json row = Json::parse(R"({"messages": [
      {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})");
  SftExample example;
  ASSERT_TRUE(encode_sft_row(row, tokenizer, 8192, "row", example, nullptr));
  const std::vector<std::string> prefixes = {"", "<|user|>\na\n",
                                             "<|user|>\na\n<|assistant|>\nb</s>\n",
                                             "<|user|>\na\n<|assistant|>\nb</s>\n<|user|>\nc\n"};
  const auto length = [&](const std::string& s) { return tokenizer.encode(s, true).size(); };
  std::vector<int> want = tokenizer.encode(text.substr(0, text.size() - 1), true);
  EXPECT_EQ(example.input_ids, want);
  for (size_t i : {0u, 2u}) {  // the user messages: [len(prefix i), len(prefix i+1 + tag))
    const size_t start = i == 0 ? 0 : length(prefixes[i]);
    const size_t end = length(prefixes[i + 1] + "<|assistant|>\n");
    for (size_t k = start; k < end; ++k) want[k] = -100;
  }
  EXPECT_EQ(example.labels, want);
}

INSTANTIATE_TEST_SUITE_P(Modes, NoSplit,
                         ::testing::Values(NoSplitTokenizer::kMerge, NoSplitTokenizer::kEndMark));

}  // namespace
}  // namespace tulu

// The demo's synthetic task: determinism, the split, the noisy SFT rows, the pairs and the
// answer checker.
#include "demo/synthetic_task.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <set>
#include <string>
#include <tuple>

#include "core/error.h"

namespace tulu {
namespace {

std::tuple<int, int, int> key(const CompareQuestion& q) {
  return {q.a, q.b, q.phrasing};
}

TEST(SyntheticTask, AllQuestionsAreDistinctAndWellFormed) {
  const auto all = all_compare_questions();
  ASSERT_EQ(all.size(), 90 * compare_phrasings().size());
  std::set<std::string> texts;
  for (const CompareQuestion& q : all) {
    EXPECT_NE(q.a, q.b);
    EXPECT_EQ(q.text.find('{'), std::string::npos) << q.text;
    EXPECT_NE(q.text.find(std::to_string(q.a)), std::string::npos) << q.text;
    EXPECT_NE(q.text.find(std::to_string(q.b)), std::string::npos) << q.text;
    EXPECT_EQ(q.correct(), std::max(q.a, q.b));
    EXPECT_EQ(q.wrong(), std::min(q.a, q.b));
    texts.insert(q.text);
  }
  EXPECT_EQ(texts.size(), all.size());
  EXPECT_EQ(all[0].text, "Which is larger, 0 or 1?");
}

TEST(SyntheticTask, SplitIsDeterministicDisjointAndComplete) {
  const DemoSplit a = split_compare_questions(1, 160, 240);
  const DemoSplit b = split_compare_questions(1, 160, 240);
  const DemoSplit c = split_compare_questions(2, 160, 240);
  ASSERT_EQ(a.held_out.size(), 160u);
  ASSERT_EQ(a.dpo.size(), 240u);
  ASSERT_EQ(a.sft.size(), all_compare_questions().size() - 400);
  for (size_t i = 0; i < a.held_out.size(); ++i) EXPECT_EQ(a.held_out[i].text, b.held_out[i].text);
  for (size_t i = 0; i < a.sft.size(); ++i) EXPECT_EQ(a.sft[i].text, b.sft[i].text);
  bool differs = false;
  for (size_t i = 0; i < a.held_out.size(); ++i)
    differs |= a.held_out[i].text != c.held_out[i].text;
  EXPECT_TRUE(differs) << "another seed must give another split";
  std::set<std::tuple<int, int, int>> seen;
  for (const auto* part : {&a.sft, &a.dpo, &a.held_out}) {
    for (const CompareQuestion& q : *part) EXPECT_TRUE(seen.insert(key(q)).second) << q.text;
  }
  EXPECT_EQ(seen.size(), all_compare_questions().size());
}

TEST(SyntheticTask, SplitRejectsBadSizes) {
  EXPECT_THROW(split_compare_questions(1, 0, 10), Error);
  EXPECT_THROW(split_compare_questions(1, 10, 0), Error);
  EXPECT_THROW(split_compare_questions(1, 400, 320), Error);
}

TEST(SyntheticTask, SftRowsAreHalfWrong) {
  const DemoSplit split = split_compare_questions(7, 100, 100);
  const std::vector<Json> rows = sft_rows(split.sft);
  ASSERT_EQ(rows.size(), split.sft.size());
  size_t wrong = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Json& messages = rows[i].at("messages");
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at("role"), "user");
    EXPECT_EQ(messages[0].at("content"), split.sft[i].text);
    EXPECT_EQ(messages[1].at("role"), "assistant");
    const std::string answer = messages[1].at("content");
    const bool is_wrong = !is_correct_reply(split.sft[i], answer);
    EXPECT_EQ(is_wrong, i % 2 == 1) << i;
    const int expected = is_wrong ? split.sft[i].wrong() : split.sft[i].correct();
    EXPECT_EQ(answer, std::to_string(expected));
    wrong += is_wrong ? 1 : 0;
  }
  EXPECT_EQ(wrong, rows.size() / 2);
}

TEST(SyntheticTask, PreferenceRowsPreferTheLargerDigit) {
  const DemoSplit split = split_compare_questions(3, 50, 60);
  const std::vector<Json> rows = preference_rows(split.dpo);
  ASSERT_EQ(rows.size(), 60u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const CompareQuestion& q = split.dpo[i];
    EXPECT_EQ(rows[i].at("prompt"), q.text);
    EXPECT_EQ(rows[i].at("chosen"), std::to_string(std::max(q.a, q.b)));
    EXPECT_EQ(rows[i].at("rejected"), std::to_string(std::min(q.a, q.b)));
  }
  const std::string jsonl = to_jsonl(rows);
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 60);
}

TEST(SyntheticTask, AnswerChecker) {
  const CompareQuestion q{3, 8, 0, "Which is larger, 3 or 8?"};
  EXPECT_TRUE(is_correct_reply(q, "8"));
  EXPECT_TRUE(is_correct_reply(q, " 8\n"));
  EXPECT_TRUE(is_correct_reply(q, "8."));
  EXPECT_FALSE(is_correct_reply(q, "3"));
  EXPECT_FALSE(is_correct_reply(q, "88"));
  EXPECT_FALSE(is_correct_reply(q, "8 or 3"));
  EXPECT_FALSE(is_correct_reply(q, ""));
  EXPECT_FALSE(is_correct_reply(q, "eight"));
  EXPECT_EQ(parse_digit_reply("0"), 0);
  EXPECT_EQ(parse_digit_reply("x"), std::nullopt);
  EXPECT_EQ(parse_digit_reply("-1"), std::nullopt);
}

}  // namespace
}  // namespace tulu

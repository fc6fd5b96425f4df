// The demo's synthetic task (see synthetic_task.h).
#include "demo/synthetic_task.h"

#include <utility>

#include "core/error.h"
#include "llama/random_init.h"

namespace tulu {

const std::vector<std::string_view>& compare_phrasings() {
  static const std::vector<std::string_view> phrasings = {
      "Which is larger, {a} or {b}?",        "Which number is bigger: {a} or {b}?",
      "What is the maximum of {a} and {b}?", "Pick the larger number: {a} or {b}.",
      "Which is greater, {a} or {b}?",       "Of {a} and {b}, which is more?",
      "Tell me the bigger of {a} and {b}.",  "Max of {a} and {b}?",
  };
  return phrasings;
}

namespace {

std::string fill_phrasing(std::string_view phrasing, int a, int b) {
  std::string out;
  for (size_t i = 0; i < phrasing.size(); ++i) {
    if (phrasing.substr(i, 3) == "{a}" || phrasing.substr(i, 3) == "{b}") {
      out += std::to_string(phrasing[i + 1] == 'a' ? a : b);
      i += 2;
    } else {
      out += phrasing[i];
    }
  }
  return out;
}

}  // namespace

std::vector<CompareQuestion> all_compare_questions() {
  std::vector<CompareQuestion> out;
  const auto& phrasings = compare_phrasings();
  for (int a = 0; a <= 9; ++a) {
    for (int b = 0; b <= 9; ++b) {
      if (a == b) continue;
      for (size_t p = 0; p < phrasings.size(); ++p) {
        out.push_back({a, b, static_cast<int>(p), fill_phrasing(phrasings[p], a, b)});
      }
    }
  }
  return out;
}

DemoSplit split_compare_questions(uint64_t seed, int64_t held_out, int64_t dpo) {
  std::vector<CompareQuestion> all = all_compare_questions();
  const auto total = static_cast<int64_t>(all.size());
  TULU_CHECK(held_out >= 1 && dpo >= 1 && held_out + dpo < total, "demo split: ", held_out,
             " held-out and ", dpo, " DPO questions must each be ≥ 1 and leave SFT questions (of ",
             total, ")");
  SplitMix64 rng(seed);
  for (size_t i = all.size() - 1; i > 0; --i) {
    const auto j = static_cast<size_t>(rng.next() % (i + 1));
    std::swap(all[i], all[j]);
  }
  DemoSplit split;
  const auto h = static_cast<size_t>(held_out), d = static_cast<size_t>(dpo);
  split.held_out.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(h));
  split.dpo.assign(all.begin() + static_cast<std::ptrdiff_t>(h),
                   all.begin() + static_cast<std::ptrdiff_t>(h + d));
  split.sft.assign(all.begin() + static_cast<std::ptrdiff_t>(h + d), all.end());
  return split;
}

std::vector<Json> sft_rows(const std::vector<CompareQuestion>& questions) {
  std::vector<Json> rows;
  for (size_t i = 0; i < questions.size(); ++i) {
    const CompareQuestion& q = questions[i];
    const int answer = i % 2 == 1 ? q.wrong() : q.correct();
    rows.push_back(Json{{"messages", Json::array({Json{{"role", "user"}, {"content", q.text}},
                                                  Json{{"role", "assistant"},
                                                       {"content", std::to_string(answer)}}})}});
  }
  return rows;
}

std::vector<Json> preference_rows(const std::vector<CompareQuestion>& questions) {
  std::vector<Json> rows;
  for (const CompareQuestion& q : questions) {
    rows.push_back(Json{{"prompt", q.text},
                        {"chosen", std::to_string(q.correct())},
                        {"rejected", std::to_string(q.wrong())}});
  }
  return rows;
}

std::optional<int> parse_digit_reply(std::string_view reply) {
  auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!reply.empty() && space(reply.front())) reply.remove_prefix(1);
  while (!reply.empty() && space(reply.back())) reply.remove_suffix(1);
  if (reply.size() == 2 && reply[1] == '.') reply.remove_suffix(1);
  if (reply.size() != 1 || reply[0] < '0' || reply[0] > '9') return std::nullopt;
  return reply[0] - '0';
}

bool is_correct_reply(const CompareQuestion& question, std::string_view reply) {
  const std::optional<int> digit = parse_digit_reply(reply);
  return digit.has_value() && *digit == question.correct();
}

std::string to_jsonl(const std::vector<Json>& rows) {
  std::string out;
  for (const Json& row : rows) out += row.dump() + "\n";
  return out;
}

}  // namespace tulu

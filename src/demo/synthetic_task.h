// The built-in demo's synthetic chat task (`tulu demo`): "which of two digits is larger",
// asked in eight phrasings ("Which is larger, 7 or 3?"), answered with the digit alone.
// Deterministic: the same seed gives the same questions, splits and files on every machine.
//
// Why this task: a 2-layer model learns the format (answer with one of the two digits in the
// question) within a minute of SFT, and the property DPO must teach — pick the LARGER one —
// is a real rule that transfers to questions never seen in training. The SFT data is noisy
// the way real SFT data is: half of its answers name the smaller digit, so the SFT model is
// about indifferent between the right and the wrong digit. The DPO pairs prefer the correct
// answer over exactly that wrong one. (A one-sided mistake such as "answer + 1" lets DPO win
// by a shortcut — "prefer the smaller number" — without learning the task; here the wrong
// digit is above or below depending on the question, so no such shortcut exists.)
//
// Every (a, b, phrasing) question appears in at most one split: SFT, DPO or held-out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace tulu {

struct CompareQuestion {
  int a = 0, b = 0;  // the two digits in the order asked, a ≠ b, each in [0, 9]
  int phrasing = 0;  // index into compare_phrasings()
  std::string text;  // the user message
  int correct() const { return a > b ? a : b; }
  int wrong() const { return a > b ? b : a; }
};

// The phrasings, each with "{a}" and "{b}" once.
const std::vector<std::string_view>& compare_phrasings();

// All 90 ordered digit pairs × every phrasing, in a fixed order.
std::vector<CompareQuestion> all_compare_questions();

struct DemoSplit {
  std::vector<CompareQuestion> sft, dpo, held_out;
};

// Shuffles all questions with `seed` (SplitMix64, Fisher–Yates) and cuts them into
// held_out, dpo and the rest for SFT. Throws tulu::Error unless held_out, dpo ≥ 1 and
// held_out + dpo < the number of questions.
DemoSplit split_compare_questions(uint64_t seed, int64_t held_out, int64_t dpo);

// SFT rows {"messages": [user, assistant]}: the answer of row i is wrong when i is odd, so
// exactly half (rounded down) of the rows are wrong, spread evenly over the file.
std::vector<Json> sft_rows(const std::vector<CompareQuestion>& questions);
// Preference rows {"prompt", "chosen" (the correct digit), "rejected" (the wrong digit)}.
std::vector<Json> preference_rows(const std::vector<CompareQuestion>& questions);

// The digit a reply states: the reply with surrounding whitespace removed must be one
// decimal digit (optionally followed by "."); anything else is nullopt.
std::optional<int> parse_digit_reply(std::string_view reply);
// Exact match: the reply states the larger digit.
bool is_correct_reply(const CompareQuestion& question, std::string_view reply);

// Rows as JSON Lines (one compact object per line).
std::string to_jsonl(const std::vector<Json>& rows);

}  // namespace tulu

// summarize_preferences, preference_report_json, preference_report_table (preference_eval.h):
// from per-pair summed log-probs to the report's means, accuracies and DPO loss.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "eval/preference_eval.h"

namespace tulu {

namespace {

// −log σ(x) without overflow: log(1 + e^−x) = max(−x, 0) + log1p(e^−|x|).
double neg_log_sigmoid(double x) {
  return std::max(-x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
}

int64_t count_of(double fraction, int64_t pairs) {
  return static_cast<int64_t>(std::llround(fraction * static_cast<double>(pairs)));
}

void add_row(std::string& out, const char* metric, const std::string& value,
             const std::string& note) {
  char line[256];
  std::snprintf(line, sizeof line, "%-26s %-14s %s", metric, value.c_str(), note.c_str());
  std::string text = line;
  while (!text.empty() && text.back() == ' ') text.pop_back();
  out += text;
  out += '\n';
}

std::string fixed(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6f", value);
  return buffer;
}

std::string accuracy_note(double fraction, int64_t pairs, const char* what) {
  return str_cat("(", count_of(fraction, pairs), " of ", pairs, " pairs: ", what, ")");
}

}  // namespace

PreferenceReport summarize_preferences(const std::vector<PairScores>& policy,
                                       const std::vector<PairScores>& reference, double beta) {
  TULU_CHECK(std::isfinite(beta) && beta > 0, "beta must be a number > 0, got ", beta);
  TULU_CHECK(!policy.empty(), "no preference pairs to summarize");
  const bool has_reference = !reference.empty();
  TULU_CHECK(!has_reference || reference.size() == policy.size(), "reference scores for ",
             reference.size(), " pairs, policy scores for ", policy.size());
  const auto n = static_cast<int64_t>(policy.size());
  PreferenceReport r;
  r.pairs = n;
  r.has_reference = has_reference;
  r.beta = beta;
  int64_t logp_wins = 0, token_wins = 0, reward_wins = 0;
  for (size_t i = 0; i < policy.size(); ++i) {
    const PairScores& p = policy[i];
    TULU_CHECK(p.chosen_tokens > 0 && p.rejected_tokens > 0, "pair ", i,
               ": token counts must be > 0, got chosen ", p.chosen_tokens, ", rejected ",
               p.rejected_tokens);
    const double token_c = p.chosen_logp / static_cast<double>(p.chosen_tokens);
    const double token_r = p.rejected_logp / static_cast<double>(p.rejected_tokens);
    r.mean_logp_chosen += p.chosen_logp;
    r.mean_logp_rejected += p.rejected_logp;
    r.mean_token_logp_chosen += token_c;
    r.mean_token_logp_rejected += token_r;
    logp_wins += p.chosen_logp > p.rejected_logp ? 1 : 0;
    token_wins += token_c > token_r ? 1 : 0;
    r.logp_ties += p.chosen_logp == p.rejected_logp ? 1 : 0;
    if (!has_reference) continue;
    const PairScores& ref = reference[i];
    TULU_CHECK(ref.chosen_tokens == p.chosen_tokens && ref.rejected_tokens == p.rejected_tokens,
               "pair ", i, ": the reference scored ", ref.chosen_tokens, "/", ref.rejected_tokens,
               " chosen/rejected tokens, the policy ", p.chosen_tokens, "/", p.rejected_tokens);
    // TRL's DPO: rewards β(π − ref) per side; loss −log σ(β((π_c − π_r) − (ref_c − ref_r))).
    const double reward_c = beta * (p.chosen_logp - ref.chosen_logp);
    const double reward_r = beta * (p.rejected_logp - ref.rejected_logp);
    const double logits = (p.chosen_logp - p.rejected_logp) - (ref.chosen_logp - ref.rejected_logp);
    r.mean_reward_chosen += reward_c;
    r.mean_reward_rejected += reward_r;
    r.mean_margin += reward_c - reward_r;
    reward_wins += reward_c > reward_r ? 1 : 0;
    r.dpo_loss += neg_log_sigmoid(beta * logits);
  }
  const auto count = static_cast<double>(n);
  r.mean_logp_chosen /= count;
  r.mean_logp_rejected /= count;
  r.mean_token_logp_chosen /= count;
  r.mean_token_logp_rejected /= count;
  r.logp_accuracy = static_cast<double>(logp_wins) / count;
  r.token_logp_accuracy = static_cast<double>(token_wins) / count;
  if (has_reference) {
    r.mean_reward_chosen /= count;
    r.mean_reward_rejected /= count;
    r.mean_margin /= count;
    r.reward_accuracy = static_cast<double>(reward_wins) / count;
    r.dpo_loss /= count;
  }
  return r;
}

Json preference_report_json(const PreferenceReport& r) {
  Json j = Json::object();
  j["pairs"] = r.pairs;
  j["has_reference"] = r.has_reference;
  j["beta"] = r.beta;
  j["mean_logp_chosen"] = r.mean_logp_chosen;
  j["mean_logp_rejected"] = r.mean_logp_rejected;
  j["mean_token_logp_chosen"] = r.mean_token_logp_chosen;
  j["mean_token_logp_rejected"] = r.mean_token_logp_rejected;
  j["logp_accuracy"] = r.logp_accuracy;
  j["token_logp_accuracy"] = r.token_logp_accuracy;
  j["logp_ties"] = r.logp_ties;
  if (r.has_reference) {
    j["reward_accuracy"] = r.reward_accuracy;
    j["mean_margin"] = r.mean_margin;
    j["mean_reward_chosen"] = r.mean_reward_chosen;
    j["mean_reward_rejected"] = r.mean_reward_rejected;
    j["dpo_loss"] = r.dpo_loss;
  }
  return j;
}

std::string preference_report_table(const PreferenceReport& r) {
  std::string out = r.has_reference ? str_cat("preference evaluation: ", r.pairs,
                                              " pairs, policy vs reference, beta ", r.beta, "\n")
                                    : str_cat("preference evaluation: ", r.pairs,
                                              " pairs, policy only (no reference)\n");
  add_row(out, "metric", "value", "");
  add_row(out, "pairs", std::to_string(r.pairs), "");
  if (r.has_reference) {
    add_row(out, "reward_accuracy", fixed(r.reward_accuracy),
            accuracy_note(r.reward_accuracy, r.pairs, "reward chosen > rejected"));
    add_row(out, "mean_margin", fixed(r.mean_margin), "(reward chosen - rejected)");
    add_row(out, "mean_reward_chosen", fixed(r.mean_reward_chosen), "(beta * (logp - ref logp))");
    add_row(out, "mean_reward_rejected", fixed(r.mean_reward_rejected), "");
    add_row(out, "dpo_loss", fixed(r.dpo_loss), "(mean -log sigmoid(margin))");
  }
  add_row(out, "mean_logp_chosen", fixed(r.mean_logp_chosen), "(summed over completion tokens)");
  add_row(out, "mean_logp_rejected", fixed(r.mean_logp_rejected), "");
  add_row(out, "mean_token_logp_chosen", fixed(r.mean_token_logp_chosen), "(per token)");
  add_row(out, "mean_token_logp_rejected", fixed(r.mean_token_logp_rejected), "");
  add_row(out, "logp_accuracy", fixed(r.logp_accuracy),
          accuracy_note(r.logp_accuracy, r.pairs, "logp chosen > rejected"));
  add_row(out, "token_logp_accuracy", fixed(r.token_logp_accuracy),
          accuracy_note(r.token_logp_accuracy, r.pairs, "per-token logp chosen > rejected"));
  add_row(out, "logp_ties", std::to_string(r.logp_ties), "(logp chosen == rejected)");
  return out;
}

}  // namespace tulu

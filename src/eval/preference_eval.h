// Preference evaluation (`tulu eval prefs`, the built-in demo): how strongly a policy — and,
// with a reference model, its DPO implicit reward β·(π − ref) — prefers the chosen over the
// rejected completion of each pair.
//
// Log-probs come from the inference model (llama/model.h: any weight format it loads,
// F32/BF16/F16 safetensors or GGUF incl. quantized), so evaluating a 70B policy needs no fp32
// master copy. Each pair's prompt is evaluated once; the KV cache is rewound to the prompt
// and each completion evaluated after it, which equals scoring prompt + completion from
// scratch up to fp32 summation order. log p(target) = logit[target] − logsumexp(logits), in
// double over the fp32 logits.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/thread_pool.h"
#include "llama/model.h"
#include "llama/session.h"
#include "train/preference_data.h"

namespace tulu {

// One pair's completion scores under one model. Log-probs are SUMMED over the completion
// tokens (the reply plus </s>), as Tulu 2's DPO uses them.
struct PairScores {
  double chosen_logp = 0.0;
  double rejected_logp = 0.0;
  int64_t chosen_tokens = 0;
  int64_t rejected_tokens = 0;
};

// Called after each scored pair with (pairs done, pairs total); may be empty.
using PairProgress = std::function<void(int64_t done, int64_t total)>;

// Scores every pair with `model` (pairs in order; result[i] for pairs[i]). Throws tulu::Error
// when a pair's prompt + longer completion exceeds the model's max_position_embeddings
// (naming the pair's source line and the lengths) or an id is outside the vocabulary.
// kv_type: the element type of the scoring session's KV cache (llama/session.h).
std::vector<PairScores> score_preference_pairs(const LlamaModel& model,
                                               const std::vector<PreferencePair>& pairs,
                                               ThreadPool& pool, const PairProgress& progress,
                                               KvType kv_type = KvType::F32);

// The checks score_preference_pairs makes before computing anything — a non-empty prompt and
// completions, prompt + longer completion ≤ max_position_embeddings, every id inside the
// vocabulary — so that a command can check each of its models before scoring with the first.
// Throws tulu::Error naming the pair's source line.
void check_preference_pairs(const LlamaModel& model, const std::vector<PreferencePair>& pairs);

struct PreferenceReport {
  int64_t pairs = 0;
  bool has_reference = false;
  double beta = 0.1;
  // Policy log-probs (summed), means over pairs; per-token = mean of logp/len per side.
  double mean_logp_chosen = 0.0, mean_logp_rejected = 0.0;
  double mean_token_logp_chosen = 0.0, mean_token_logp_rejected = 0.0;
  // Raw comparison without a reference: fraction of pairs with π_c > π_r (strict), with the
  // summed and with the length-averaged log-probs; ties = pairs with π_c == π_r.
  double logp_accuracy = 0.0, token_logp_accuracy = 0.0;
  int64_t logp_ties = 0;
  // With a reference (has_reference): rewards β·(π − ref) per side, TRL's accuracy
  // (reward_c > reward_r, strict), mean margin, and the mean sigmoid DPO loss
  // −log σ(β((π_c − ref_c) − (π_r − ref_r))).
  double reward_accuracy = 0.0, mean_margin = 0.0;
  double mean_reward_chosen = 0.0, mean_reward_rejected = 0.0, dpo_loss = 0.0;
};

// policy[i] / reference[i] for the same pair i; reference empty = no reference (else the
// sizes must match and the token counts agree; throws tulu::Error otherwise). β > 0.
PreferenceReport summarize_preferences(const std::vector<PairScores>& policy,
                                       const std::vector<PairScores>& reference, double beta);

// Report as JSON (field names as the struct's; reference fields only with a reference).
Json preference_report_json(const PreferenceReport& report);
// A human-readable table (metric, value), one metric per line.
std::string preference_report_table(const PreferenceReport& report);

}  // namespace tulu

// The DPO loss family on per-sequence log-probs, with TRL's metrics.
//
// Definitions follow open-instruct (open_instruct/dpo_utils.py: dpo_loss, simpo_loss;
// dpo_tune_cache.py: which losses average their log-probs) and TRL (DPOTrainer.dpo_loss,
// loss types "sigmoid", "ipo", "hinge"). With Δπ = πc − πr and Δref = refc − refr on the
// log-probs the loss uses (see "Averaged" below), z = Δπ − Δref, ε = label_smoothing:
//   sigmoid   loss = −logσ(β z)(1−ε) − logσ(−β z) ε             (summed log-probs; Tulu 2)
//   dpo_norm  the sigmoid loss on length-averaged log-probs      (open-instruct "dpo_norm")
//   ipo       loss = (z − 1/(2β))²                                (TRL; averaged log-probs)
//   hinge     loss = max(0, 1 − β z)                              (TRL; summed log-probs)
//   simpo     z = Δπ − γ/β ratio, no reference:                   (open-instruct simpo_loss;
//             loss = −logσ(β z)(1−ε) − logσ(−β z) ε                averaged log-probs)
// ipo and hinge ignore label_smoothing, as TRL does (see dpo_loss_uses_label_smoothing).
// Rewards: β·(π − ref) per side on the same (summed or averaged) log-probs; simpo: β·π.
// Averaged = summed log-prob / number of completion tokens of that side.
// All arithmetic in double; log-sigmoid in the stable softplus form, so |β z| up to 1e300
// gives finite losses and gradients.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.h"

namespace tulu {

enum class DpoLossType { Sigmoid, Ipo, Hinge, DpoNorm, Simpo };

// "sigmoid", "ipo", "hinge", "dpo_norm", "simpo". Anything else throws tulu::Error listing
// the accepted names.
DpoLossType parse_dpo_loss(std::string_view name);
// The inverse of parse_dpo_loss.
const char* dpo_loss_name(DpoLossType type);

struct DpoLossOptions {
  DpoLossType type = DpoLossType::Sigmoid;
  double beta = 0.1;             // β (TRL / open-instruct / Tulu 2 default 0.1)
  double label_smoothing = 0.0;  // ε in [0, 0.5]; conservative DPO when > 0
  // SimPO's target margin expressed as γ/β (open-instruct --gamma_beta_ratio, default 0.3):
  // logits = β·(Δπ − ratio), i.e. the margin γ = β·ratio. `--simpo-gamma` sets this ratio.
  double simpo_gamma_beta_ratio = 0.3;
};

// Throws tulu::Error naming the field when β ≤ 0 or not finite, ε outside [0, 0.5], or the
// SimPO ratio not finite.
void validate_dpo_options(const DpoLossOptions& options);

// False for simpo: it needs no reference model (ref_* inputs are ignored).
bool dpo_loss_uses_reference(DpoLossType type);
// True when the loss uses length-averaged log-probs (ipo, dpo_norm, simpo).
bool dpo_loss_averages_logps(DpoLossType type);
// False for ipo and hinge, which ignore label_smoothing (TRL does the same, with a warning).
bool dpo_loss_uses_label_smoothing(DpoLossType type);

// One preference pair. Log-probs are SUMMED over the completion tokens (the reply plus </s>);
// the loss averages them itself where its definition says so.
struct DpoPairInput {
  double policy_chosen = 0.0;
  double policy_rejected = 0.0;
  double ref_chosen = 0.0;      // ignored when !dpo_loss_uses_reference(type)
  double ref_rejected = 0.0;    // ignored when !dpo_loss_uses_reference(type)
  int64_t chosen_tokens = 0;    // completion tokens scored; ≥ 1 for averaging losses
  int64_t rejected_tokens = 0;  // completion tokens scored; ≥ 1 for averaging losses
};

struct DpoPairOutput {
  double loss = 0.0;
  // ∂loss/∂(summed policy log-probs), the 1/len factor of averaged losses included. The
  // trainer scales these by 1/(pairs in the optimizer batch) for the batch mean.
  double grad_policy_chosen = 0.0;
  double grad_policy_rejected = 0.0;
  double reward_chosen = 0.0;
  double reward_rejected = 0.0;
  // The policy log-probs as the loss used them (summed or averaged): TRL's logps/*.
  double logps_chosen = 0.0;
  double logps_rejected = 0.0;
};

// Throws tulu::Error when an averaging loss gets a side with < 1 token or an input is NaN.
DpoPairOutput dpo_pair_loss(const DpoPairInput& pair, const DpoLossOptions& options);

// TRL's per-batch metrics, accumulated pair by pair (and merged across micro-batches or
// threads). Every metric is a mean over pairs, except logits/*, which are Σ logits / count
// as the caller adds them (TRL: mean of the policy logits over the completion positions of
// that side, all vocabulary entries).
struct DpoMetrics {
  int64_t pairs = 0;
  double sum_loss = 0.0;
  double sum_reward_chosen = 0.0;
  double sum_reward_rejected = 0.0;
  double sum_accuracy = 0.0;  // count of reward_chosen > reward_rejected (strict, as TRL)
  double sum_margin = 0.0;
  double sum_logps_chosen = 0.0;
  double sum_logps_rejected = 0.0;
  double sum_logits_chosen = 0.0;
  double sum_logits_rejected = 0.0;
  int64_t logits_chosen_count = 0;
  int64_t logits_rejected_count = 0;

  void add(const DpoPairOutput& pair);
  // Σ logits and how many values were summed, per side.
  void add_logits(double chosen_sum, int64_t chosen_count, double rejected_sum,
                  int64_t rejected_count);
  void merge(const DpoMetrics& other);

  double loss() const;
  double reward_chosen() const;
  double reward_rejected() const;
  double accuracy() const;
  double margin() const;
  double logps_chosen() const;
  double logps_rejected() const;
  double logits_chosen() const;  // 0 when no logits were added
  double logits_rejected() const;

  // {"<prefix>loss", "<prefix>rewards/chosen", "<prefix>rewards/rejected",
  //  "<prefix>rewards/accuracies", "<prefix>rewards/margins", "<prefix>logps/chosen",
  //  "<prefix>logps/rejected", "<prefix>logits/chosen", "<prefix>logits/rejected"};
  // prefix "" for training rows, "eval_" for evaluation rows. logits/* are left out when
  // none were added. Requires pairs > 0 (throws tulu::Error otherwise).
  Json to_json(const std::string& prefix = "") const;
};

}  // namespace tulu

// One optimizer step's worth of DPO work: pairs → the policy's batched forward over
// [chosen_0..chosen_n-1, rejected_0..rejected_n-1], reference log-probs, the per-pair loss,
// and the weighted backward; plus evaluation over a preference set.
//
// Each side is one sequence: input = prompt + completion, labels = −100 on the prompt and the
// completion ids after it (Hugging Face's unshifted labels), so logp_sum is the summed
// log-prob of the completion (its </s> included) and tokens its length.
#pragma once

#include <cstdint>
#include <vector>

#include "train/dpo_loss.h"
#include "train/preference_data.h"
#include "train/train_model.h"

namespace tulu {

// A pair's two sequences, built once from a PreferencePair.
struct DpoSequences {
  std::vector<int> chosen_input, chosen_labels;
  std::vector<int> rejected_input, rejected_labels;
};

std::vector<DpoSequences> build_dpo_sequences(const PreferenceDataset& data);

// Where reference log-probs come from: a model (the frozen starting copy or --ref-model:
// `model` with `params`), or a table indexed by pair (--precompute-ref). For a loss that uses
// no reference (simpo) both are null and the reference log-probs are 0.
struct DpoReference {
  TrainModel* model = nullptr;
  const float* params = nullptr;
  const std::vector<double>* chosen = nullptr;  // [pair index] summed log-probs
  const std::vector<double>* rejected = nullptr;
};

// Summed reference log-probs of the given pairs: [chosen of each pair..., rejected...]
// (2·n values). A model reference runs forward_logprobs without keeping activations.
std::vector<double> reference_logps(const DpoReference& ref, const std::vector<DpoSequences>& seqs,
                                    const std::vector<int64_t>& pairs);

// The batch [chosen_0..chosen_n-1, rejected_0..rejected_n-1] of the given pairs (views into
// seqs, which must outlive it).
std::vector<TrainSequence> dpo_batch(const std::vector<DpoSequences>& seqs,
                                     const std::vector<int64_t>& pairs);

struct DpoStepStats {
  DpoMetrics metrics;         // over the step's pairs
  int64_t input_tokens = 0;   // Σ sequence lengths, both sides
  int64_t target_tokens = 0;  // Σ completion tokens, both sides
};

// grads += ∂(mean over all the step's pairs of the pair loss)/∂θ. The policy forward keeps
// its activations for backward_logprobs; the reference is computed before it (it may share
// the policy's TrainModel). Throws tulu::Error when a loss or gradient is not finite.
DpoStepStats accumulate_dpo_step_gradient(TrainModel& policy, const float* params, float* grads,
                                          const DpoReference& ref,
                                          const std::vector<DpoSequences>& seqs,
                                          const std::vector<std::vector<int64_t>>& micro_batches,
                                          const DpoLossOptions& loss);

// Metrics over a whole set in file order, batch_size pairs at a time (no gradient).
DpoMetrics evaluate_dpo(TrainModel& policy, const float* params, const DpoReference& ref,
                        const std::vector<DpoSequences>& seqs, int64_t batch_size,
                        const DpoLossOptions& loss);

}  // namespace tulu

// One optimizer step's worth of work for SFT: building micro-batches from example indices,
// accumulating their gradient with the scaling that makes a step's gradient the mean of its
// micro-batches' mean-token-loss gradients, and token-weighted evaluation over a data set.
#pragma once

#include <cstdint>
#include <vector>

#include "train/sft_data.h"
#include "train/train_model.h"

namespace tulu {

// Views of the examples of one micro-batch (spans into the data set; it must outlive this).
struct MicroBatch {
  std::vector<TrainSequence> sequences;
  std::vector<const SftExample*> examples;
  int64_t target_tokens = 0;  // counted targets (after the shift)
  int64_t input_tokens = 0;   // Σ sequence lengths
};

MicroBatch make_micro_batch(const SftDataset& data, const std::vector<int64_t>& indices);

struct StepStats {
  // Mean over the step's micro-batches of each one's mean token loss — what Hugging Face's
  // Trainer logs (it accumulates loss / grad_accum per micro-batch) and what the gradient is
  // the gradient of. Micro-batches without a counted target (possible only for rows whose
  // sole label is at position 0) take no part in either.
  double loss = 0;
  double accuracy = 0;  // token-weighted: Σ correct / Σ target tokens of the step
  int64_t target_tokens = 0;
  int64_t input_tokens = 0;
  int64_t micro_batches = 0;  // those that had targets
};

// grads += ∂(step loss)/∂θ, where step loss = (1/K) Σ_k (1/N_k) Σ token losses of micro-batch
// k: each forward_backward gets loss_scale 1/(N_k · K).
StepStats accumulate_step_gradient(TrainModel& model, const std::vector<MicroBatch>& micro_batches,
                                   const float* params, float* grads);

struct EvalStats {
  double loss = 0;      // token-weighted mean cross-entropy over the whole set
  double accuracy = 0;  // token-weighted
  int64_t tokens = 0;   // counted targets
};

// Evaluates the examples in file order, batch_size sequences at a time.
EvalStats evaluate_dataset(TrainModel& model, const SftDataset& data, int64_t batch_size,
                           const float* params);

}  // namespace tulu

// Training forward and backward of the Llama model on fp32 master weights, written out per
// operation (no autograd): embedding → L × [RMSNorm → q/k/v → RoPE → causal GQA attention →
// o_proj → residual → RMSNorm → gate/up → SiLU·mul → down → residual] → RMSNorm → lm_head
// (or the tied embedding) → token cross-entropy with ignored labels.
//
// A micro-batch is a list of sequences of different lengths. They are packed row after row
// ([Σ T_i, hidden]) for every matmul and each runs its own causal attention from position 0,
// which equals padding to the longest with right padding and an attention mask (what
// Hugging Face does) without computing the padding.
//
// Labels follow Hugging Face: labels[t] is the target of the logits at t − 1 (the shift is
// done here); kIgnoreIndex (−100) excludes a position.
//
// Memory: the forward keeps, per layer, its input, the two normalised inputs, q/k/v, the
// attention output and log-sum-exp, gate/up: about (4·hidden + 2·q_dim + 2·kv_dim +
// 2·intermediate) floats per token per layer. With activation checkpointing only each layer's
// input is kept and the layer is recomputed during the backward (one layer's worth live).
// The [tokens, vocab] logits are processed in row chunks so they are never all in memory, and
// only for the rows with a counted target (an ignored row has no loss and no gradient).
// Not thread-safe; kernels use the given pool.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "llama/config.h"
#include "train/param_set.h"

namespace tulu {

struct TrainSequence {
  std::span<const int> input_ids;  // T ≥ 1 ids in [0, vocab)
  std::span<const int> labels;     // T labels: kIgnoreIndex or an id in [0, vocab)
};

struct LossStats {
  double loss_sum = 0;  // Σ token cross-entropy over the counted targets
  int64_t tokens = 0;   // counted targets (after the shift, label ≠ −100)
  int64_t correct = 0;  // targets equal to the argmax of their logits
};

// Per-sequence log-probability of its targets (DPO and preference evaluation).
struct SequenceLogProb {
  double logp_sum = 0;    // Σ log p(target) over the counted targets
  int64_t tokens = 0;     // counted targets
  int64_t correct = 0;    // targets equal to the argmax of their logits
  double logits_sum = 0;  // Σ over counted targets of the mean logit over the vocabulary
};

// Counted targets of a sequence after the shift (labels[1..T-1] ≠ −100).
int64_t count_target_tokens(const TrainSequence& sequence);

class TrainModel {
 public:
  // params: the flat master weights (layout as ParamLayout(config)); must outlive this.
  TrainModel(const LlamaConfig& config, const ParamLayout& layout, ThreadPool& pool,
             bool checkpoint_activations);
  ~TrainModel();

  // Forward + backward over one micro-batch: grads (flat, layout order) += loss_scale ·
  // ∂(Σ token losses)/∂θ. Returns the loss sums (unscaled). Throws tulu::Error for a bad id
  // or label, naming the sequence and position; then grads may be partially updated.
  LossStats forward_backward(std::span<const TrainSequence> batch, const float* params,
                             float* grads, float loss_scale);

  // Forward only (evaluation; no activations kept).
  LossStats evaluate(std::span<const TrainSequence> batch, const float* params);

  // Per-sequence log-probs of the batch. With keep_for_backward the activations (and, up to
  // 1 GiB, the logits) are kept for one backward_logprobs call.
  std::vector<SequenceLogProb> forward_logprobs(std::span<const TrainSequence> batch,
                                                const float* params, bool keep_for_backward);
  // grads += Σ_s weights[s] · ∂ logp_sum[s] / ∂θ for the batch of the last
  // forward_logprobs(…, true) (one weight per sequence; params unchanged since). Throws
  // tulu::Error when there is no such forward or the weight count differs.
  void backward_logprobs(std::span<const double> weights, const float* params, float* grads);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tulu

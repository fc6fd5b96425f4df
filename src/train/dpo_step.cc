#include "train/dpo_step.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/cross_entropy.h"

namespace tulu {

namespace {

void append_side(const std::vector<int>& prompt, const std::vector<int>& completion,
                 std::vector<int>& input, std::vector<int>& labels) {
  input = prompt;
  input.insert(input.end(), completion.begin(), completion.end());
  labels.assign(prompt.size(), kIgnoreIndex);
  labels.insert(labels.end(), completion.begin(), completion.end());
}

// Adds one micro-batch's pairs to metrics; returns the per-pair losses' outputs.
std::vector<DpoPairOutput> score_pairs(const std::vector<SequenceLogProb>& policy,
                                       const std::vector<double>& ref, const DpoLossOptions& loss,
                                       DpoMetrics& metrics) {
  const size_t n = policy.size() / 2;
  std::vector<DpoPairOutput> outputs(n);
  for (size_t i = 0; i < n; ++i) {
    const SequenceLogProb& chosen = policy[i];
    const SequenceLogProb& rejected = policy[n + i];
    DpoPairInput input;
    input.policy_chosen = chosen.logp_sum;
    input.policy_rejected = rejected.logp_sum;
    input.ref_chosen = ref[i];
    input.ref_rejected = ref[n + i];
    input.chosen_tokens = chosen.tokens;
    input.rejected_tokens = rejected.tokens;
    outputs[i] = dpo_pair_loss(input, loss);
    metrics.add(outputs[i]);
    metrics.add_logits(chosen.logits_sum, chosen.tokens, rejected.logits_sum, rejected.tokens);
  }
  return outputs;
}

}  // namespace

std::vector<DpoSequences> build_dpo_sequences(const PreferenceDataset& data) {
  std::vector<DpoSequences> seqs(data.pairs.size());
  for (size_t i = 0; i < data.pairs.size(); ++i) {
    const PreferencePair& p = data.pairs[i];
    append_side(p.prompt_ids, p.chosen_ids, seqs[i].chosen_input, seqs[i].chosen_labels);
    append_side(p.prompt_ids, p.rejected_ids, seqs[i].rejected_input, seqs[i].rejected_labels);
  }
  return seqs;
}

std::vector<TrainSequence> dpo_batch(const std::vector<DpoSequences>& seqs,
                                     const std::vector<int64_t>& pairs) {
  std::vector<TrainSequence> batch;
  batch.reserve(2 * pairs.size());
  for (const int64_t i : pairs) {
    const DpoSequences& s = seqs[static_cast<size_t>(i)];
    batch.push_back({s.chosen_input, s.chosen_labels});
  }
  for (const int64_t i : pairs) {
    const DpoSequences& s = seqs[static_cast<size_t>(i)];
    batch.push_back({s.rejected_input, s.rejected_labels});
  }
  return batch;
}

std::vector<double> reference_logps(const DpoReference& ref, const std::vector<DpoSequences>& seqs,
                                    const std::vector<int64_t>& pairs) {
  const size_t n = pairs.size();
  std::vector<double> out(2 * n, 0.0);
  if (ref.chosen != nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const auto index = static_cast<size_t>(pairs[i]);
      TULU_CHECK(index < ref.chosen->size() && index < ref.rejected->size(),
                 "internal: no reference log-prob for pair ", index);
      out[i] = (*ref.chosen)[index];
      out[n + i] = (*ref.rejected)[index];
    }
  } else if (ref.model != nullptr) {
    const std::vector<TrainSequence> batch = dpo_batch(seqs, pairs);
    const std::vector<SequenceLogProb> logps =
        ref.model->forward_logprobs(batch, ref.params, /*keep_for_backward=*/false);
    for (size_t s = 0; s < logps.size(); ++s) out[s] = logps[s].logp_sum;
  }
  return out;
}

DpoStepStats accumulate_dpo_step_gradient(TrainModel& policy, const float* params, float* grads,
                                          const DpoReference& ref,
                                          const std::vector<DpoSequences>& seqs,
                                          const std::vector<std::vector<int64_t>>& micro_batches,
                                          const DpoLossOptions& loss) {
  DpoStepStats stats;
  int64_t step_pairs = 0;
  for (const auto& pairs : micro_batches) step_pairs += static_cast<int64_t>(pairs.size());
  TULU_CHECK(step_pairs > 0, "internal: a DPO step without pairs");
  const double scale = 1.0 / static_cast<double>(step_pairs);
  for (const auto& pairs : micro_batches) {
    const std::vector<double> ref_logps = reference_logps(ref, seqs, pairs);
    const std::vector<TrainSequence> batch = dpo_batch(seqs, pairs);
    const std::vector<SequenceLogProb> logps =
        policy.forward_logprobs(batch, params, /*keep_for_backward=*/true);
    const std::vector<DpoPairOutput> outputs = score_pairs(logps, ref_logps, loss, stats.metrics);
    const size_t n = pairs.size();
    std::vector<double> weights(2 * n);
    for (size_t i = 0; i < n; ++i) {
      weights[i] = outputs[i].grad_policy_chosen * scale;
      weights[n + i] = outputs[i].grad_policy_rejected * scale;
      TULU_CHECK(std::isfinite(outputs[i].loss) && std::isfinite(weights[i]) &&
                     std::isfinite(weights[n + i]),
                 "training diverged: pair ", pairs[i], " has loss ", outputs[i].loss,
                 " (try a lower --lr or --beta)");
    }
    policy.backward_logprobs(weights, params, grads);
    for (size_t s = 0; s < batch.size(); ++s) {
      stats.input_tokens += static_cast<int64_t>(batch[s].input_ids.size());
      stats.target_tokens += logps[s].tokens;
    }
  }
  return stats;
}

DpoMetrics evaluate_dpo(TrainModel& policy, const float* params, const DpoReference& ref,
                        const std::vector<DpoSequences>& seqs, int64_t batch_size,
                        const DpoLossOptions& loss) {
  DpoMetrics metrics;
  const auto total = static_cast<int64_t>(seqs.size());
  for (int64_t first = 0; first < total; first += batch_size) {
    std::vector<int64_t> pairs;
    for (int64_t i = first; i < std::min(total, first + batch_size); ++i) pairs.push_back(i);
    const std::vector<double> ref_logps = reference_logps(ref, seqs, pairs);
    const std::vector<SequenceLogProb> logps =
        policy.forward_logprobs(dpo_batch(seqs, pairs), params, /*keep_for_backward=*/false);
    score_pairs(logps, ref_logps, loss, metrics);
  }
  return metrics;
}

}  // namespace tulu

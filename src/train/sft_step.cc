#include "train/sft_step.h"

#include <algorithm>

#include "core/error.h"

namespace tulu {

MicroBatch make_micro_batch(const SftDataset& data, const std::vector<int64_t>& indices) {
  MicroBatch batch;
  batch.sequences.reserve(indices.size());
  batch.examples.reserve(indices.size());
  for (const int64_t index : indices) {
    TULU_CHECK(index >= 0 && index < static_cast<int64_t>(data.examples.size()),
               "batch plan: example index ", index, " out of range (", data.examples.size(),
               " examples)");
    const SftExample& example = data.examples[static_cast<size_t>(index)];
    const TrainSequence sequence{example.input_ids, example.labels};
    batch.sequences.push_back(sequence);
    batch.examples.push_back(&example);
    batch.target_tokens += count_target_tokens(sequence);
    batch.input_tokens += static_cast<int64_t>(example.input_ids.size());
  }
  return batch;
}

StepStats accumulate_step_gradient(TrainModel& model, const std::vector<MicroBatch>& micro_batches,
                                   const float* params, float* grads) {
  StepStats stats;
  stats.micro_batches = std::count_if(micro_batches.begin(), micro_batches.end(),
                                      [](const MicroBatch& b) { return b.target_tokens > 0; });
  int64_t correct = 0;
  double loss_of_means = 0;
  for (const MicroBatch& batch : micro_batches) {
    stats.input_tokens += batch.input_tokens;
    if (batch.target_tokens == 0) continue;
    // Computed in double, rounded once: the same scale PyTorch applies to a mean loss
    // divided by the number of accumulated micro-batches, up to that single rounding.
    const double scale =
        1.0 / (static_cast<double>(batch.target_tokens) * static_cast<double>(stats.micro_batches));
    const LossStats loss =
        model.forward_backward(batch.sequences, params, grads, static_cast<float>(scale));
    TULU_CHECK(loss.tokens == batch.target_tokens, "internal: the model counted ", loss.tokens,
               " target tokens, the batch has ", batch.target_tokens);
    loss_of_means += loss.loss_sum / static_cast<double>(loss.tokens);
    stats.target_tokens += loss.tokens;
    correct += loss.correct;
  }
  if (stats.micro_batches > 0) {
    stats.loss = loss_of_means / static_cast<double>(stats.micro_batches);
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(stats.target_tokens);
  }
  return stats;
}

EvalStats evaluate_dataset(TrainModel& model, const SftDataset& data, int64_t batch_size,
                           const float* params) {
  EvalStats stats;
  double loss_sum = 0;
  int64_t correct = 0;
  const auto n = static_cast<int64_t>(data.examples.size());
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = begin; i < std::min(n, begin + batch_size); ++i) indices.push_back(i);
    const MicroBatch batch = make_micro_batch(data, indices);
    const LossStats loss = model.evaluate(batch.sequences, params);
    loss_sum += loss.loss_sum;
    stats.tokens += loss.tokens;
    correct += loss.correct;
  }
  if (stats.tokens > 0) {
    stats.loss = loss_sum / static_cast<double>(stats.tokens);
    stats.accuracy = static_cast<double>(correct) / static_cast<double>(stats.tokens);
  }
  return stats;
}

}  // namespace tulu

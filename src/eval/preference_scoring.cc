// score_preference_pairs / check_preference_pairs (preference_eval.h): the summed completion
// log-probs of each pair under the inference model, one Session reused for every pair.
//
// Per pair: the prompt is evaluated once, keeping only its last row of logits (it predicts the
// first completion token of both sides); then for each side the cache is rewound to the prompt
// and the completion minus its last token is evaluated with every row of logits (row j predicts
// completion token j + 1). The completion's last token is only a target, never an input, so the
// cache needs prompt + completion − 1 positions.
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "core/error.h"
#include "eval/preference_eval.h"
#include "llama/session.h"

namespace tulu {

namespace {

// Rows of logits per parallel chunk of the log-softmax (each row costs ~vocab exp()).
constexpr size_t kRowsPerChunk = 1;

// log p(target) = logit[target] − logsumexp(logits) of one row, in double.
double row_log_prob(const float* logits, int vocab, int target) {
  double max_logit = -INFINITY;
  for (int v = 0; v < vocab; ++v) max_logit = std::max(max_logit, static_cast<double>(logits[v]));
  double sum = 0.0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(logits[v]) - max_logit);
  return static_cast<double>(logits[target]) - (max_logit + std::log(sum));
}

// Σ_j log p(targets[j]) over the rows of `logits` ([targets.size(), vocab]), rows spread over
// the pool; the per-row values are summed in row order, so the result does not depend on the
// thread count.
double summed_log_probs(std::span<const float> logits, int vocab, std::span<const int> targets,
                        ThreadPool& pool, std::vector<double>& row_scratch) {
  row_scratch.assign(targets.size(), 0.0);
  pool.parallel_for(targets.size(), kRowsPerChunk, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      row_scratch[r] =
          row_log_prob(logits.data() + r * static_cast<size_t>(vocab), vocab, targets[r]);
    }
  });
  double total = 0.0;
  for (double value : row_scratch) total += value;
  return total;
}

int64_t pair_positions(const PreferencePair& pair) {
  return static_cast<int64_t>(pair.prompt_ids.size()) +
         static_cast<int64_t>(std::max(pair.chosen_ids.size(), pair.rejected_ids.size()));
}

void check_ids(const std::vector<int>& ids, int vocab, const char* field, int64_t line) {
  for (size_t i = 0; i < ids.size(); ++i) {
    TULU_CHECK(ids[i] >= 0 && ids[i] < vocab, "pair from line ", line, ": ", field, "[", i,
               "] = ", ids[i], " is outside the model's vocabulary [0, ", vocab, ")");
  }
}

}  // namespace

void check_preference_pairs(const LlamaModel& model, const std::vector<PreferencePair>& pairs) {
  const int vocab = model.config().vocab_size;
  const int64_t max_positions = model.config().max_position_embeddings;
  for (const PreferencePair& pair : pairs) {
    TULU_CHECK(!pair.prompt_ids.empty(), "pair from line ", pair.line,
               ": empty prompt (it needs at least BOS to predict the first completion token)");
    TULU_CHECK(!pair.chosen_ids.empty() && !pair.rejected_ids.empty(), "pair from line ", pair.line,
               ": empty ", pair.chosen_ids.empty() ? "chosen" : "rejected",
               " completion (nothing to score)");
    TULU_CHECK(pair_positions(pair) <= max_positions, "pair from line ", pair.line, ": prompt ",
               pair.prompt_ids.size(), " + longer completion ",
               std::max(pair.chosen_ids.size(), pair.rejected_ids.size()), " = ",
               pair_positions(pair), " tokens exceeds the model's max_position_embeddings (",
               max_positions, ", ", model.source(),
               "); cut pairs with --max-length / --max-prompt-length");
    check_ids(pair.prompt_ids, vocab, "prompt_ids", pair.line);
    check_ids(pair.chosen_ids, vocab, "chosen_ids", pair.line);
    check_ids(pair.rejected_ids, vocab, "rejected_ids", pair.line);
  }
}

std::vector<PairScores> score_preference_pairs(const LlamaModel& model,
                                               const std::vector<PreferencePair>& pairs,
                                               ThreadPool& pool, const PairProgress& progress,
                                               KvType kv_type) {
  check_preference_pairs(model, pairs);
  std::vector<PairScores> scores(pairs.size());
  if (pairs.empty()) return scores;
  const int vocab = model.config().vocab_size;
  // Cache capacity: prompt + longer completion − 1 (the last completion token is not an input).
  int64_t capacity = 1;
  for (const PreferencePair& pair : pairs) capacity = std::max(capacity, pair_positions(pair) - 1);
  Session session(model, static_cast<int>(capacity), pool, Session::kDefaultMaxBatch, kv_type);

  std::vector<double> row_scratch;
  const auto total = static_cast<int64_t>(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PreferencePair& pair = pairs[i];
    const auto prompt_length = static_cast<int>(pair.prompt_ids.size());
    session.reset();
    // The prompt's last row predicts each completion's first token. Copied: the span is
    // invalidated by the next eval.
    const std::span<const float> prompt_logits =
        session.eval(pair.prompt_ids, /*all_logits=*/false);
    const std::vector<float> last_prompt_row(prompt_logits.begin(), prompt_logits.begin() + vocab);
    auto score_side = [&](const std::vector<int>& completion) {
      double logp = row_log_prob(last_prompt_row.data(), vocab, completion.front());
      session.rewind(prompt_length);
      // Inputs completion[0, n − 1) in chunks of max_batch rows, so that the logits buffer
      // stays [max_batch, vocab] however long the completion (the session would chunk the
      // computation anyway; only an all_logits request longer than max_batch enlarges it).
      const size_t inputs = completion.size() - 1;
      const auto chunk = static_cast<size_t>(session.max_batch());
      for (size_t begin = 0; begin < inputs; begin += chunk) {
        const size_t rows = std::min(chunk, inputs - begin);
        const std::span<const float> logits =
            session.eval(std::span<const int>(completion.data() + begin, rows),
                         /*all_logits=*/true);
        logp += summed_log_probs(logits, vocab,
                                 std::span<const int>(completion.data() + begin + 1, rows), pool,
                                 row_scratch);
      }
      return logp;
    };
    PairScores& out = scores[i];
    out.chosen_logp = score_side(pair.chosen_ids);
    out.rejected_logp = score_side(pair.rejected_ids);
    out.chosen_tokens = static_cast<int64_t>(pair.chosen_ids.size());
    out.rejected_tokens = static_cast<int64_t>(pair.rejected_ids.size());
    if (progress) progress(static_cast<int64_t>(i) + 1, total);
  }
  return scores;
}

}  // namespace tulu

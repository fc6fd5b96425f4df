// Token cross-entropy on logits (PyTorch's CrossEntropyLoss with ignore_index = -100), fused
// with its gradient so that the [rows, vocab] logits buffer is reused for dlogits.
//   loss_r = logsumexp(logits_r) − logits_r[target_r]      (exp in fp32 after max
//                                                           subtraction; the fast path sums
//                                                           fp32 lanes over blocks of 256
//                                                           elements, the blocks in double)
//   dlogits_r = scale · (softmax(logits_r) − onehot(target_r)) for a kept row, 0 for ignored.
// The caller chooses scale (e.g. 1 / (kept tokens · micro-batches) for a mean loss).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tulu {

constexpr int kIgnoreIndex = -100;

struct CrossEntropyStats {
  double loss_sum = 0;  // Σ loss_r over kept rows
  int64_t tokens = 0;   // kept rows (target ≠ kIgnoreIndex)
  int64_t correct = 0;  // kept rows whose argmax (first maximal index) equals the target
};

// logits [rows, vocab] fp32, targets [rows] (each kIgnoreIndex or in [0, vocab): checked,
// tulu::Error naming the row otherwise). When compute_grad, logits is overwritten with the
// gradient; else left unchanged. Rows split over the pool; the loss sum does not depend on
// the thread count (per-row losses summed in row order).
CrossEntropyStats cross_entropy(float* logits, const int* targets, int64_t rows, int64_t vocab,
                                float scale, bool compute_grad, ThreadPool& pool);

}  // namespace tulu

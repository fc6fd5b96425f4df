// Highway fast path of cross_entropy.h, dispatched at run time; rows over the pool, each
// row's loss kept in its own slot and the slots summed in row order afterwards.
#include "kernels/cross_entropy.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cross_entropy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Elements whose exponentials are summed in fp32 lanes before the partial sum is added to
// the double total: each lane adds at most kSumChunk / lanes terms in (0, 1] in fp32.
constexpr size_t kSumChunk = 256;

// One kept row (vocab ≥ 1, target in range). Returns the loss; *argmax_out the first
// maximal index (−1 when none compares equal to the maximum, e.g. NaN logits).
double CrossEntropyRowImpl(float* HWY_RESTRICT row, int64_t vocab, int target, float scale,
                           bool compute_grad, int64_t* argmax_out) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto n = static_cast<size_t>(vocab);
  size_t i = 0;
  float max_value = row[0];
  if (n >= lanes) {
    auto vmax = hn::LoadU(d, row);
    for (i = lanes; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(d, row + i));
    max_value = hn::GetLane(hn::MaxOfLanes(d, vmax));
  }
  for (; i < n; ++i) max_value = row[i] > max_value ? row[i] : max_value;

  int64_t argmax = -1;
  const auto vmax = hn::Set(d, max_value);
  for (i = 0; i + lanes <= n; i += lanes) {
    const intptr_t hit = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, row + i), vmax));
    if (hit >= 0) {
      argmax = static_cast<int64_t>(i) + hit;
      break;
    }
  }
  if (argmax < 0) {
    for (; i < n; ++i) {
      if (row[i] == max_value) {
        argmax = static_cast<int64_t>(i);
        break;
      }
    }
  }
  *argmax_out = argmax;
  const float target_logit = row[target];

  double sum = 0;
  i = 0;
  while (i + lanes <= n) {
    auto vsum = hn::Zero(d);
    const size_t chunk_end = i + kSumChunk < n ? i + kSumChunk : n;
    for (; i + lanes <= chunk_end; i += lanes) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, row + i), vmax));
      if (compute_grad) hn::StoreU(e, d, row + i);
      vsum = hn::Add(vsum, e);
    }
    sum += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, vsum)));
  }
  for (; i < n; ++i) {
    const float e = std::exp(row[i] - max_value);
    if (compute_grad) row[i] = e;
    sum += static_cast<double>(e);
  }
  const double loss =
      std::log(sum) + static_cast<double>(max_value) - static_cast<double>(target_logit);
  if (compute_grad) {
    const auto factor = static_cast<float>(static_cast<double>(scale) / sum);
    const auto vfactor = hn::Set(d, factor);
    for (i = 0; i + lanes <= n; i += lanes)
      hn::StoreU(hn::Mul(hn::LoadU(d, row + i), vfactor), d, row + i);
    for (; i < n; ++i) row[i] *= factor;
    row[target] -= scale;
  }
  return loss;
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/cross_entropy_ref.h"
#include "kernels/dispatch.h"

namespace tulu {

HWY_EXPORT(CrossEntropyRowImpl);

namespace {
// Rows per pool chunk (a row is a whole vocabulary: plenty of work each).
constexpr size_t kMinRowsPerTask = 2;
}  // namespace

CrossEntropyStats cross_entropy(float* logits, const int* targets, int64_t rows, int64_t vocab,
                                float scale, bool compute_grad, ThreadPool& pool) {
  TULU_CHECK(rows >= 0 && vocab >= 0, "cross_entropy: negative shape [", rows, ", ", vocab, "]");
  for (int64_t r = 0; r < rows; ++r) {
    const int target = targets[r];
    TULU_CHECK(target == kIgnoreIndex || (target >= 0 && target < vocab), "cross_entropy: row ", r,
               " has target ", target, "; expected a token id in [0, ", vocab, ") or ",
               kIgnoreIndex, " (ignored)");
  }
  if (force_generic_kernels())
    return cross_entropy_ref(logits, targets, rows, vocab, scale, compute_grad);

  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  std::vector<int64_t> row_argmax(static_cast<size_t>(rows), -1);
  pool.parallel_for(static_cast<size_t>(rows), kMinRowsPerTask, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      float* row = logits + static_cast<int64_t>(r) * vocab;
      if (targets[r] == kIgnoreIndex) {
        if (compute_grad) std::fill(row, row + vocab, 0.0f);
        continue;
      }
      row_loss[r] = HWY_DYNAMIC_DISPATCH(CrossEntropyRowImpl)(row, vocab, targets[r], scale,
                                                              compute_grad, &row_argmax[r]);
    }
  });
  CrossEntropyStats stats;
  for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {  // row order: thread-count free
    if (targets[r] == kIgnoreIndex) continue;
    stats.loss_sum += row_loss[r];
    stats.tokens += 1;
    stats.correct += row_argmax[r] == targets[r] ? 1 : 0;
  }
  return stats;
}

}  // namespace tulu
#endif  // HWY_ONCE

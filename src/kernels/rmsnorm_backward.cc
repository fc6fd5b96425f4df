// Highway fast path of rmsnorm_backward.h, dispatched at run time. Two passes over the pool:
//   1. rows split over threads: r per row (kept), dx += r·g − x·(r³·mean(g·x));
//   2. columns split over threads: dw[i] += Σ_rows dout·x·r summed in row order, so dweight
//      is the same for every thread count (no per-thread partial sums to reduce).
#include "kernels/rmsnorm_backward.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/rmsnorm_backward.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Rows [begin, end): inv_rms[r] written, dx rows added to.
void RmsnormBackwardRowsImpl(const float* x, const float* weight, const float* dout, int64_t begin,
                             int64_t end, int64_t n, float eps, float* dx, float* inv_rms) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto count = static_cast<size_t>(n);
  for (int64_t r = begin; r < end; ++r) {
    const float* xr = x + r * n;
    const float* dr = dout + r * n;
    float* dxr = dx + r * n;
    // mean(x²) exactly as the forward computes it (rmsnorm_hwy.cc), so r is the same value.
    const float mean = n > 0 ? DotF32(xr, xr, count) / static_cast<float>(n) : 0.0f;
    const float inv = 1.0f / std::sqrt(mean + eps);
    inv_rms[r] = inv;
    // Σ dout·w·x with two accumulators.
    auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
    size_t i = 0;
    for (; i + 2 * lanes <= count; i += 2 * lanes) {
      acc0 = hn::MulAdd(hn::Mul(hn::LoadU(d, dr + i), hn::LoadU(d, weight + i)),
                        hn::LoadU(d, xr + i), acc0);
      acc1 = hn::MulAdd(hn::Mul(hn::LoadU(d, dr + i + lanes), hn::LoadU(d, weight + i + lanes)),
                        hn::LoadU(d, xr + i + lanes), acc1);
    }
    for (; i + lanes <= count; i += lanes) {
      acc0 = hn::MulAdd(hn::Mul(hn::LoadU(d, dr + i), hn::LoadU(d, weight + i)),
                        hn::LoadU(d, xr + i), acc0);
    }
    float gx = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
    for (; i < count; ++i) gx += dr[i] * weight[i] * xr[i];
    const float coefficient = n > 0 ? inv * inv * inv * gx / static_cast<float>(n) : 0.0f;
    const auto vinv = hn::Set(d, inv), vcoef = hn::Set(d, coefficient);
    for (i = 0; i + lanes <= count; i += lanes) {
      const auto g = hn::Mul(hn::LoadU(d, dr + i), hn::LoadU(d, weight + i));
      const auto update = hn::NegMulAdd(hn::LoadU(d, xr + i), vcoef, hn::Mul(vinv, g));
      hn::StoreU(hn::Add(hn::LoadU(d, dxr + i), update), d, dxr + i);
    }
    for (; i < count; ++i) dxr[i] += inv * (dr[i] * weight[i]) - xr[i] * coefficient;
  }
}

// Columns [begin, end): dweight[i] += Σ_r dout[r, i]·x[r, i]·inv_rms[r], rows in order.
void RmsnormBackwardWeightImpl(const float* x, const float* dout, const float* inv_rms,
                               int64_t rows, int64_t n, int64_t begin, int64_t end,
                               float* dweight) {
  const hn::ScalableTag<float> d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = begin;
  for (; i + lanes <= end; i += lanes) {
    auto sum = hn::Zero(d);
    for (int64_t r = 0; r < rows; ++r) {
      const auto term = hn::Mul(hn::LoadU(d, dout + r * n + i), hn::LoadU(d, x + r * n + i));
      sum = hn::MulAdd(term, hn::Set(d, inv_rms[r]), sum);
    }
    hn::StoreU(hn::Add(hn::LoadU(d, dweight + i), sum), d, dweight + i);
  }
  for (; i < end; ++i) {
    float sum = 0.0f;
    for (int64_t r = 0; r < rows; ++r) sum += dout[r * n + i] * x[r * n + i] * inv_rms[r];
    dweight[i] += sum;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/rmsnorm_backward_ref.h"

namespace tulu {

HWY_EXPORT(RmsnormBackwardRowsImpl);
HWY_EXPORT(RmsnormBackwardWeightImpl);

namespace {
constexpr size_t kMinRowsPerTask = 8;
// Columns of dweight per block: a multiple of every vector width, so only the last block
// has a scalar tail.
constexpr int64_t kColumnUnit = 64;
}  // namespace

void rmsnorm_backward(const float* x, const float* weight, const float* dout, int64_t rows,
                      int64_t n, float eps, float* dx, float* dweight, ThreadPool& pool) {
  if (rows <= 0 || n <= 0) return;
  if (force_generic_kernels())
    return rmsnorm_backward_ref(x, weight, dout, rows, n, eps, dx, dweight);
  std::vector<float> inv_rms(static_cast<size_t>(rows));
  pool.parallel_for(static_cast<size_t>(rows), kMinRowsPerTask, [&](size_t begin, size_t end) {
    HWY_DYNAMIC_DISPATCH(RmsnormBackwardRowsImpl)
    (x, weight, dout, static_cast<int64_t>(begin), static_cast<int64_t>(end), n, eps, dx,
     inv_rms.data());
  });
  const auto units = static_cast<size_t>((n + kColumnUnit - 1) / kColumnUnit);
  pool.parallel_for(units, 1, [&](size_t begin, size_t end) {
    HWY_DYNAMIC_DISPATCH(RmsnormBackwardWeightImpl)
    (x, dout, inv_rms.data(), rows, n, static_cast<int64_t>(begin) * kColumnUnit,
     std::min(n, static_cast<int64_t>(end) * kColumnUnit), dweight);
  });
}

}  // namespace tulu
#endif  // HWY_ONCE

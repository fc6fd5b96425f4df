// Highway fast path of rmsnorm.h, dispatched at run time.
#include "kernels/rmsnorm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/rmsnorm_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

void RmsnormImpl(const float* x, const float* weight, float* out, int64_t rows, int64_t n,
                 float eps) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto count = static_cast<size_t>(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * n;
    float* dst = out + r * n;
    const float mean = n > 0 ? DotF32(row, row, count) / static_cast<float>(n) : 0.0f;
    const float inv_rms = 1.0f / std::sqrt(mean + eps);
    const auto vinv = hn::Set(d, inv_rms);
    size_t i = 0;
    for (; i + lanes <= count; i += lanes) {
      hn::StoreU(hn::Mul(hn::LoadU(d, weight + i), hn::Mul(hn::LoadU(d, row + i), vinv)), d,
                 dst + i);
    }
    for (; i < count; ++i) dst[i] = weight[i] * (row[i] * inv_rms);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/dispatch.h"
#include "kernels/rmsnorm_ref.h"

namespace tulu {

HWY_EXPORT(RmsnormImpl);

void rmsnorm(const float* x, const float* weight, float* out, int64_t rows, int64_t n, float eps) {
  if (force_generic_kernels()) return rmsnorm_ref(x, weight, out, rows, n, eps);
  HWY_DYNAMIC_DISPATCH(RmsnormImpl)(x, weight, out, rows, n, eps);
}

}  // namespace tulu
#endif  // HWY_ONCE

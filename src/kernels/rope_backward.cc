// Highway fast path of rope_apply_inverse (rope_backward.h), dispatched at run time.
#include "kernels/rope_backward.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/rope_backward.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Products then sums (no fused multiply-add), like the forward RopeImpl.
void RopeInverseImpl(float* x, int64_t rows, int64_t row_stride, int heads, int first_position,
                     int head_dim, const float* cos_table, const float* sin_table) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto half = static_cast<size_t>(head_dim / 2);
  for (int64_t r = 0; r < rows; ++r) {
    const float* cos_row = cos_table + static_cast<size_t>(first_position + r) * half;
    const float* sin_row = sin_table + static_cast<size_t>(first_position + r) * half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + r * row_stride + static_cast<int64_t>(h) * head_dim;
      size_t i = 0;
      for (; i + lanes <= half; i += lanes) {
        const auto c = hn::LoadU(d, cos_row + i), s = hn::LoadU(d, sin_row + i);
        const auto lo = hn::LoadU(d, v + i), hi = hn::LoadU(d, v + half + i);
        hn::StoreU(hn::Add(hn::Mul(lo, c), hn::Mul(hi, s)), d, v + i);
        hn::StoreU(hn::Sub(hn::Mul(hi, c), hn::Mul(lo, s)), d, v + half + i);
      }
      for (; i < half; ++i) {
        const float lo = v[i], hi = v[i + half];
        v[i] = lo * cos_row[i] + hi * sin_row[i];
        v[i + half] = hi * cos_row[i] - lo * sin_row[i];
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/rope_backward_ref.h"

namespace tulu {

HWY_EXPORT(RopeInverseImpl);

void rope_apply_inverse(float* dx, int64_t rows, int64_t row_stride, int heads, int first_position,
                        const RopeTable& table) {
  TULU_CHECK(first_position >= 0 && first_position + rows <= table.positions,
             "rope_apply_inverse: positions [", first_position, ", ", first_position + rows,
             ") outside the table's ", table.positions, " positions");
  if (force_generic_kernels())
    return rope_inverse_ref(dx, rows, row_stride, heads, first_position, table);
  HWY_DYNAMIC_DISPATCH(RopeInverseImpl)
  (dx, rows, row_stride, heads, first_position, table.head_dim, table.cos.data(), table.sin.data());
}

}  // namespace tulu
#endif  // HWY_ONCE

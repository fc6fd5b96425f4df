// Highway building block of the decode attention kernels (attention_hwy.cc,
// attention_rows_hwy.cc): one query head over `visible` cached positions, keys/values
// stored as fp32 or as F16 bits (widened to fp32 lanes on load, so an F16 cache is read
// natively, half the bytes, no conversion pass). Included once per target after
// hwy/foreach_target.h and hwy/highway.h (the -inl.h toggle pattern of Highway); it brings
// kernels/vec_hwy-inl.h along.

#if defined(TULU_KERNELS_ATTENTION_HEAD_HWY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TULU_KERNELS_ATTENTION_HEAD_HWY_INL_H_
#undef TULU_KERNELS_ATTENTION_HEAD_HWY_INL_H_
#else
#define TULU_KERNELS_ATTENTION_HEAD_HWY_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include <hwy/highway.h>

#include "kernels/attention.h"
#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// The element tag of vec_hwy-inl.h's widening loads for a cache element type.
HWY_INLINE const float* KvElements(const float* p) {
  return p;
}
HWY_INLINE const F16Bits* KvElements(const Half* p) {
  static_assert(sizeof(Half) == sizeof(F16Bits));
  return reinterpret_cast<const F16Bits*>(p);
}

// y[i] += a · x[i], x stored as W (fp32 or F16 bits) and widened exactly.
template <typename W>
HWY_INLINE void AxpyWidened(float a, const W* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::MulAdd(va, LoadF32(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * ToF32(x[i]);
}

// dst[0, head_dim) = softmax_s(query · keys[s] / sqrt(head_dim)) · values[s] over positions
// s < visible, where keys/values point at this head's slice of cache row 0 and rows are
// kv_dim elements apart. scores: `visible` floats of scratch.
template <typename KV>
HWY_INLINE void AttendHead(const float* HWY_RESTRICT query, const KV* keys, const KV* values,
                           int64_t visible, int64_t kv_dim, size_t head_dim, float scale_divisor,
                           float* HWY_RESTRICT scores, float* HWY_RESTRICT dst) {
  const auto* k = KvElements(keys);
  const auto* v = KvElements(values);
  for (int64_t s = 0; s < visible; ++s)
    scores[s] = DotF32(query, k + s * kv_dim, head_dim) / scale_divisor;
  SoftmaxF32(scores, static_cast<size_t>(visible));
  for (size_t i = 0; i < head_dim; ++i) dst[i] = 0.0f;
  for (int64_t s = 0; s < visible; ++s) AxpyWidened(scores[s], v + s * kv_dim, dst, head_dim);
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#endif  // include guard

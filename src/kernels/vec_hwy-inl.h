// Highway building blocks shared by the kernel *_hwy.cc files: loads that widen stored
// weights (F32, BF16, F16) to fp32 lanes, dot products with fp32 accumulation, y += a·x,
// and an in-place softmax. Included once per target (the -inl.h toggle pattern of
// Highway), after hwy/foreach_target.h and hwy/highway.h.
//
// Tails are finished with scalar code (no masked loads), so no kernel ever touches memory
// past the end of its arrays.

#if defined(TULU_KERNELS_VEC_HWY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TULU_KERNELS_VEC_HWY_INL_H_
#undef TULU_KERNELS_VEC_HWY_INL_H_
#else
#define TULU_KERNELS_VEC_HWY_INL_H_
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "tensor/half.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// Stored element tags: the 16-bit formats travel as raw uint16_t bits.
struct Bf16Bits {
  uint16_t bits;
};
struct F16Bits {
  uint16_t bits;
};

// One stored element → float (scalar tails).
HWY_INLINE float ToF32(float v) {
  return v;
}
HWY_INLINE float ToF32(Bf16Bits v) {
  return bf16_to_f32(v.bits);
}
HWY_INLINE float ToF32(F16Bits v) {
  return f16_to_f32(v.bits);
}

// Lanes(d) stored elements at p → fp32 lanes (unaligned).
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const Bf16Bits* p) {
  const hn::Rebind<hwy::bfloat16_t, D> dbf;
  return hn::PromoteTo(d, hn::LoadU(dbf, reinterpret_cast<const hwy::bfloat16_t*>(p)));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const F16Bits* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // F16C (vcvtph2ps) is exact for every input, infinities and NaN included.
  const hn::Rebind<hwy::float16_t, D> df16;
  return hn::PromoteTo(d, hn::LoadU(df16, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  // Highway 1.0.3's emulated f16 → f32 turns infinities and NaN into finite numbers; this
  // is the exact bit-level widening instead (exponent rebias; subnormals via one exact
  // float subtraction; Inf/NaN keep their payload).
  const hn::RebindToUnsigned<D> du32;
  const hn::Rebind<uint16_t, D> du16;
  const auto h = hn::PromoteTo(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto shifted = hn::ShiftLeft<13>(hn::And(h, hn::Set(du32, 0x7fffu)));  // exponent+mantissa
  const auto exponent = hn::And(shifted, hn::Set(du32, 0x0f800000u));
  const auto rebias = hn::Set(du32, (127u - 15u) << 23);
  auto bits = hn::Add(shifted, rebias);
  bits = hn::IfThenElse(hn::Eq(exponent, hn::Set(du32, 0x0f800000u)), hn::Add(bits, rebias),
                        bits);  // Inf/NaN
  const auto subnormal = hn::Sub(hn::BitCast(d, hn::Add(bits, hn::Set(du32, 1u << 23))),
                                 hn::BitCast(d, hn::Set(du32, 113u << 23)));
  bits = hn::IfThenElse(hn::Eq(exponent, hn::Zero(du32)), hn::BitCast(du32, subnormal), bits);
  bits = hn::Or(bits, hn::ShiftLeft<16>(hn::And(h, hn::Set(du32, 0x8000u))));
  return hn::BitCast(d, bits);
#endif
}

// Σ x[i]·w[i] over n elements, fp32 accumulation in 4 independent vector accumulators.
template <typename W>
HWY_INLINE float DotF32(const float* HWY_RESTRICT x, const W* HWY_RESTRICT w, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  auto sum0 = hn::Zero(d), sum1 = hn::Zero(d), sum2 = hn::Zero(d), sum3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    sum0 = hn::MulAdd(hn::LoadU(d, x + i), LoadF32(d, w + i), sum0);
    sum1 = hn::MulAdd(hn::LoadU(d, x + i + lanes), LoadF32(d, w + i + lanes), sum1);
    sum2 = hn::MulAdd(hn::LoadU(d, x + i + 2 * lanes), LoadF32(d, w + i + 2 * lanes), sum2);
    sum3 = hn::MulAdd(hn::LoadU(d, x + i + 3 * lanes), LoadF32(d, w + i + 3 * lanes), sum3);
  }
  for (; i + lanes <= n; i += lanes)
    sum0 = hn::MulAdd(hn::LoadU(d, x + i), LoadF32(d, w + i), sum0);
  sum0 = hn::Add(hn::Add(sum0, sum1), hn::Add(sum2, sum3));
  float total = hn::GetLane(hn::SumOfLanes(d, sum0));
  for (; i < n; ++i) total += x[i] * ToF32(w[i]);
  return total;
}

// y[i] += a · x[i].
HWY_INLINE void AxpyF32(float a, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto va = hn::Set(d, a);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

// x ← exp(x − max x) / Σ exp(x − max x), in fp32. n ≥ 1.
HWY_INLINE void SoftmaxF32(float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  float max_value = x[0];
  if (n >= lanes) {
    auto vmax = hn::LoadU(d, x);
    for (i = lanes; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
    max_value = hn::GetLane(hn::MaxOfLanes(d, vmax));
  }
  for (; i < n; ++i) max_value = x[i] > max_value ? x[i] : max_value;

  const auto vmax = hn::Set(d, max_value);
  auto vsum = hn::Zero(d);
  for (i = 0; i + lanes <= n; i += lanes) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vmax));
    hn::StoreU(e, d, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inv_sum = 1.0f / sum;
  const auto vinv = hn::Set(d, inv_sum);
  for (i = 0; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vinv), d, x + i);
  for (; i < n; ++i) x[i] *= inv_sum;
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#endif  // TULU_KERNELS_VEC_HWY_INL_H_ toggle

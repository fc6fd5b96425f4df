#include "kernels/quantize_row.h"

#include <cstring>

#include "kernels/dispatch.h"
#include "tensor/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_QUANTIZE_X86 1
#endif

namespace tulu {

#ifdef TULU_QUANTIZE_X86
namespace {

#define TULU_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

bool cpu_has_avx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  }();
  return has;
}

// roundf(v) for finite v: trunc(v), plus sign(v) where |v − trunc(v)| ≥ 1/2 (the
// difference is exact, so ties go away from zero exactly as roundf does).
TULU_AVX512 inline __m512 round_half_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 step = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one =
      _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));  // ±1
  return _mm512_mask_add_ps(t, step, t, one);
}

// One block; false (writing nothing) if it holds a NaN or an infinity, whose handling the
// reference owns.
TULU_AVX512 bool quantize_block_avx512(const float* x, BlockQ8_0* y) {
  const __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
  if (_mm512_cmp_ps_mask(lo, lo, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(hi, hi, _CMP_UNORD_Q))
    return false;
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
  if (amax > 3.4028235e38f) return false;  // ±inf: the reference's NaN/zero outcome
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  y->d = f32_to_f16(d);
  const __m512 scale = _mm512_set1_ps(id);
  // Saturating narrowing: only an infinite input could leave [−128, 127] (as in the ref).
  const __m128i q_lo =
      _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(round_half_away(_mm512_mul_ps(lo, scale))));
  const __m128i q_hi =
      _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(round_half_away(_mm512_mul_ps(hi, scale))));
  std::memcpy(y->qs, &q_lo, 16);
  std::memcpy(y->qs + 16, &q_hi, 16);
  return true;
}

}  // namespace
#endif

void quantize_row_q8_0(const float* x, BlockQ8_0* y, size_t n) {
#ifdef TULU_QUANTIZE_X86
  if (cpu_has_avx512() && !force_generic_kernels()) {
    for (size_t b = 0; b < n / kQuantBlock; ++b)
      if (!quantize_block_avx512(x + b * kQuantBlock, y + b))
        quantize_row_q8_0_ref(x + b * kQuantBlock, y + b, kQuantBlock);
    return;
  }
#endif
  quantize_row_q8_0_ref(x, y, n);
}

}  // namespace tulu

// Highway fast paths of elementwise.h, with run-time dispatch over the compiled targets.
#include "kernels/elementwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/elementwise_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

void AddImpl(float* HWY_RESTRICT y, const float* HWY_RESTRICT x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

void SiluMulImpl(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto g = hn::LoadU(d, gate + i);
    const auto silu = hn::Div(g, hn::Add(one, hn::Exp(d, hn::Neg(g))));
    hn::StoreU(hn::Mul(silu, hn::LoadU(d, up + i)), d, gate + i);
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void SoftmaxImpl(float* x, size_t n) {
  if (n != 0) SoftmaxF32(x, n);
}

template <typename W>
void ConvertTyped(const W* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(LoadF32(d, src + i), d, dst + i);
  for (; i < n; ++i) dst[i] = ToF32(src[i]);
}

void ConvertImpl(const void* src, DType dtype, size_t n, float* dst) {
  switch (dtype) {
    case DType::F32:
      ConvertTyped(static_cast<const float*>(src), n, dst);
      break;
    case DType::BF16:
      ConvertTyped(static_cast<const Bf16Bits*>(src), n, dst);
      break;
    case DType::F16:
      ConvertTyped(static_cast<const F16Bits*>(src), n, dst);
      break;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16:
      break;  // convert_to_f32 decodes these before dispatching here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/dispatch.h"
#include "kernels/elementwise_ref.h"

namespace tulu {

HWY_EXPORT(AddImpl);
HWY_EXPORT(SiluMulImpl);
HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(ConvertImpl);

void add_inplace(float* y, const float* x, size_t n) {
  if (force_generic_kernels()) return add_ref(y, x, n);
  HWY_DYNAMIC_DISPATCH(AddImpl)(y, x, n);
}

void silu_mul(float* gate, const float* up, size_t n) {
  if (force_generic_kernels()) return silu_mul_ref(gate, up, n);
  HWY_DYNAMIC_DISPATCH(SiluMulImpl)(gate, up, n);
}

void softmax_inplace(float* x, size_t n) {
  if (force_generic_kernels()) return softmax_ref(x, n);
  HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n);
}

void convert_to_f32(const void* src, DType dtype, size_t n, float* dst) {
  if (dtype_is_quantized(dtype)) return dequantize_row(src, dtype, n, dst);
  if (force_generic_kernels()) return convert_ref(src, dtype, n, dst);
  HWY_DYNAMIC_DISPATCH(ConvertImpl)(src, dtype, n, dst);
}

void embedding_lookup(const TensorView& table, std::span<const int> ids, float* out) {
  const auto hidden = static_cast<size_t>(table.dim(1));
  const auto* base = static_cast<const uint8_t*>(table.data);
  const size_t row_bytes = dtype_row_bytes(table.dtype, hidden);
  for (size_t t = 0; t < ids.size(); ++t) {
    convert_to_f32(base + static_cast<size_t>(ids[t]) * row_bytes, table.dtype, hidden,
                   out + t * hidden);
  }
}

}  // namespace tulu
#endif  // HWY_ONCE

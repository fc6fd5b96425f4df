// Highway matrix–vector kernel of matmul.h (rows == 1), dispatched at run time.
#include "kernels/matmul.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

template <typename W>
void MatvecTyped(const float* HWY_RESTRICT x, const W* HWY_RESTRICT w, size_t in, int64_t row_begin,
                 int64_t row_end, float* HWY_RESTRICT y) {
  for (int64_t o = row_begin; o < row_end; ++o)
    y[o] = DotF32(x, w + static_cast<size_t>(o) * in, in);
}

void MatvecImpl(const float* x, const void* w, DType dtype, size_t in, int64_t row_begin,
                int64_t row_end, float* y) {
  switch (dtype) {
    case DType::F32:
      MatvecTyped(x, static_cast<const float*>(w), in, row_begin, row_end, y);
      break;
    case DType::BF16:
      MatvecTyped(x, static_cast<const Bf16Bits*>(w), in, row_begin, row_end, y);
      break;
    case DType::F16:
      MatvecTyped(x, static_cast<const F16Bits*>(w), in, row_begin, row_end, y);
      break;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16:
      break;  // matvec_rows sends these to quant_matvec_rows before dispatching here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "core/error.h"

namespace tulu {

HWY_EXPORT(MatvecImpl);

void matvec_rows(const float* x, const TensorView& w, int64_t row_begin, int64_t row_end,
                 float* y) {
  TULU_CHECK(!dtype_is_quantized(w.dtype), "matvec_rows: ", dtype_name(w.dtype), " weights need the quantized kernels");
  HWY_DYNAMIC_DISPATCH(MatvecImpl)
  (x, w.data, w.dtype, static_cast<size_t>(w.dim(1)), row_begin, row_end, y);
}

}  // namespace tulu
#endif  // HWY_ONCE

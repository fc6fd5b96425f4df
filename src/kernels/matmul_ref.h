// Scalar reference (the specification) of matmul.h, templated on the accumulation type:
// y[r, o] = Σ_i x[r, i] · W[o, i], W's stored elements widened exactly to fp32 first.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/elementwise_ref.h"
#include "tensor/tensor.h"

namespace tulu {

// Computes output columns [out_begin, out_end) of y[rows, out]; x is [rows, in].
template <typename T>
void matmul_ref(const T* x, int64_t rows, const TensorView& w, int64_t out_begin, int64_t out_end,
                T* y) {
  const int64_t out = w.dim(0), in = w.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = out_begin; o < out_end; ++o) {
      T sum = 0;
      for (int64_t i = 0; i < in; ++i) {
        sum += x[r * in + i] *
               static_cast<T>(stored_to_f32(w.data, w.dtype, static_cast<size_t>(o * in + i)));
      }
      y[r * out + o] = sum;
    }
  }
}

}  // namespace tulu

// Scalar reference (the specification) of matvec_multi.h, templated on the accumulation
// type: y[r, o] = Σ_i x[r, i] · W[o, i], W's stored elements widened exactly to fp32, in
// the kernel's loop order (one pass over each weight row serving every activation row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/elementwise_ref.h"
#include "tensor/tensor.h"

namespace tulu {

// Computes output columns [out_begin, out_end) of y[rows, out]; x is [rows, in].
template <typename T>
void matvec_multi_ref(const T* x, int64_t rows, const TensorView& w, int64_t out_begin,
                      int64_t out_end, T* y) {
  const int64_t out = w.dim(0), in = w.dim(1);
  std::vector<T> sums(static_cast<size_t>(rows));
  for (int64_t o = out_begin; o < out_end; ++o) {
    for (auto& s : sums) s = 0;
    for (int64_t i = 0; i < in; ++i) {
      const auto weight =
          static_cast<T>(stored_to_f32(w.data, w.dtype, static_cast<size_t>(o * in + i)));
      for (int64_t r = 0; r < rows; ++r) sums[static_cast<size_t>(r)] += x[r * in + i] * weight;
    }
    for (int64_t r = 0; r < rows; ++r) y[r * out + o] = sums[static_cast<size_t>(r)];
  }
}

}  // namespace tulu

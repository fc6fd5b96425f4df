// Scalar reference (the specification) of rope_apply_inverse (rope_backward.h), templated on
// the number type. Per pair (lo, hi) = (v[i], v[i + half]) with the table's c, s:
//   forward (rope_ref.h): lo' = lo·c − hi·s,  hi' = hi·c + lo·s
//   inverse (this):       lo' = lo·c + hi·s,  hi' = hi·c − lo·s
// i.e. the transpose of the forward's 2×2 matrix, so this is the exact gradient of
// rope_ref even though the fp32-rounded c, s do not satisfy c² + s² = 1 exactly.
#pragma once

#include <cstdint>

#include "kernels/rope.h"

namespace tulu {

template <typename T>
void rope_inverse_ref(T* x, int64_t rows, int64_t row_stride, int heads, int first_position,
                      const RopeTable& table) {
  const int half = table.head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const float* cos_row = table.cos.data() + (first_position + r) * half;
    const float* sin_row = table.sin.data() + (first_position + r) * half;
    for (int h = 0; h < heads; ++h) {
      T* v = x + r * row_stride + static_cast<int64_t>(h) * table.head_dim;
      for (int i = 0; i < half; ++i) {
        const T c = cos_row[i], s = sin_row[i];
        const T lo = v[i], hi = v[i + half];
        v[i] = lo * c + hi * s;
        v[i + half] = hi * c - lo * s;
      }
    }
  }
}

}  // namespace tulu

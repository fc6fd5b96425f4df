// Scalar reference (the specification) of rope_apply in rope.h, templated on the number
// type (the table's float32 cos/sin values are widened to T).
#pragma once

#include <cstdint>

#include "kernels/rope.h"

namespace tulu {

template <typename T>
void rope_ref(T* x, int64_t rows, int64_t row_stride, int heads, int first_position,
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
        v[i] = lo * c - hi * s;
        v[i + half] = hi * c + lo * s;
      }
    }
  }
}

}  // namespace tulu

// Scalar reference (the specification) of attention.h, templated on the number type T and
// on the cache element type KV (T itself, or Half: widened exactly to fp32, then to T).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "kernels/elementwise_ref.h"
#include "tensor/half.h"

namespace tulu {

// A cache element's value (exact).
inline float kv_value(float v) {
  return v;
}
inline double kv_value(double v) {
  return v;
}
inline float kv_value(Half v) {
  return f16_to_f32(v.bits);
}

template <typename T, typename KV>
void attention_ref(const T* q, int64_t rows, int first_position, const KV* keys, const KV* values,
                   const AttentionShape& shape, T* out) {
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const T scale_divisor = std::sqrt(static_cast<T>(shape.head_dim));
  std::vector<T> scores(static_cast<size_t>(first_position + rows));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t visible = first_position + r + 1;  // causal: positions 0 ..= first_position + r
    for (int h = 0; h < shape.heads; ++h) {
      const int64_t kv_offset = static_cast<int64_t>(h / group) * hd;
      const T* query = q + r * q_dim + h * hd;
      for (int64_t s = 0; s < visible; ++s) {
        T dot = 0;
        for (int64_t i = 0; i < hd; ++i)
          dot += query[i] * static_cast<T>(kv_value(keys[s * kv_dim + kv_offset + i]));
        scores[static_cast<size_t>(s)] = dot / scale_divisor;
      }
      softmax_ref(scores.data(), static_cast<size_t>(visible));
      T* dst = out + r * q_dim + h * hd;
      for (int64_t i = 0; i < hd; ++i) dst[i] = 0;
      for (int64_t s = 0; s < visible; ++s) {
        for (int64_t i = 0; i < hd; ++i)
          dst[i] += scores[static_cast<size_t>(s)] *
                    static_cast<T>(kv_value(values[s * kv_dim + kv_offset + i]));
      }
    }
  }
}

}  // namespace tulu

// Scalar references (the specification) for the element-wise kernels in elementwise.h.
// Templated on the number type so that tests can also run them in double.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"

namespace tulu {

template <typename T>
void add_ref(T* y, const T* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

template <typename T>
void silu_mul_ref(T* gate, const T* up, size_t n) {
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (T(1) + std::exp(-gate[i])) * up[i];
}

template <typename T>
void softmax_ref(T* x, size_t n) {
  if (n == 0) return;
  T max_value = x[0];
  for (size_t i = 1; i < n; ++i) max_value = x[i] > max_value ? x[i] : max_value;
  T sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  for (size_t i = 0; i < n; ++i) x[i] /= sum;
}

// Stored element i of a weight array (F32, BF16 or F16 bits, or ggml blocks counted from
// data) as fp32.
inline float stored_to_f32(const void* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::F32:
      return static_cast<const float*>(data)[i];
    case DType::BF16:
      return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::F16:
      return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16:
      return dequantize_element(data, dtype, i);
  }
  return 0.0f;
}

template <typename T>
void convert_ref(const void* src, DType dtype, size_t n, T* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(stored_to_f32(src, dtype, i));
}

}  // namespace tulu

// Shared by the quantized-kernel tests: random activations with per-block magnitudes spread
// over seven decades, and the error bound of a fast Q8_0 / Q4_0 block dot product against
// the scalar reference (quant_dot.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "tensor/half.h"
#include "tensor/quant_blocks.h"

namespace tulu::quant_test {

// n normals (n a multiple of 32), each block of 32 scaled by 10^U(−4, 3).
inline std::vector<float> scaled_normals(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-4.0f, 3.0f);
  std::vector<float> v(n);
  for (size_t b = 0; b < n / 32; ++b) {
    const float scale = std::pow(10.0f, exponent(gen));
    for (size_t j = 0; j < 32; ++j) v[b * 32 + j] = scale * normal(gen);
  }
  return v;
}

// Bound on |fast − ref| for one row pair: both sum the same exact integer block sums scaled
// by the same fp32 d_w·d_x; they differ only in fp32 accumulation order (ref: one running
// sum; fast: up to 16 lanes of integer partial sums per block, fused multiply-add, then a
// tree). With T = Σ_b |d_w·d_x|·Σ_j |q_w·q_x|, each result is within (blocks + 8)·ε·T of
// the exact sum.
template <typename WBlock>
double dot_bound(const WBlock* w, const BlockQ8_0* x, size_t blocks) {
  double total = 0.0;
  for (size_t b = 0; b < blocks; ++b) {
    const double scale = static_cast<double>(f16_to_f32(w[b].d) * f16_to_f32(x[b].d));
    double sum = 0.0;
    for (size_t j = 0; j < 32; ++j) {
      int q = 0;
      if constexpr (std::is_same_v<WBlock, BlockQ8_0>)
        q = w[b].qs[j];
      else
        q = (j < 16 ? (w[b].qs[j] & 0x0F) : (w[b].qs[j - 16] >> 4)) - 8;
      sum += std::fabs(static_cast<double>(q) * x[b].qs[j]);
    }
    total += std::fabs(scale) * sum;
  }
  return 2.0 * static_cast<double>(blocks + 8) * 0x1p-24 * total + 1e-30;
}

}  // namespace tulu::quant_test

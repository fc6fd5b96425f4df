// Scalar conversions between fp32 and the 16-bit storage formats. Rounding to 16 bits is
// round-to-nearest-even, as PyTorch's .to(torch.bfloat16 / torch.float16) does; NaN stays
// NaN. These are the reference; SIMD conversions in kernels/ are tested against them.
#pragma once

#include <bit>
#include <cstdint>

namespace tulu {

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace tulu

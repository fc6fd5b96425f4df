// ggml's block-quantized weight formats (see dtype.h for the table): the block structs,
// byte-identical to ggml's block_q8_0 / block_q4_0 / block_q4_K / block_q6_K and to GGUF
// tensor data, and their scalar reference codecs. These are the specification the SIMD
// kernels in kernels/quant_*.h are tested against; every rule follows ggml-quants.c
// (quantize_row_q8_0_ref, quantize_row_q4_0_ref, dequantize_row_*), with all arithmetic in
// fp32 (the build uses -ffp-contract=off, so the bits match ggml's scalar code).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace tulu {

inline constexpr size_t kQuantBlock = 32;   // Q8_0, Q4_0
inline constexpr size_t kSuperBlock = 256;  // Q4_K, Q6_K

struct BlockQ8_0 {
  uint16_t d;              // f16 scale
  int8_t qs[kQuantBlock];  // x = qs[j]·d
};
struct BlockQ4_0 {
  uint16_t d;                   // f16 scale
  uint8_t qs[kQuantBlock / 2];  // x[j] = ((qs[j] & 15) − 8)·d, x[j+16] = ((qs[j] >> 4) − 8)·d
};
struct BlockQ4_K {
  uint16_t d;                   // f16 super-block scale of the 6-bit sub-block scales
  uint16_t dmin;                // f16 super-block scale of the 6-bit sub-block minimums
  uint8_t scales[12];           // 8 (scale, min) pairs of 6 bits, packed (get_scale_min_k4)
  uint8_t qs[kSuperBlock / 2];  // 4-bit quants: per 64 elements, 32 low nibbles then 32 high
};
struct BlockQ6_K {
  uint8_t ql[kSuperBlock / 2];  // low 4 bits of the 6-bit quants
  uint8_t qh[kSuperBlock / 4];  // high 2 bits
  int8_t scales[16];            // 8-bit scale per 16 elements
  uint16_t d;                   // f16 super-block scale
};
static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2);
static_assert(sizeof(BlockQ4_0) == 18 && alignof(BlockQ4_0) == 2);
static_assert(sizeof(BlockQ4_K) == 144 && alignof(BlockQ4_K) == 2);
static_assert(sizeof(BlockQ6_K) == 210 && alignof(BlockQ6_K) == 2);

// ggml's block_q8_K: the activation format the K-quant dot products take (never stored in
// a file). x = qs[j]·d; bsums[k] = Σ qs[16k .. 16k+15], which the dot products use for the
// Q4_K minimums and the Q6_K offset of 32.
struct BlockQ8_K {
  float d;                          // fp32 scale (negative when the largest |x| is positive)
  int8_t qs[kSuperBlock];           // |q| ≤ 127
  int16_t bsums[kSuperBlock / 16];  // sums of 16 quants
};
static_assert(sizeof(BlockQ8_K) == 292 && alignof(BlockQ8_K) == 4);

// Quantizes n fp32 values (n a multiple of 32) into n/32 blocks, exactly as ggml's
// quantize_row_q8_0_ref: amax = max|x|, d = amax/127, id = d ? 1/d : 0, q = roundf(x·id)
// (half away from zero), stored d = f16(d). An all-zero block gets d = 0, q = 0.
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, size_t n);
// Exactly as ggml's quantize_row_q4_0_ref: max = the first element of largest |x| (sign
// kept), d = max/−8, id = d ? 1/d : 0, q = min(15, (int8)(x·id + 8.5)), stored d = f16(d).
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, size_t n);
// Quantizes n fp32 values (n a multiple of 256) into n/256 Q8_K blocks, exactly as ggml's
// quantize_row_q8_K_ref: max = the first element of largest |x| (sign kept); a block with
// max|x| = 0 gets d = 0 and all-zero qs and bsums; otherwise iscale = −127/max,
// q = min(127, rint(iscale·x)) (round half to even, as ggml's nearest_int; NaN gives 0),
// bsums = sums of 16 quants, d = 1/iscale (so x ≈ q·d with the largest |x| at q = −127).
void quantize_row_q8_K_ref(const float* x, BlockQ8_K* y, size_t n);
// x[i] = qs[i]·d for n (a multiple of 256) values.
void dequantize_row_q8_K(const BlockQ8_K* x, size_t n, float* y);

// Decodes n elements (a multiple of dtype_block_elements) of any dtype from the start of a
// row at src into dst: exact ggml dequantize_row_* for the quantized types, exact widening
// for F32/F16/BF16.
void dequantize_row(const void* src, DType dtype, size_t n, float* dst);
// Encodes n fp32 values (a multiple of dtype_block_elements) as `dtype` at dst: exact
// copy for F32, round-to-nearest-even for F16/BF16, the ggml reference quantizers for
// Q8_0/Q4_0. Throws tulu::Error for K-quants (read-only here: no encoder).
void encode_row(const float* x, size_t n, DType dtype, void* dst);
// Element i of an array of `dtype` starting at data (blocks counted from data), as fp32:
// the same value dequantize_row gives. For references and tests; slow for quantized types.
float dequantize_element(const void* data, DType dtype, size_t i);

// The 6-bit (scale, min) pair j (0..7) of a Q4_K block (ggml's get_scale_min_k4).
void q4_k_scale_min(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min);

}  // namespace tulu

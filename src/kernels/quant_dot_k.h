// Integer dot products of K-quant weight rows (Q4_K, Q6_K) with activation rows quantized
// to Q8_K, as ggml computes them (ggml_vec_dot_q4_K_q8_K / ggml_vec_dot_q6_K_q8_K), and the
// matmul built on them.
//
// Per 256-element super-block b the result is an exact integer sum scaled in fp32:
//   Q4_K: d_b·S_b − dmin_b·M_b, S_b = Σ_g sc_g·Σ_{i∈g} q_i·x_i (8 sub-blocks g of 32,
//         q ∈ 0..15, 6-bit sc), M_b = Σ_g m_g·Σ_{i∈g} x_i (6-bit mins, from the bsums);
//   Q6_K: d_b·S_b, S_b = Σ_k sc_k·Σ_{i∈k} (q_i − 32)·x_i (16 sub-blocks k of 16, int8 sc),
// with d_b = f16(d_w)·d_x and dmin_b = f16(dmin_w)·d_x rounded to fp32 once.
//
//   *_ref:  the scalar specification, ggml's generic code including its fp32 order: S_b is
//           split into 8 lane sums (element index mod 8), sums[l] += d_b·S_b[l] over the
//           blocks, sumf −= dmin_b·M_b per block, then sumf += sums[0..7].
//   fast:   x86 AVX2 (256-bit maddubs/madd) or AVX-512 VNNI (512-bit maddubs/vpdpwssd)
//           chosen at run time, or the _ref code where neither exists or
//           force_generic_kernels() is set. The integer S_b, M_b are the same; only the fp32
//           accumulation order differs, so with T = Σ_b (|d_b|·Σ_i |sc·q_i·x_i| +
//           |dmin_b|·Σ_g m_g·|Σ_{i∈g} x_i|) both results lie within (blocks + 16)·2⁻²⁴·T of
//           the exact sum: |fast − ref| ≤ 2·(blocks + 16)·2⁻²⁴·T (quant_dot_k_test checks it).
//
// `blocks` = row length / 256. Activation blocks must come from quantize_row_q8_K_ref
// (|q| ≤ 127, bsums consistent with qs: the fast paths use bsums for the Q6_K offset);
// weight blocks may hold any bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/thread_pool.h"
#include "kernels/quant_dot.h"
#include "tensor/quant_blocks.h"
#include "tensor/tensor.h"

namespace tulu {

float vec_dot_q4_K_q8_K_ref(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks);
float vec_dot_q6_K_q8_K_ref(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks);

float vec_dot_q4_K_q8_K(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks);
float vec_dot_q6_K_q8_K(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks);

// out[r] = vec_dot_*_q8_K(w, x + r·blocks, blocks) for r < x_rows, bit for bit: the SIMD
// paths unpack each weight block once for up to 4 activation rows (prompt batches) and
// give every row the same operations in the same order as the single-row call.
void vec_dot_q4_K_q8_K_rows(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks, int x_rows,
                            float* out);
void vec_dot_q6_K_q8_K_rows(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks, int x_rows,
                            float* out);

// y = x · Wᵀ for W [out, in] of dtype Q4_K or Q6_K (in a multiple of 256), x [rows, in]
// fp32, y [rows, out] fp32 (not aliasing x). Each row of x is quantized to Q8_K once per
// call; output rows are split over the pool; every output equals one vec_dot_*_q8_K (the
// _ref one under force_generic_kernels()) bit for bit, so batch and single-row products
// agree exactly. The weight rows two ahead are software-prefetched.
void matmul_k_quant(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool);

// The path vec_dot_*_q8_K take is quant_dot_path() (quant_dot.h): one CPU check and one
// limit (set_quant_dot_path_limit, quant_dot_target_name) for every quantized kernel.
// Software prefetch of the weight rows ahead in matmul_k_quant (on by default; for the
// benchmark that measures it). Not thread-safe with kernels running concurrently.
void set_k_quant_prefetch(bool enabled);

}  // namespace tulu

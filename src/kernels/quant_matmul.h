// y = x · Wᵀ for block-quantized W ([out, in], in a multiple of the block size), the
// quantized branch of matmul() (matmul.h routes every quantized dtype here).
//
//   Q8_0 / Q4_0: each row of x is quantized to Q8_0 once (quantize_row_q8_0, bit-identical
//     to the reference; rows split over the pool), then every output is an integer-block dot
//     product (quant_dot.h), as llama.cpp computes it. On AVX-512 VNNI the products run as
//       1–3 rows (generation): the 512-bit matrix–vector kernel (quant_matvec.h),
//       4 rows: tiles of 4 weight rows × 4 activation rows (quant_dot.h),
//       ≥ 5 rows (prompts): the packed-tile GEMM (quant_gemm_vnni.h);
//     output rows split over the pool. Other CPUs use the AVX2 or scalar pairwise dots.
//   Q4_0_R16 / Q8_0_R16 (the 16-row interleaved copies made at load, tensor/quant_repack.h):
//     1–4 rows take the interleaved matrix–vector kernel, 5 or more the GEMM; elsewhere each
//     16-row group is unpacked to plain rows and goes through the pairwise dots.
//   Q4_K / Q6_K: each row of x is quantized to Q8_K once, then every output is an integer
//     super-block dot product (quant_dot_k.h: matmul_k_quant), as llama.cpp computes it.
// force_generic_kernels() selects the scalar reference dot products.
#pragma once

#include <cstdint>

#include <span>

#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "tensor/tensor.h"

namespace tulu {

// x [rows, in] fp32, y [rows, out] fp32 (not aliasing x).
void quant_matmul(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool);

// matmul_group()'s decode step for quantized weights: when every output's weight has the
// same Q8_0/Q4_0 dtype (or R16 layout) and `in`, rows is 1..3 (1..4 for the R16 layouts)
// and the 512-bit matrix–vector kernel runs on this CPU, computes all outputs (x quantized
// once, one pool dispatch) and returns true; otherwise returns false having written nothing.
bool quant_matvec_group(const float* x, int64_t rows, std::span<const MatmulOutput> outputs,
                        ThreadPool& pool);

}  // namespace tulu

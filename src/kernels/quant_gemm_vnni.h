// Prompt-batch GEMM for Q8_0 / Q4_0 weights on AVX-512 VNNI: y[rows, out] = x · Wᵀ with
// the activation rows x already quantized to Q8_0 (quantize_row_q8_0_ref), W [out, in] in
// GGUF blocks. It computes the same products as vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0
// (quant_dot.h) for every (row, output) pair, laid out for throughput instead of latency:
//
//   * 16 consecutive weight rows are one zmm lane group. Each pool task packs a tile of
//     weight rows into a thread-local buffer as unsigned bytes u (Q8_0: q + 128; Q4_0: the
//     nibble), [block][k/4][16 rows][4 bytes] plus the 16 scales as fp32, so one vpdpbusd
//     multiplies 16 rows × 4 k by a broadcast of 4 activation bytes. Packing is paid once
//     per tile and amortized over every activation row.
//   * The offset is taken back exactly: each block's int32 sum starts at −offset·Σx_block,
//     so the integer block sums are the ones vec_dot_*_ref forms. Per block the sum is
//     converted to fp32 and added as sumi·(d_w·d_x) with one fused multiply-add, in block
//     order, so |gemm − ref| ≤ (blocks + 2)·2⁻²³·Σ_b |sumi_b·d_w·d_x| (the tests check it).
//   * Output rows that are not a multiple of 16 form a partial lane group (padded with zero
//     scales, stored with a mask); any `rows` ≥ 1 works.
//
// Threading: the weight tiles are split over `pool` (each task writes whole 16-column
// slices of y, so tasks never share an output); the activation repacking before it is split
// by rows. Not for use inside a pool task (ThreadPool::parallel_for is not re-entrant).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_repack.h"

namespace tulu {

// True when the GEMM may run now: the CPU has AVX-512 F/BW/VL/VNNI, force_generic_kernels()
// is off and set_quant_dot_path_limit allows the VNNI path (quant_dot_target_name()).
// The quant_gemm_* functions fail (tulu::Error) when called while this is false.
bool quant_gemm_available();

// w: `out` rows of `blocks` blocks each; xq: `rows` rows of `blocks` blocks (|q| ≤ 127);
// y: [rows, out] fp32, row-major, not aliasing the inputs.
void quant_gemm_q8_0(const BlockQ8_0* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                     size_t blocks, float* y, ThreadPool& pool);
void quant_gemm_q4_0(const BlockQ4_0* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                     size_t blocks, float* y, ThreadPool& pool);
// The same products for Q4_0_R16 / Q8_0_R16 weights (tensor/quant_repack.h; out a
// multiple of 16): the bits of quant_gemm_q4_0 / _q8_0 on the rows they were repacked from.
void quant_gemm_q4_0_r16(const BlockQ4_0x16* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                         size_t blocks, float* y, ThreadPool& pool);
void quant_gemm_q8_0_r16(const BlockQ8_0x16* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                         size_t blocks, float* y, ThreadPool& pool);

}  // namespace tulu

// Prompt-batch GEMM for F32 / BF16 / F16 weights on AVX-512: y[rows, out] = x · Wᵀ with
// x [rows, in] fp32 and W [out, in] in its stored dtype (PyTorch's Linear layout). It
// computes what matmul_ref computes, y[r, o] = Σ_k x[r, k]·W[o, k] with every product and
// sum in fp32, in a layout made for the FMA units instead of for memory:
//
//   * x is repacked once per call into groups of 12 rows, [group][k][12] (zero rows pad
//     the last group), so that one broadcast load feeds one row's products with 32 weights.
//   * The weight rows are dealt over the pool in panels of 32 (two zmm of output columns).
//     Each task widens its panel to fp32 as [k][32] in a thread-local buffer (16 rows ×
//     16 elements loaded, widened and transposed in registers at a time), paid once per
//     panel and amortized over every activation row. The panel (32·in·4 bytes: 720 KB at in = 5632)
//     stays in L2 while the x groups stream past it.
//   * The microkernel holds a 12 × 32 output tile in 24 zmm accumulators for the whole
//     inner dimension: per k, 2 panel loads and 12 broadcasts feed 24 FMAs. Each output is
//     one fp32 fused multiply-add chain in k order, written once, so
//     |y − exact| ≤ in·2⁻²⁴·Σ_k |x_k·W_k| (1 + O(2⁻²⁴)), the bound of matmul_ref itself.
//
// Why not sgemm: OpenBLAS (Debian's, single-threaded per pool task) packs x again in every
// call and cannot read BF16/F16, which had to be widened into a 2–6 MB block first.
// Measured in docs/benchmarks.md ("Own GEMM for F32/BF16/F16 prompts").
//
// Threading: x packing is split by row groups, the panels by output columns, over `pool`;
// tasks never share an output. Not for use inside a pool task (parallel_for is not
// re-entrant). The thread-local buffers live as long as their threads (≤ 32·in floats per
// pool thread, 12·⌈rows/12⌉·in floats on the calling thread).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "tensor/tensor.h"

namespace tulu {

// True when packed_gemm may run now: the CPU has AVX-512 F/BW/VL/DQ, FMA and F16C and
// force_generic_kernels() is off. packed_gemm fails (tulu::Error) when called otherwise.
bool packed_gemm_available();

// y [rows, w.dim(0)] = x [rows, w.dim(1)] · Wᵀ for F32, BF16 or F16 weights (others are an
// error). y must not alias x. Any rows ≥ 0, any shapes (in = 0 gives zeros).
void packed_gemm(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool);

// The bf16-input mode, for BF16 weights on CPUs with AVX-512 BF16 (vdpbf16ps): x is rounded
// to bf16 (to nearest even) first, as PyTorch's bf16 inference and llama.cpp do, and each
// output accumulates, pair by pair in k order, x̂[2p+1]·W[2p+1] then x̂[2p]·W[2p] in fp32
// (products exact, sums rounded to nearest, subnormals flushed to zero). Twice the
// multiply-adds per instruction of the fp32 mode; the price is x's rounding, a relative
// error up to 2⁻⁸ per element: |y − x·Wᵀ| ≤ (2⁻⁸ + in·2⁻²⁴)·Σ_k |x_k·W_k| (to first order).
// Same layout and threading as packed_gemm, with two elements per 4-byte word.
bool packed_gemm_bf16_available();
void packed_gemm_bf16_inputs(const float* x, int64_t rows, const TensorView& w, float* y,
                             ThreadPool& pool);

}  // namespace tulu

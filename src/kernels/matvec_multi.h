// y = x · Wᵀ for a few activation rows (2 ..= kMatvecMultiMaxRows): the decode step of
// several sequences at once (continuous batching) and short prompt chunks. Like the
// matrix–vector kernel it streams each weight row from memory once, widening BF16/F16 on
// the fly, but applies it to every activation row while it is in registers: tiles of 4
// weight rows × up to 4 activation rows (16 fp32 vector accumulators), so that a step of
// 8 rows costs about one weight read instead of eight (and no fp32 copy of the weights,
// which is what made the sgemm path slower than 8 matrix–vector products for BF16).
//
// matmul() (matmul.h) sends F32/BF16/F16 products with 2 ..= kMatvecMultiMaxRows rows here
// (crossover below); quantized weights keep their own 4×4 integer tiles (quant_matmul.h). force_generic_kernels(): the scalar
// reference matvec_multi_ref.h. Accuracy: each output is one fp32 dot product of length
// `in` (vector lanes summed at the end), so |y − exact| ≤ (in + 2)·2⁻²⁴·Σ|x·w|.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "tensor/tensor.h"

namespace tulu {

// Above this many rows matmul() uses sgemm: measured with bench_batch_decode --kernels
// (110M F32 and BF16 shapes, 2 threads) matvec_multi was faster up to 24 rows everywhere and
// sgemm first won on F32 gate_proj at 32 rows.
constexpr int64_t kMatvecMultiMaxRows = 24;

// y[rows, out] = x[rows, in] · Wᵀ, W = w [out, in] stored F32, BF16 or F16; any rows ≥ 1
// (the kernel runs groups of 4 rows). Output rows are split over the pool in tiles of 4
// weight rows. y must not alias x. Throws tulu::Error for quantized weights.
void matvec_multi(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool);

// One thread's share: output columns [out_begin, out_end) of every row (y points at
// element [0, 0]).
void matvec_multi_range(const float* x, int64_t rows, const TensorView& w, int64_t out_begin,
                        int64_t out_end, float* y);

}  // namespace tulu

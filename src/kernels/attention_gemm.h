// Causal GQA attention for prompt batches through sgemm (same contract and numerics as
// attention() in attention.h up to fp32 summation order). Per query head h:
//   S = Q_h · K_hᵀ          one GEMM, [rows, first_position + rows]
//   S /= sqrt(head_dim); row r: softmax over its visible columns 0 ..= first_position + r,
//                            the rest set to 0 (so the GEMM below adds exact zeros for them)
//   out_h = S · V_h         one GEMM, [rows, head_dim]
// Worth it when rows is large (a prompt); a one-token step keeps attention().
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace tulu {

// Floats of scratch attention_gemm needs: one [rows, first_position + rows] score matrix
// per thread of the pool.
int64_t attention_gemm_scratch_floats(int64_t rows, int64_t first_position, int threads);

// q [rows, q_dim], keys/values [first_position + rows, kv_dim], out [rows, q_dim] as in
// attention(). scratch: attention_gemm_scratch_floats(rows, first_position,
// pool.num_threads()) floats. Threads: heads are dealt round-robin to the pool's threads.
void attention_gemm(const float* q, int64_t rows, int first_position, const float* keys,
                    const float* values, const AttentionShape& shape, float* out, float* scratch,
                    ThreadPool& pool);

// F16 keys/values (attention.h's Half). sgemm needs fp32 operands, so the range the batch
// reads, [first_position + rows, kv_dim] of keys and of values, is widened exactly to fp32
// in the scratch once per call (a vectorized pass split over the pool), then the fp32 path
// runs: the result equals attention_gemm on the widened keys/values bit for bit. The pass is
// one read of the range against the 4·head_dim·rows flops per element of the two GEMMs, so
// it costs little beside them: measured no slower than the F32 cache (tulu bench, 110M BF16
// model, 2 threads, 16-core Xeon VM, noisy ±10%: pp512 238 / 194 t/s with f16 vs 225 / 228
// with f32; pp2048 170 vs 158). A native f16 GEMM would need a kernel of our own for no gain.
// scratch: attention_gemm_f16_scratch_floats(rows, first_position, kv_dim, threads) floats.
int64_t attention_gemm_f16_scratch_floats(int64_t rows, int64_t first_position, int64_t kv_dim,
                                          int threads);
void attention_gemm(const float* q, int64_t rows, int first_position, const Half* keys,
                    const Half* values, const AttentionShape& shape, float* out, float* scratch,
                    ThreadPool& pool);

}  // namespace tulu

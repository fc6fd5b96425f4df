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

}  // namespace tulu

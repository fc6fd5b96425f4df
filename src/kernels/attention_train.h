// Causal grouped-query attention for training: one whole sequence (no KV cache), forward
// keeping only the per-row log-sum-exp of the scaled scores, backward recomputing the
// probabilities from it (so no [heads, T, T] tensor is kept between the passes).
// Semantics: Hugging Face eager LlamaAttention (repeat_kv: query head h reads kv head
// h / (heads / kv_heads)), scale 1/sqrt(head_dim), softmax in fp32, causal mask.
// Per query head h (S, P: [T, T], only the causal lower triangle used):
//   forward:  S = Q_h K_hᵀ · scale;  lse_r = log Σ_{c≤r} exp(S_rc);  P = exp(S − lse);
//             O_h = P V_h
//   backward: dV_h += Pᵀ dO_h;  dP = dO_h V_hᵀ;  D_r = Σ_j dO_h[r,j] · O_h[r,j];
//             dS = P ∘ (dP − D);  dQ_h = dS K_h · scale;  dK_h += dSᵀ Q_h · scale
// GEMMs through OpenBLAS on the causal blocks only; (head, row block) units over the pool
// for the forward, query heads for the backward (GQA: per-head dK/dV partials in scratch,
// summed per kv head afterwards), so no two threads write the same gradient element and the
// results are the same bits for every thread count (attention_train.cc).
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace tulu {

// Floats of scratch the two functions below need with a pool of `threads` threads (≥ the
// pool's num_threads()): two [min(64, T), T] blocks per thread (scores/probabilities and
// their gradient), plus, when kv_heads < heads, a [T, head_dim] dK and dV partial per query
// head (about 2·heads·T·head_dim floats). Allocate once per sequence-length bound; one
// buffer serves both passes (nothing in it outlives a call).
int64_t attention_train_scratch_floats(int64_t seq_len, const AttentionShape& shape, int threads);

// q [T, q_dim], k/v [T, kv_dim] (rotated q, k), out [T, q_dim], lse [heads, T] (written).
void attention_train_forward(const float* q, const float* k, const float* v, int64_t seq_len,
                             const AttentionShape& shape, float* out, float* lse, float* scratch,
                             ThreadPool& pool);

// Inputs as the forward saw them plus its out and lse; dout [T, q_dim].
// dq [T, q_dim] overwritten; dk, dv [T, kv_dim] overwritten.
void attention_train_backward(const float* q, const float* k, const float* v, const float* out,
                              const float* lse, const float* dout, int64_t seq_len,
                              const AttentionShape& shape, float* dq, float* dk, float* dv,
                              float* scratch, ThreadPool& pool);

// The same over several sequences packed back to back (a training batch's rows), in one
// pool dispatch with (sequence, head) units shared out together: better balanced than one
// call per sequence when heads do not fill the pool. Sequence s is rows [starts[s],
// starts[s + 1]) of q/k/v/out/dout/dq/dk/dv (starts non-decreasing, checked; rows are
// counted from the pointers given); its lse is the [heads, length] block at
// lse + starts[s]·heads — exactly where one call per sequence at row starts[s] puts it, and
// the results are bit-identical to those calls. Scratch:
// attention_train_packed_scratch_floats(starts, shape, threads ≥ pool.num_threads()).
int64_t attention_train_packed_scratch_floats(std::span<const int64_t> starts,
                                              const AttentionShape& shape, int threads);
void attention_train_forward_packed(const float* q, const float* k, const float* v,
                                    std::span<const int64_t> starts, const AttentionShape& shape,
                                    float* out, float* lse, float* scratch, ThreadPool& pool);
void attention_train_backward_packed(const float* q, const float* k, const float* v,
                                     const float* out, const float* lse, const float* dout,
                                     std::span<const int64_t> starts, const AttentionShape& shape,
                                     float* dq, float* dk, float* dv, float* scratch,
                                     ThreadPool& pool);

}  // namespace tulu

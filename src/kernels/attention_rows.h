// Decode-step attention for several independent sequences at once (continuous batching):
// row i is one new token of its own sequence, with its own KV cache and position. Same
// arithmetic as attention.h (causal GQA, fp32 softmax, scale 1/sqrt(head_dim)) for one row
// at first_position = position; the (row, head) pairs are split over the pool together, so
// that 8 rows × 12 heads keep every thread busy instead of running the rows one by one.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "kernels/attention.h"

namespace tulu {

// One row's inputs; KV: the cache element type (float, or Half widened to fp32 on load).
template <typename KV>
struct AttentionRowOf {
  const float* query = nullptr;  // [q_dim], rotated
  const KV* keys = nullptr;      // cache rows [position + 1, kv_dim] (row p = position p),
  const KV* values = nullptr;    // already holding this token's rotated key / value
  int position = 0;              // attends to positions 0 ..= position
  float* out = nullptr;          // [q_dim]; must not overlap another row's inputs or outputs
};
using AttentionRow = AttentionRowOf<float>;
using AttentionRowF16 = AttentionRowOf<Half>;

// scores: scratch of rows.size() × heads × scores_stride floats, scores_stride ≥ every
// row's position + 1 (each (row, head) pair owns its slice, so tasks share no memory).
// force_generic_kernels(): attention_ref (attention_ref.h) per row.
void attention_rows(std::span<const AttentionRow> rows, const AttentionShape& shape, float* scores,
                    int64_t scores_stride, ThreadPool& pool);
// The same over F16 caches (read natively, widened exactly to fp32 on load).
void attention_rows(std::span<const AttentionRowF16> rows, const AttentionShape& shape,
                    float* scores, int64_t scores_stride, ThreadPool& pool);

}  // namespace tulu

// Causal grouped-query attention over a KV cache, softmax in fp32, scale 1/sqrt(head_dim)
// (Hugging Face's eager LlamaAttention with repeat_kv: query head h reads key/value head
// h / (heads / kv_heads)).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tulu {

struct AttentionShape {
  int heads = 0;     // query heads
  int kv_heads = 0;  // key/value heads; divides heads
  int head_dim = 0;
  int q_dim() const { return heads * head_dim; }
  int kv_dim() const { return kv_heads * head_dim; }
};

// q:   [rows, q_dim], rotated queries of the tokens at positions first_position + r.
// keys, values: cache rows [first_position + rows, kv_dim] (row p = position p), already
//      holding the new tokens' rotated keys and values.
// out: [rows, q_dim]; row r attends to positions 0 ..= first_position + r.
// scores: scratch of heads × (first_position + rows) floats.
// Threads: heads are split over the pool.
void attention(const float* q, int64_t rows, int first_position, const float* keys,
               const float* values, const AttentionShape& shape, float* out, float* scores,
               ThreadPool& pool);

}  // namespace tulu

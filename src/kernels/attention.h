// Causal grouped-query attention over a KV cache, softmax in fp32, scale 1/sqrt(head_dim)
// (Hugging Face's eager LlamaAttention with repeat_kv: query head h reads key/value head
// h / (heads / kv_heads)). Keys/values are read as stored: fp32, or IEEE half (Half) widened
// exactly to fp32 on load (the math stays fp32, as llama.cpp's f16 KV cache).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tulu {

// One KV cache element stored as IEEE binary16: raw bits, rounded from fp32 to nearest even
// (f32_to_f16 in tensor/half.h, as torch's .half()). Same size and layout as uint16_t.
struct Half {
  uint16_t bits;
};

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
// The same over an F16 cache: each key/value widened exactly to fp32 as it is read (no
// conversion pass over the cache), then the fp32 arithmetic above.
void attention(const float* q, int64_t rows, int first_position, const Half* keys,
               const Half* values, const AttentionShape& shape, float* out, float* scores,
               ThreadPool& pool);

}  // namespace tulu

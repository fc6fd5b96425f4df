// Scalar reference (the specification) of attention_train.h, templated on the number type:
// the formulas of that header, one query row and one head at a time, no blocking.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/attention.h"

namespace tulu {

// q [T, q_dim], k/v [T, kv_dim] → out [T, q_dim], lse [heads, T].
template <typename U>
void attention_train_forward_ref(const U* q, const U* k, const U* v, int64_t seq_len,
                                 const AttentionShape& shape, U* out, U* lse) {
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const U scale = U(1) / std::sqrt(static_cast<U>(shape.head_dim));
  std::vector<U> scores(static_cast<size_t>(seq_len));
  for (int h = 0; h < shape.heads; ++h) {
    const int64_t kv_offset = static_cast<int64_t>(h / group) * hd;
    for (int64_t r = 0; r < seq_len; ++r) {
      const U* query = q + r * q_dim + h * hd;
      U max_score = 0;
      for (int64_t c = 0; c <= r; ++c) {
        U dot = 0;
        for (int64_t i = 0; i < hd; ++i) dot += query[i] * k[c * kv_dim + kv_offset + i];
        scores[static_cast<size_t>(c)] = dot * scale;
        if (c == 0 || scores[static_cast<size_t>(c)] > max_score)
          max_score = scores[static_cast<size_t>(c)];
      }
      U sum = 0;
      for (int64_t c = 0; c <= r; ++c) sum += std::exp(scores[static_cast<size_t>(c)] - max_score);
      lse[h * seq_len + r] = max_score + std::log(sum);
      U* dst = out + r * q_dim + h * hd;
      for (int64_t i = 0; i < hd; ++i) dst[i] = 0;
      for (int64_t c = 0; c <= r; ++c) {
        const U p = std::exp(scores[static_cast<size_t>(c)] - max_score) / sum;
        for (int64_t i = 0; i < hd; ++i) dst[i] += p * v[c * kv_dim + kv_offset + i];
      }
    }
  }
}

// Backward from the forward's out and lse: dq [T, q_dim], dk/dv [T, kv_dim] overwritten.
template <typename U>
void attention_train_backward_ref(const U* q, const U* k, const U* v, const U* out, const U* lse,
                                  const U* dout, int64_t seq_len, const AttentionShape& shape,
                                  U* dq, U* dk, U* dv) {
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const U scale = U(1) / std::sqrt(static_cast<U>(shape.head_dim));
  for (int64_t i = 0; i < seq_len * q_dim; ++i) dq[i] = 0;
  for (int64_t i = 0; i < seq_len * kv_dim; ++i) dk[i] = dv[i] = 0;
  for (int h = 0; h < shape.heads; ++h) {
    const int64_t kv_offset = static_cast<int64_t>(h / group) * hd;
    for (int64_t r = 0; r < seq_len; ++r) {
      const U* query = q + r * q_dim + h * hd;
      const U* grad_out = dout + r * q_dim + h * hd;
      const U* o = out + r * q_dim + h * hd;
      U delta = 0;  // D_r = dO_r · O_r
      for (int64_t i = 0; i < hd; ++i) delta += grad_out[i] * o[i];
      for (int64_t c = 0; c <= r; ++c) {
        const U* key = k + c * kv_dim + kv_offset;
        const U* value = v + c * kv_dim + kv_offset;
        U score = 0, dp = 0;
        for (int64_t i = 0; i < hd; ++i) {
          score += query[i] * key[i];
          dp += grad_out[i] * value[i];
        }
        const U p = std::exp(score * scale - lse[h * seq_len + r]);
        const U ds = p * (dp - delta);
        for (int64_t i = 0; i < hd; ++i) {
          dq[r * q_dim + h * hd + i] += ds * key[i] * scale;
          dk[c * kv_dim + kv_offset + i] += ds * query[i] * scale;
          dv[c * kv_dim + kv_offset + i] += p * grad_out[i];
        }
      }
    }
  }
}

}  // namespace tulu

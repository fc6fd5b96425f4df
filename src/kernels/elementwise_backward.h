// Element-wise training kernels (fp32): the SwiGLU product without overwriting its inputs,
// its backward, and the embedding's backward. Single-threaded unless a pool is taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/thread_pool.h"

namespace tulu {

// out[i] = silu(gate[i]) · up[i]  (out must not alias gate or up).
void silu_mul_to(const float* gate, const float* up, float* out, size_t n);

// For h = silu(g) · u with incoming dh: dgate = dh · u · silu'(g), dup = dh · silu(g),
// silu'(g) = σ(g) · (1 + g · (1 − σ(g))). dgate/dup overwritten; may alias nothing.
void silu_mul_backward(const float* gate, const float* up, const float* dh, float* dgate,
                       float* dup, size_t n);

// The two above split over the pool in blocks of 64 elements (a multiple of every vector
// width, so each element takes the same code path as in the single-threaded call and the
// results are bit-identical to it). For [tokens, intermediate] activations of training.
void silu_mul_to(const float* gate, const float* up, float* out, size_t n, ThreadPool& pool);
void silu_mul_backward(const float* gate, const float* up, const float* dh, float* dgate,
                       float* dup, size_t n, ThreadPool& pool);

// dtable[ids[t], :] += dout[t, :] for t < ids.size(); dtable [vocab, hidden] fp32; ids
// already checked to lie in [0, vocab).
void embedding_backward(std::span<const int> ids, const float* dout, int64_t hidden, float* dtable);

}  // namespace tulu

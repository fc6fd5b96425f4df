// Element-wise kernels on fp32 activations. Pointers may be unaligned; x and y must not
// overlap unless stated. Single-threaded: these are cheap next to the matmuls around them.
#pragma once

#include <cstddef>
#include <span>

#include "tensor/tensor.h"

namespace tulu {

// y[i] += x[i] (the residual stream).
void add_inplace(float* y, const float* x, size_t n);

// gate[i] = silu(gate[i]) · up[i], silu(v) = v / (1 + exp(−v)) (the SwiGLU MLP).
void silu_mul(float* gate, const float* up, size_t n);

// x ← softmax(x) in fp32: exp(x − max) / Σ exp(x − max). n = 0 is a no-op.
void softmax_inplace(float* x, size_t n);

// dst[i] = fp32 value of stored element i (F32, BF16 or F16 bits at src; for a quantized
// dtype, n is a multiple of its block size and src the start of a block).
void convert_to_f32(const void* src, DType dtype, size_t n, float* dst);

// out[t, :] = table[ids[t], :] as fp32, table [vocab, hidden] of any dtype.
// Ids must already be checked to lie in [0, vocab).
void embedding_lookup(const TensorView& table, std::span<const int> ids, float* out);

}  // namespace tulu

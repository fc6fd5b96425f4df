// Scalar references (the specification) of elementwise_backward.h, templated on the number
// type so that tests can run them in double. (silu_mul_to's reference is silu_mul_ref in
// elementwise_ref.h on a copy of gate.)
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tulu {

// h = silu(g)·u, silu(g) = g·σ(g), σ(g) = 1 / (1 + exp(−g)):
//   dgate = dh · u · σ(g) · (1 + g · (1 − σ(g))),  dup = dh · silu(g).
template <typename T>
void silu_mul_backward_ref(const T* gate, const T* up, const T* dh, T* dgate, T* dup, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const T denominator = T(1) + std::exp(-gate[i]);
    const T sigmoid = T(1) / denominator;
    const T silu = gate[i] / denominator;
    dup[i] = dh[i] * silu;
    dgate[i] = dh[i] * up[i] * (sigmoid * (T(1) + gate[i] * (T(1) - sigmoid)));
  }
}

// dtable[ids[t], :] += dout[t, :], tokens in order.
template <typename T>
void embedding_backward_ref(std::span<const int> ids, const T* dout, int64_t hidden, T* dtable) {
  for (size_t t = 0; t < ids.size(); ++t) {
    T* row = dtable + static_cast<int64_t>(ids[t]) * hidden;
    for (int64_t i = 0; i < hidden; ++i) row[i] += dout[static_cast<int64_t>(t) * hidden + i];
  }
}

}  // namespace tulu

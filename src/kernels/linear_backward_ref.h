// Scalar references (the specification) of linear_backward.h, templated on the number type
// so that tests can run them in double. Plain triple loops; sums in the order written.
#pragma once

#include <cstdint>

namespace tulu {

// y[r, o] = Σ_i x[r, i] · w[o, i]   (x [rows, in], w [out, in], y [rows, out] overwritten).
template <typename T>
void linear_forward_ref(const T* x, int64_t rows, const T* w, int64_t out, int64_t in, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      T sum = 0;
      for (int64_t i = 0; i < in; ++i) sum += x[r * in + i] * w[o * in + i];
      y[r * out + o] = sum;
    }
  }
}

// dx[r, i] (= or +=) Σ_o dy[r, o] · w[o, i]   (dy [rows, out], dx [rows, in]).
template <typename T>
void linear_backward_input_ref(const T* dy, int64_t rows, const T* w, int64_t out, int64_t in,
                               T* dx, bool accumulate) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < in; ++i) {
      T sum = 0;
      for (int64_t o = 0; o < out; ++o) sum += dy[r * out + o] * w[o * in + i];
      dx[r * in + i] = accumulate ? dx[r * in + i] + sum : sum;
    }
  }
}

// dw[o, i] += Σ_r dy[r, o] · x[r, i] for output rows o in [out_begin, out_end) (dw [out, in];
// the range lets a caller split the rows of dw over threads).
template <typename T>
void linear_backward_weight_ref(const T* dy, const T* x, int64_t rows, int64_t out, int64_t in,
                                T* dw, int64_t out_begin, int64_t out_end) {
  for (int64_t o = out_begin; o < out_end; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      T sum = 0;
      for (int64_t r = 0; r < rows; ++r) sum += dy[r * out + o] * x[r * in + i];
      dw[o * in + i] += sum;
    }
  }
}

}  // namespace tulu

// Shared helpers for the kernel tests: run a check once per compiled Highway target the
// CPU supports (and once with the scalar references forced), lengths that cover every tail,
// misaligned buffers, seeded random data.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/highway.h>
#include <hwy/targets.h>

#include "kernels/dispatch.h"
#include "tensor/half.h"
#include "tensor/tensor.h"

namespace tulu::testing {

// The widest vector we may meet holds 16 floats (AVX-512); lengths 0 .. 2·16 + 3 reach
// every main-loop / tail split of every target.
constexpr int kMaxLanes = 16;
constexpr int kMaxTestLength = 2 * kMaxLanes + 3;
// Misalignments, in elements, applied to every input and output pointer.
constexpr int kMisalignments[] = {0, 1, 3};

// Runs body once for each Highway target compiled in and supported here, with dynamic
// dispatch pinned to it; SCOPED_TRACE names the target in failures.
inline void for_each_target(const std::function<void()>& body) {
  set_force_generic_kernels(false);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(std::string("Highway target ") + hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Scoped switch to the generic (scalar reference) path.
struct ForceGeneric {
  ForceGeneric() { set_force_generic_kernels(true); }
  ~ForceGeneric() { set_force_generic_kernels(false); }
  ForceGeneric(const ForceGeneric&) = delete;
  ForceGeneric& operator=(const ForceGeneric&) = delete;
};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// A weight matrix [rows, cols] stored in `dtype`, starting `misalign` elements into its
// buffer. Values are random fp32 rounded to the dtype (so the fp32 copy is exact).
struct StoredMatrix {
  std::vector<uint8_t> bytes;
  TensorView view;
  std::vector<double> values;  // exact values, row-major

  StoredMatrix(DType dtype, int64_t rows, int64_t cols, int misalign, uint32_t seed,
               float scale = 1.0f) {
    const size_t n = static_cast<size_t>(rows * cols), size = dtype_size(dtype);
    bytes.assign((n + static_cast<size_t>(misalign) + 1) * size + 64, 0);
    // Start from a 64-byte aligned address inside the buffer, then misalign.
    auto base = reinterpret_cast<uintptr_t>(bytes.data());
    const uintptr_t aligned = (base + 63) & ~uintptr_t{63};
    uint8_t* data = bytes.data() + (aligned - base) + static_cast<size_t>(misalign) * size;
    std::vector<float> source = random_floats(n, seed, scale);
    values.resize(n);
    for (size_t i = 0; i < n; ++i) {
      switch (dtype) {
        case DType::F32:
          reinterpret_cast<float*>(data)[i] = source[i];
          values[i] = source[i];
          break;
        case DType::BF16: {
          const uint16_t bits = f32_to_bf16(source[i]);
          reinterpret_cast<uint16_t*>(data)[i] = bits;
          values[i] = bf16_to_f32(bits);
          break;
        }
        case DType::F16: {
          const uint16_t bits = f32_to_f16(source[i]);
          reinterpret_cast<uint16_t*>(data)[i] = bits;
          values[i] = f16_to_f32(bits);
          break;
        }
        case DType::Q8_0:
        case DType::Q4_0:
        case DType::Q4_K:
        case DType::Q6_K:
        case DType::Q4_0_R16:
        case DType::Q8_0_R16:
          throw std::invalid_argument("StoredMatrix holds scalar dtypes only");
      }
    }
    view.dtype = dtype;
    view.shape = {rows, cols};
    view.data = data;
  }
};

// A float array of n elements starting `misalign` floats into its own exactly sized buffer
// (so that ASan sees any write or read past the end).
struct Floats {
  std::vector<float> storage;
  float* data;
  size_t size;
  Floats(size_t n, int misalign) : storage(n + static_cast<size_t>(misalign)), size(n) {
    data = storage.data() + misalign;
  }
  Floats(const std::vector<float>& values, int misalign) : Floats(values.size(), misalign) {
    std::copy(values.begin(), values.end(), data);
  }
  std::vector<float> vec() const { return std::vector<float>(data, data + size); }
};

inline const DType kAllDtypes[] = {DType::F32, DType::BF16, DType::F16};

// fp32 accumulation of an n-term dot product (lanes, then their sum, then the scalar tail):
// |error| ≤ γ_n · Σ|x_i·w_i| with γ_n ≈ n·u, u = 2⁻²⁴ (Higham, Accuracy and Stability of
// Numerical Algorithms, §3.1); the weights are exact in fp32 after widening (StoredMatrix),
// so this is the whole bound.
inline double dot_tolerance(const double* x, const double* w, int64_t n) {
  double magnitude = 0;
  for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(x[i] * w[i]);
  return (static_cast<double>(n) + 2) * 0x1p-24 * magnitude + 1e-30;
}

// A product kernel's signature as the tests call it: y [rows, out] = x [rows, in] · wᵀ.
using ProductKernel =
    std::function<void(const float* x, int64_t rows, const TensorView& w, float* y)>;

// With the generic path forced, `kernel` must equal `reference` (the scalar reference in
// float) bit for bit for every weight dtype: x [rows, 19] against w [70, 19], misaligned W.
inline void expect_generic_path_is_reference(int64_t rows, uint32_t seed,
                                             const ProductKernel& kernel,
                                             const ProductKernel& reference) {
  ForceGeneric generic;
  for (DType dtype : kAllDtypes) {
    StoredMatrix w(dtype, 70, 19, 1, seed);
    const std::vector<float> x = random_floats(static_cast<size_t>(rows * 19), seed + 1);
    std::vector<float> y(static_cast<size_t>(rows * 70)), expected(y.size());
    kernel(x.data(), rows, w.view, y.data());
    reference(x.data(), rows, w.view, expected.data());
    EXPECT_EQ(y, expected) << dtype_name(dtype);
  }
}

// Asserts that y [rows, out], an fp32 product of x [rows, in] and the rows of w [out, in],
// equals `expected` (the double reference) within dot_tolerance at every element; a failure
// names the element.
inline void expect_product_near(const float* y, const std::vector<double>& expected,
                                const std::vector<double>& x, const StoredMatrix& w, int64_t rows,
                                int64_t out, int64_t in) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      const double tolerance = dot_tolerance(x.data() + r * in, w.values.data() + o * in, in);
      ASSERT_NEAR(y[r * out + o], expected[static_cast<size_t>(r * out + o)], tolerance)
          << "at [" << r << ", " << o << "]";
    }
  }
}

}  // namespace tulu::testing

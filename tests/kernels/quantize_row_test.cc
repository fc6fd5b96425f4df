// quantize_row_q8_0 (AVX-512) against quantize_row_q8_0_ref: bit-identical blocks on
// random rows spanning 70 decades, exact rounding ties (±k.5), all-zero and sub-f16-normal
// blocks, and blocks holding NaN or ±inf; and the generic switch selecting the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/quantize_row.h"

namespace tulu {
namespace {

void expect_same_as_reference(const std::vector<float>& x, const char* what) {
  std::vector<BlockQ8_0> fast(x.size() / 32), ref(x.size() / 32);
  quantize_row_q8_0(x.data(), fast.data(), x.size());
  quantize_row_q8_0_ref(x.data(), ref.data(), x.size());
  for (size_t b = 0; b < fast.size(); ++b)
    ASSERT_EQ(std::memcmp(&fast[b], &ref[b], sizeof(BlockQ8_0)), 0) << what << " block " << b;
}

TEST(QuantizeRowQ8_0, RandomRowsEqualTheReference) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-35.0f, 35.0f);
  std::vector<float> x(32 * 4000);
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float scale = std::pow(10.0f, exponent(gen));
    for (size_t j = 0; j < 32; ++j) x[b * 32 + j] = scale * normal(gen);
  }
  expect_same_as_reference(x, "random");
}

TEST(QuantizeRowQ8_0, TiesZerosTinyAndNonFiniteBlocksEqualTheReference) {
  std::vector<float> x;
  // amax 127 → d = 1, id = 1: every x·id is the value itself, ties at ±k.5.
  for (int j = 0; j < 32; ++j) x.push_back(j == 0 ? 127.0f : (j % 2 ? 1 : -1) * (j + 0.5f));
  // Values just below a half (0.5 − ulp) must round toward zero.
  for (int j = 0; j < 32; ++j)
    x.push_back(j == 0 ? 127.0f : (j % 2 ? 1 : -1) * std::nextafter(j + 0.5f, 0.0f));
  for (int j = 0; j < 32; ++j) x.push_back(0.0f);
  for (int j = 0; j < 32; ++j) x.push_back(j % 2 ? -0.0f : 0.0f);
  for (int j = 0; j < 32; ++j) x.push_back(1e-30f * static_cast<float>(j - 16));  // f16(d) = 0
  for (int j = 0; j < 32; ++j) x.push_back(3e38f * static_cast<float>(j - 16) / 16.0f);
  for (int j = 0; j < 32; ++j) x.push_back(j == 7 ? std::numeric_limits<float>::quiet_NaN() : 1.0f);
  for (int j = 0; j < 32; ++j) x.push_back(j == 9 ? -std::numeric_limits<float>::infinity() : 2.0f);
  expect_same_as_reference(x, "special");
}

TEST(QuantizeRowQ8_0, GenericSwitchGivesTheReference) {
  std::vector<float> x(64);
  for (size_t j = 0; j < x.size(); ++j) x[j] = static_cast<float>(j) * 0.37f - 9.0f;
  set_force_generic_kernels(true);
  expect_same_as_reference(x, "generic");
  set_force_generic_kernels(false);
}

}  // namespace
}  // namespace tulu

// encode_row (tensor/quant_blocks.h), the one writer of every dtype `tulu quantize` emits:
// each dtype's bytes equal those of its own encoder (copy, f32_to_f16/bf16, the ggml
// reference quantizers), dequantize_row reads them back as those encoders define, and the
// read-only K-quants are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"

namespace tulu {
namespace {

std::vector<float> values(size_t n) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  v[5] = 0.0f;
  v[6] = -1e-6f;
  return v;
}

TEST(EncodeRow, EachDtypeMatchesItsEncoder) {
  const size_t n = 96;
  const std::vector<float> x = values(n);
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(dtype_name(dtype));
    std::vector<uint8_t> got(dtype_row_bytes(dtype, n)), want(got.size());
    encode_row(x.data(), n, dtype, got.data());
    for (size_t i = 0; i < n && dtype == DType::F32; ++i) std::memcpy(&want[4 * i], &x[i], 4);
    for (size_t i = 0; i < n && (dtype == DType::F16 || dtype == DType::BF16); ++i) {
      const uint16_t bits = dtype == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
      std::memcpy(&want[2 * i], &bits, 2);
    }
    if (dtype == DType::Q8_0)
      quantize_row_q8_0_ref(x.data(), reinterpret_cast<BlockQ8_0*>(want.data()), n);
    if (dtype == DType::Q4_0)
      quantize_row_q4_0_ref(x.data(), reinterpret_cast<BlockQ4_0*>(want.data()), n);
    EXPECT_EQ(got, want);
    std::vector<float> back(n);
    dequantize_row(got.data(), dtype, n, back.data());
    for (size_t i = 0; i < n; ++i) {
      // Half the quantization step of each format bounds the round trip (Q4_0: d/2 with
      // d = max|x|/8 per block; Q8_0: d/2 with d = max|x|/127).
      const double tolerance = dtype == DType::F32    ? 0.0
                               : dtype == DType::F16  ? std::fabs(x[i]) * 0x1p-11 + 0x1p-25  // subnormals
                               : dtype == DType::BF16 ? std::fabs(x[i]) * 0x1p-8
                               : dtype == DType::Q8_0 ? 10.0 / 127 / 2 * 1.01
                                                      : 10.0 / 8 / 2 * 1.01;
      EXPECT_LE(std::fabs(back[i] - x[i]), tolerance) << "element " << i;
    }
  }
}

TEST(EncodeRow, KQuantsAreRefused) {
  const std::vector<float> x = values(256);
  std::vector<uint8_t> out(dtype_row_bytes(DType::Q4_K, 256));
  for (DType dtype : {DType::Q4_K, DType::Q6_K}) {
    try {
      encode_row(x.data(), 256, dtype, out.data());
      FAIL() << "no error for " << dtype_name(dtype);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(dtype_name(dtype))), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace tulu

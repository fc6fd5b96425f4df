// fp32 <-> f16 / bf16 scalar conversions against independent references: the CPU's own
// F16C conversion instructions (where present) and exhaustive round trips.
#include "tensor/half.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

namespace tulu {
namespace {

__attribute__((target("f16c"))) uint16_t hardware_f32_to_f16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hardware_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

bool have_f16c() { return __builtin_cpu_supports("f16c"); }

TEST(Half, F16ToF32MatchesHardwareForAll65536Values) {
  if (!have_f16c()) GTEST_SKIP() << "CPU has no F16C";
  for (uint32_t h = 0; h < 65536; ++h) {
    float ours = f16_to_f32(static_cast<uint16_t>(h));
    float hw = hardware_f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(hw)) {
      EXPECT_TRUE(std::isnan(ours)) << "h=" << h;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(ours), std::bit_cast<uint32_t>(hw)) << "h=" << h;
    }
  }
}

TEST(Half, F32ToF16MatchesHardwareOnRandomAndEdgeValues) {
  if (!have_f16c()) GTEST_SKIP() << "CPU has no F16C";
  std::mt19937 rng(7);
  std::vector<float> values = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 5.96e-8f,
                               2.98e-8f, 2.9802322e-8f, 6.1e-5f, 6.103515625e-05f,
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(), 1e30f, -1e-30f};
  for (int i = 0; i < 2000000; ++i) values.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (float f : values) {
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), hardware_f32_to_f16(f)) << "f=" << f << " bits=" << std::bit_cast<uint32_t>(f);
  }
}

TEST(Half, F16RoundTripIsIdentity) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h);
  }
}

// bf16 rounding reference: the nearest representable bf16 value computed in double,
// ties to the even mantissa.
uint16_t bf16_reference(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  uint16_t lo = static_cast<uint16_t>(bits >> 16);
  uint16_t hi = static_cast<uint16_t>(lo + 1);
  double down = bf16_to_f32(lo), up = bf16_to_f32(hi);
  double dist_down = std::fabs(static_cast<double>(f) - down);
  double dist_up = std::isinf(up) && !std::isinf(f) ? std::fabs(static_cast<double>(f) - std::ldexp(1.0, 128) * (f < 0 ? -1 : 1))
                                                     : std::fabs(static_cast<double>(f) - up);
  if (dist_down < dist_up) return lo;
  if (dist_up < dist_down) return hi;
  return (lo & 1) ? hi : lo;
}

TEST(Half, Bf16RoundsToNearestEven) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2000000; ++i) {
    float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f) || std::isinf(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), bf16_reference(f)) << "bits=" << std::bit_cast<uint32_t>(f);
  }
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace tulu

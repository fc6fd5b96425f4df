// Element-wise kernels: every Highway target against the scalar references over all tail
// lengths and misalignments; the widening loads against half.h over all 65536 bit patterns.
#include <cmath>
#include <cstring>

#include "kernel_test_util.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_ref.h"

namespace tulu {
namespace {

using testing::Floats;
using testing::for_each_target;
using testing::kMaxTestLength;
using testing::kMisalignments;
using testing::random_floats;

// Highway's Exp is accurate to a few ulp (hwy/contrib/math: max error 1 ulp of float on
// its test range) while std::exp is correctly rounded or nearly so; silu and softmax see
// that, plus one rounding per operation: 8 float ulp relative.
constexpr float kExpRelativeTolerance = 8 * 1.1920929e-7f;

TEST(Elementwise, AddIsExact) {
  for_each_target([] {
    for (int n = 0; n <= kMaxTestLength; ++n) {
      for (int misalign : kMisalignments) {
        Floats y(random_floats(static_cast<size_t>(n), 1), misalign),
            x(random_floats(static_cast<size_t>(n), 2), misalign);
        std::vector<float> expected = y.vec();
        add_ref(expected.data(), x.data, x.size);
        add_inplace(y.data, x.data, y.size);
        ASSERT_EQ(y.vec(), expected) << "n=" << n << " misalign=" << misalign;
      }
    }
  });
}

TEST(Elementwise, SiluMulMatchesReference) {
  for_each_target([] {
    for (int n = 0; n <= kMaxTestLength; ++n) {
      for (int misalign : kMisalignments) {
        // Scale 4 reaches the saturated parts of the sigmoid too.
        Floats gate(random_floats(static_cast<size_t>(n), 3, 4.0f), misalign);
        Floats up(random_floats(static_cast<size_t>(n), 4), misalign);
        std::vector<double> expected(gate.data, gate.data + n), up_d(up.data, up.data + n);
        silu_mul_ref(expected.data(), up_d.data(), expected.size());
        silu_mul(gate.data, up.data, gate.size);
        for (int i = 0; i < n; ++i) {
          ASSERT_NEAR(gate.data[i], expected[i],
                      kExpRelativeTolerance * (std::fabs(expected[i]) + 1e-30))
              << "n=" << n << " misalign=" << misalign << " i=" << i;
        }
      }
    }
  });
}

TEST(Elementwise, SoftmaxMatchesReference) {
  for_each_target([] {
    for (int n = 0; n <= kMaxTestLength; ++n) {
      for (int misalign : kMisalignments) {
        Floats x(random_floats(static_cast<size_t>(n), 5, 3.0f), misalign);
        std::vector<double> expected(x.data, x.data + n);
        softmax_ref(expected.data(), expected.size());
        softmax_inplace(x.data, x.size);
        double total = 0;
        for (int i = 0; i < n; ++i) {
          // Plus the fp32 rounding of the n-term sum: n/2 ulp relative.
          const double tolerance = (kExpRelativeTolerance + n * 0.6e-7) * expected[i] + 1e-12;
          ASSERT_NEAR(x.data[i], expected[i], tolerance)
              << "n=" << n << " misalign=" << misalign << " i=" << i;
          total += x.data[i];
        }
        if (n > 0) {
          EXPECT_NEAR(total, 1.0, 1e-6);
        }
      }
    }
  });
}

TEST(Elementwise, SoftmaxHandlesLargeLogits) {
  // exp(x − max) must not overflow for logits far from 0.
  for_each_target([] {
    std::vector<float> x = {1000.0f, 999.0f, -1000.0f};
    std::vector<double> expected(x.begin(), x.end());
    softmax_ref(expected.data(), expected.size());
    softmax_inplace(x.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], expected[i], 1e-6);
  });
}

// Every 16-bit pattern through the widening conversion, compared bit for bit with half.h
// (NaN payloads may differ; NaN must stay NaN).
void check_all_patterns(DType dtype) {
  std::vector<uint16_t> bits(65536);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
  for (int misalign : kMisalignments) {
    std::vector<uint16_t> src(bits.size() - static_cast<size_t>(misalign));
    std::memcpy(src.data(), bits.data() + misalign, src.size() * 2);
    std::vector<float> got(src.size());
    convert_to_f32(src.data(), dtype, src.size(), got.data());
    for (size_t i = 0; i < src.size(); ++i) {
      const float want = dtype == DType::BF16 ? bf16_to_f32(src[i]) : f16_to_f32(src[i]);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(got[i])) << "bits 0x" << std::hex << src[i];
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want))
            << "bits 0x" << std::hex << src[i];
      }
    }
  }
}

TEST(Elementwise, WideningBf16AndF16MatchesHalfH) {
  for_each_target([] {
    check_all_patterns(DType::BF16);
    check_all_patterns(DType::F16);
  });
}

TEST(Elementwise, ConvertAndEmbeddingEveryLength) {
  for_each_target([] {
    for (DType dtype : testing::kAllDtypes) {
      for (int n = 0; n <= kMaxTestLength; ++n) {
        for (int misalign : kMisalignments) {
          testing::StoredMatrix table(dtype, 5, n, misalign, 6);
          const std::vector<int> ids = {4, 0, 4, 2};
          std::vector<float> out(ids.size() * static_cast<size_t>(n), -1.0f);
          embedding_lookup(table.view, ids, out.data());
          for (size_t t = 0; t < ids.size(); ++t) {
            for (int i = 0; i < n; ++i) {
              ASSERT_EQ(out[t * static_cast<size_t>(n) + static_cast<size_t>(i)],
                        static_cast<float>(table.values[static_cast<size_t>(ids[t] * n + i)]))
                  << dtype_name(dtype) << " n=" << n << " misalign=" << misalign;
            }
          }
        }
      }
    }
  });
}

TEST(Elementwise, GenericSwitchRunsTheReference) {
  testing::ForceGeneric generic;
  EXPECT_TRUE(force_generic_kernels());
  EXPECT_EQ(kernel_target_name(), "generic (scalar reference)");
  std::vector<float> gate = random_floats(37, 7, 3.0f), up = random_floats(37, 8);
  std::vector<float> expected = gate;
  silu_mul_ref(expected.data(), up.data(), expected.size());
  silu_mul(gate.data(), up.data(), gate.size());
  EXPECT_EQ(gate, expected);  // the same scalar code: bit-identical
}

}  // namespace
}  // namespace tulu

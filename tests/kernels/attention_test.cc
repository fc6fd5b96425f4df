// Causal GQA attention: every Highway target against the double reference, head_dim over
// every tail length, MHA / GQA / MQA, prompt batches and single steps after a prefix,
// one and two threads; causality checked directly. F16 caches: against the reference
// widening the halves, and bit for bit against the F32 kernel on the pre-rounded values.
#include <cmath>

#include "attention_kv_test_util.h"
#include "kernel_test_util.h"
#include "kernels/attention.h"
#include "kernels/attention_ref.h"

namespace tulu {
namespace {

// Each output is a convex combination of values: the fp32 dot products (≤ (hd+2)·u
// relative on scores of size ≤ 10), softmax (a few ulp + n/2 ulp for the sum) and the
// weighted sum (n + 2 roundings) give ≤ 1e-5 absolute on O(1) values at these sizes.
constexpr double kAttentionTolerance = 1e-5;

void check_attention(const AttentionShape& shape, int64_t rows, int first_position, int misalign,
                     ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << "heads=" << shape.heads << " kv_heads=" << shape.kv_heads << " head_dim="
               << shape.head_dim << " rows=" << rows << " first_position=" << first_position
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  const int64_t total = first_position + rows;
  const auto q_size = static_cast<size_t>(rows * shape.q_dim());
  const auto kv_size = static_cast<size_t>(total * shape.kv_dim());
  testing::Floats q(testing::random_floats(q_size, 51), misalign), out(q_size, misalign);
  testing::Floats keys(testing::random_floats(kv_size, 52), misalign),
      values(testing::random_floats(kv_size, 53), misalign);
  std::vector<float> scores(static_cast<size_t>(shape.heads * total));
  attention(q.data, rows, first_position, keys.data, values.data, shape, out.data, scores.data(),
            pool);

  std::vector<double> qd(q.data, q.data + q_size), kd(keys.data, keys.data + kv_size),
      vd(values.data, values.data + kv_size);
  std::vector<double> expected(q_size);
  attention_ref<double>(qd.data(), rows, first_position, kd.data(), vd.data(), shape,
                        expected.data());
  for (size_t i = 0; i < q_size; ++i)
    ASSERT_NEAR(out.data[i], expected[i], kAttentionTolerance) << "i=" << i;
}

// The F16-cache kernel: equal to the double reference over the widened halves, and exactly
// equal to the F32 kernel run on the same (pre-rounded) values on this target — the
// widening loads are exact and the arithmetic is the same.
void check_attention_f16(const AttentionShape& shape, int64_t rows, int first_position,
                         int misalign, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << "F16 heads=" << shape.heads << " kv_heads=" << shape.kv_heads << " head_dim="
               << shape.head_dim << " rows=" << rows << " first_position=" << first_position
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  const int64_t total = first_position + rows;
  const auto q_size = static_cast<size_t>(rows * shape.q_dim());
  const auto kv_size = static_cast<size_t>(total * shape.kv_dim());
  testing::Floats q(testing::random_floats(q_size, 71), misalign), out(q_size, misalign),
      out_f32(q_size, misalign);
  testing::HalfCache keys(testing::random_floats(kv_size, 72), misalign),
      values(testing::random_floats(kv_size, 73), misalign);
  std::vector<float> scores(static_cast<size_t>(shape.heads * total));
  attention(q.data, rows, first_position, keys.data, values.data, shape, out.data, scores.data(),
            pool);
  testing::Floats keys_f32(keys.widened, misalign), values_f32(values.widened, misalign);
  attention(q.data, rows, first_position, keys_f32.data, values_f32.data, shape, out_f32.data,
            scores.data(), pool);

  std::vector<double> qd(q.data, q.data + q_size), expected(q_size);
  attention_ref<double>(qd.data(), rows, first_position, keys.data, values.data, shape,
                        expected.data());
  for (size_t i = 0; i < q_size; ++i) {
    ASSERT_NEAR(out.data[i], expected[i], kAttentionTolerance) << "i=" << i;
    ASSERT_EQ(out.data[i], out_f32.data[i]) << "i=" << i;
  }
}

TEST(Attention, EveryHeadDimAndTarget) {
  ThreadPool one(1), two(2);
  testing::for_each_target([&] {
    for (int head_dim = 1; head_dim <= testing::kMaxTestLength; ++head_dim) {
      for (int misalign : testing::kMisalignments) {
        check_attention({4, 2, head_dim}, 3, 0, misalign, one);  // GQA prompt
        check_attention({4, 4, head_dim}, 1, 5, misalign, two);  // MHA, one step after a prefix
        check_attention({6, 1, head_dim}, 2, 3, misalign, two);  // MQA
      }
    }
  });
}

TEST(Attention, F16CacheEveryHeadDimAndTarget) {
  ThreadPool one(1), two(2);
  testing::for_each_target([&] {
    for (int head_dim = 1; head_dim <= testing::kMaxTestLength; ++head_dim) {
      for (int misalign : testing::kMisalignments) {
        check_attention_f16({4, 2, head_dim}, 3, 0, misalign, one);  // GQA prompt
        check_attention_f16({4, 4, head_dim}, 1, 5, misalign, two);  // MHA step after a prefix
        check_attention_f16({6, 1, head_dim}, 2, 3, misalign, two);  // MQA
      }
    }
  });
  check_attention_f16({8, 2, 64}, 1, 90, 1, two);
}

TEST(Attention, F16CacheGenericPathIsTheReference) {
  // The generic path runs attention_ref<float, Half>: it must equal the double reference
  // within the same bound, and (the widened halves being exact) the F32 generic path.
  ThreadPool two(2);
  testing::ForceGeneric generic;
  check_attention_f16({4, 2, 16}, 3, 2, 1, two);
}

TEST(Attention, LongerContexts) {
  ThreadPool two(2);
  check_attention({8, 2, 64}, 40, 0, 0, two);
  check_attention({8, 2, 64}, 1, 90, 1, two);
  check_attention({5, 5, 35}, 7, 33, 3, two);  // more heads than threads, odd count
}

TEST(Attention, IsCausal) {
  // Changing keys/values at positions after a row's own must not change that row.
  ThreadPool two(2);
  const AttentionShape shape{2, 1, 8};
  const int rows = 5;
  std::vector<float> q = testing::random_floats(rows * 16, 61),
                     keys = testing::random_floats(rows * 8, 62),
                     values = testing::random_floats(rows * 8, 63), out(rows * 16), out2(rows * 16),
                     scores(2 * rows);
  attention(q.data(), rows, 0, keys.data(), values.data(), shape, out.data(), scores.data(), two);
  for (int i = 3 * 8; i < rows * 8; ++i)
    keys[static_cast<size_t>(i)] += 1.0f, values[static_cast<size_t>(i)] -= 2.0f;
  attention(q.data(), rows, 0, keys.data(), values.data(), shape, out2.data(), scores.data(), two);
  for (int i = 0; i < 3 * 16; ++i)
    EXPECT_EQ(out[static_cast<size_t>(i)], out2[static_cast<size_t>(i)]) << i;
  EXPECT_NE(out[3 * 16], out2[3 * 16]);
  // Row 0 sees only itself: its output is value row 0 exactly (softmax of one score = 1).
  for (int i = 0; i < 8; ++i)
    EXPECT_FLOAT_EQ(out[static_cast<size_t>(i)], values[static_cast<size_t>(i)]);
}

TEST(Attention, GenericPathMatches) {
  ThreadPool two(2);
  testing::ForceGeneric generic;
  check_attention({4, 2, 16}, 3, 2, 1, two);
}

}  // namespace
}  // namespace tulu

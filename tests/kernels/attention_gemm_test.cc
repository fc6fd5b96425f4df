// Prompt attention through sgemm (attention_gemm.h) against the double reference
// attention_ref: every Highway target (the softmax), MHA / GQA / MQA, prompts from an empty
// cache and after a prefix, one to three threads (more heads than threads and fewer). F16
// caches (widened to fp32 scratch): against the reference widening the halves, and bit for
// bit against the F32 kernel on the pre-rounded values.
#include <vector>

#include "attention_kv_test_util.h"
#include "kernel_test_util.h"
#include "kernels/attention_gemm.h"
#include "kernels/attention_ref.h"

namespace tulu {
namespace {

// As attention_test.cc: fp32 dot products of length head_dim (now summed in sgemm's order),
// softmax and a convex combination of O(1) values give ≤ 1e-5 absolute at these sizes.
constexpr double kAttentionTolerance = 1e-5;

void check_attention_gemm(const AttentionShape& shape, int64_t rows, int first_position,
                          int misalign, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << "heads=" << shape.heads << " kv_heads=" << shape.kv_heads << " head_dim="
               << shape.head_dim << " rows=" << rows << " first_position=" << first_position
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  const int64_t total = first_position + rows;
  const auto q_size = static_cast<size_t>(rows * shape.q_dim());
  const auto kv_size = static_cast<size_t>(total * shape.kv_dim());
  testing::Floats q(testing::random_floats(q_size, 61), misalign), out(q_size, misalign);
  testing::Floats keys(testing::random_floats(kv_size, 62), misalign),
      values(testing::random_floats(kv_size, 63), misalign);
  testing::Floats scratch(
      static_cast<size_t>(attention_gemm_scratch_floats(rows, first_position, pool.num_threads())),
      misalign);
  attention_gemm(q.data, rows, first_position, keys.data, values.data, shape, out.data,
                 scratch.data, pool);

  std::vector<double> qd(q.data, q.data + q_size), kd(keys.data, keys.data + kv_size),
      vd(values.data, values.data + kv_size);
  std::vector<double> expected(q_size);
  attention_ref<double>(qd.data(), rows, first_position, kd.data(), vd.data(), shape,
                        expected.data());
  for (size_t i = 0; i < q_size; ++i)
    ASSERT_NEAR(out.data[i], expected[i], kAttentionTolerance) << "i=" << i;
}

void check_attention_gemm_f16(const AttentionShape& shape, int64_t rows, int first_position,
                              int misalign, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << "F16 heads=" << shape.heads << " kv_heads=" << shape.kv_heads << " head_dim="
               << shape.head_dim << " rows=" << rows << " first_position=" << first_position
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  const int64_t total = first_position + rows;
  const auto q_size = static_cast<size_t>(rows * shape.q_dim());
  const auto kv_size = static_cast<size_t>(total * shape.kv_dim());
  testing::Floats q(testing::random_floats(q_size, 81), misalign), out(q_size, misalign),
      out_f32(q_size, misalign);
  testing::HalfCache keys(testing::random_floats(kv_size, 82), misalign),
      values(testing::random_floats(kv_size, 83), misalign);
  // Exactly sized (ASan sees a read or write past the end of the widened range).
  testing::Floats scratch(static_cast<size_t>(attention_gemm_f16_scratch_floats(
                              rows, first_position, shape.kv_dim(), pool.num_threads())),
                          misalign);
  attention_gemm(q.data, rows, first_position, keys.data, values.data, shape, out.data,
                 scratch.data, pool);
  testing::Floats keys_f32(keys.widened, misalign), values_f32(values.widened, misalign);
  attention_gemm(q.data, rows, first_position, keys_f32.data, values_f32.data, shape, out_f32.data,
                 scratch.data, pool);

  std::vector<double> qd(q.data, q.data + q_size), expected(q_size);
  attention_ref<double>(qd.data(), rows, first_position, keys.data, values.data, shape,
                        expected.data());
  for (size_t i = 0; i < q_size; ++i) {
    ASSERT_NEAR(out.data[i], expected[i], kAttentionTolerance) << "i=" << i;
    ASSERT_EQ(out.data[i], out_f32.data[i]) << "i=" << i;
  }
}

TEST(AttentionGemm, F16CacheOnEveryTarget) {
  ThreadPool one(1), two(2), three(3);
  testing::for_each_target([&] {
    for (int misalign : testing::kMisalignments) {
      check_attention_gemm_f16({4, 2, 16}, 5, 0, misalign, one);    // GQA prompt
      check_attention_gemm_f16({4, 4, 8}, 7, 3, misalign, two);     // MHA after a prefix
      check_attention_gemm_f16({6, 1, 35}, 4, 9, misalign, three);  // MQA, odd head_dim
      check_attention_gemm_f16({8, 2, 64}, 33, 0, misalign, two);   // a longer prompt
    }
  });
  testing::ForceGeneric generic;
  check_attention_gemm_f16({4, 2, 16}, 6, 2, 1, two);
}

TEST(AttentionGemm, MatchesReferenceOnEveryTarget) {
  ThreadPool one(1), two(2), three(3);
  testing::for_each_target([&] {
    for (int misalign : testing::kMisalignments) {
      check_attention_gemm({4, 2, 16}, 5, 0, misalign, one);    // GQA prompt
      check_attention_gemm({4, 4, 8}, 7, 3, misalign, two);     // MHA after a prefix
      check_attention_gemm({6, 1, 35}, 4, 9, misalign, three);  // MQA, odd head_dim
      check_attention_gemm({8, 2, 64}, 33, 0, misalign, two);   // a longer prompt
      check_attention_gemm({2, 2, 16}, 6, 1, misalign, three);  // fewer heads than threads
    }
  });
}

TEST(AttentionGemm, OneRowAndGenericPath) {
  ThreadPool two(2);
  check_attention_gemm({4, 2, 16}, 1, 12, 0, two);
  testing::ForceGeneric generic;
  check_attention_gemm({4, 2, 16}, 6, 2, 1, two);
}

}  // namespace
}  // namespace tulu

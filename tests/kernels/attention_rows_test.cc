// attention_rows (one new token per sequence, each with its own cache and position): every
// Highway target and thread counts 1 ..= 6 against attention_ref in double row by row, for
// MHA / GQA / MQA, head_dim over every tail length, rows at different positions (0 included),
// misaligned buffers; the generic path; a position beyond the scratch is an error. F16
// caches: against the reference widening the halves, and bit for bit against the F32
// kernel on the pre-rounded values.
#include <cmath>

#include "attention_kv_test_util.h"
#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/attention_ref.h"
#include "kernels/attention_rows.h"

namespace tulu {
namespace {

// As attention_test.cc: dot products, softmax and the weighted sum of O(1) values at these
// sizes stay within 1e-5 absolute.
constexpr double kAttentionTolerance = 1e-5;

void check_rows(const AttentionShape& shape, const std::vector<int>& positions, int misalign,
                ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << "heads=" << shape.heads << " kv_heads=" << shape.kv_heads
               << " head_dim=" << shape.head_dim << " rows=" << positions.size()
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  const auto q_dim = static_cast<size_t>(shape.q_dim()),
             kv_dim = static_cast<size_t>(shape.kv_dim());
  std::vector<testing::Floats> queries, keys, values, outs;
  int max_position = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    const auto cache = static_cast<size_t>(positions[i] + 1) * kv_dim;
    const auto seed = static_cast<uint32_t>(60 + 4 * i);
    queries.emplace_back(testing::random_floats(q_dim, seed), misalign);
    keys.emplace_back(testing::random_floats(cache, seed + 1), misalign);
    values.emplace_back(testing::random_floats(cache, seed + 2), misalign);
    outs.emplace_back(q_dim, misalign);
    max_position = std::max(max_position, positions[i]);
  }
  std::vector<AttentionRow> rows;
  for (size_t i = 0; i < positions.size(); ++i)
    rows.push_back({queries[i].data, keys[i].data, values[i].data, positions[i], outs[i].data});
  const int64_t stride = max_position + 3;
  std::vector<float> scores(rows.size() * static_cast<size_t>(shape.heads) *
                            static_cast<size_t>(stride));
  attention_rows(rows, shape, scores.data(), stride, pool);

  for (size_t i = 0; i < positions.size(); ++i) {
    std::vector<double> q(queries[i].data, queries[i].data + q_dim),
        k(keys[i].data, keys[i].data + keys[i].size),
        v(values[i].data, values[i].data + values[i].size), expected(q_dim);
    attention_ref<double>(q.data(), 1, positions[i], k.data(), v.data(), shape, expected.data());
    for (size_t j = 0; j < q_dim; ++j)
      ASSERT_NEAR(outs[i].data[j], expected[j], kAttentionTolerance) << "row " << i << " j=" << j;
  }
}

void check_rows_f16(const AttentionShape& shape, const std::vector<int>& positions, int misalign,
                    ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << "F16 heads=" << shape.heads << " kv_heads=" << shape.kv_heads
               << " head_dim=" << shape.head_dim << " rows=" << positions.size()
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  const auto q_dim = static_cast<size_t>(shape.q_dim()),
             kv_dim = static_cast<size_t>(shape.kv_dim());
  std::vector<testing::Floats> queries, outs, outs_f32, keys_f32, values_f32;
  std::vector<testing::HalfCache> keys, values;
  int max_position = 0;
  for (size_t i = 0; i < positions.size(); ++i) {
    const auto cache = static_cast<size_t>(positions[i] + 1) * kv_dim;
    const auto seed = static_cast<uint32_t>(160 + 4 * i);
    queries.emplace_back(testing::random_floats(q_dim, seed), misalign);
    keys.emplace_back(testing::random_floats(cache, seed + 1), misalign);
    values.emplace_back(testing::random_floats(cache, seed + 2), misalign);
    keys_f32.emplace_back(keys.back().widened, misalign);
    values_f32.emplace_back(values.back().widened, misalign);
    outs.emplace_back(q_dim, misalign);
    outs_f32.emplace_back(q_dim, misalign);
    max_position = std::max(max_position, positions[i]);
  }
  std::vector<AttentionRowF16> rows;
  std::vector<AttentionRow> rows_f32;
  for (size_t i = 0; i < positions.size(); ++i) {
    rows.push_back({queries[i].data, keys[i].data, values[i].data, positions[i], outs[i].data});
    rows_f32.push_back(
        {queries[i].data, keys_f32[i].data, values_f32[i].data, positions[i], outs_f32[i].data});
  }
  const int64_t stride = max_position + 3;
  std::vector<float> scores(rows.size() * static_cast<size_t>(shape.heads) *
                            static_cast<size_t>(stride));
  attention_rows(rows, shape, scores.data(), stride, pool);
  attention_rows(rows_f32, shape, scores.data(), stride, pool);

  for (size_t i = 0; i < positions.size(); ++i) {
    std::vector<double> q(queries[i].data, queries[i].data + q_dim), expected(q_dim);
    attention_ref<double>(q.data(), 1, positions[i], keys[i].data, values[i].data, shape,
                          expected.data());
    for (size_t j = 0; j < q_dim; ++j) {
      ASSERT_NEAR(outs[i].data[j], expected[j], kAttentionTolerance) << "row " << i << " j=" << j;
      ASSERT_EQ(outs[i].data[j], outs_f32[i].data[j]) << "row " << i << " j=" << j;
    }
  }
}

TEST(AttentionRows, EveryHeadDimAndTarget) {
  ThreadPool one(1), two(2);
  testing::for_each_target([&] {
    for (int head_dim = 1; head_dim <= testing::kMaxTestLength; ++head_dim) {
      for (int misalign : testing::kMisalignments) {
        check_rows({4, 2, head_dim}, {0, 5, 2}, misalign, one);     // GQA
        check_rows({4, 4, head_dim}, {7}, misalign, two);           // MHA, one row
        check_rows({6, 1, head_dim}, {3, 0, 9, 1}, misalign, two);  // MQA
      }
    }
  });
}

TEST(AttentionRows, F16CacheEveryHeadDimAndTarget) {
  ThreadPool one(1), two(2);
  testing::for_each_target([&] {
    for (int head_dim = 1; head_dim <= testing::kMaxTestLength; ++head_dim) {
      for (int misalign : testing::kMisalignments) {
        check_rows_f16({4, 2, head_dim}, {0, 5, 2}, misalign, one);     // GQA
        check_rows_f16({6, 1, head_dim}, {3, 0, 9, 1}, misalign, two);  // MQA
      }
    }
    check_rows_f16({8, 2, 64}, {90, 0, 17, 40, 3}, 1, two);
  });
}

TEST(AttentionRows, F16CacheGenericPathIsTheReference) {
  ThreadPool two(2);
  testing::ForceGeneric generic;
  check_rows_f16({4, 2, 8}, {6, 0, 3}, 0, two);
}

TEST(AttentionRows, F16PositionOutsideTheScratchIsAnError) {
  ThreadPool one(1);
  const AttentionShape shape{2, 2, 4};
  std::vector<float> q(8), out(8), scores(2 * 4);
  std::vector<Half> k(8 * 5), v(8 * 5);
  const AttentionRowF16 row{q.data(), k.data(), v.data(), 4, out.data()};
  EXPECT_THROW(attention_rows({&row, 1}, shape, scores.data(), 4, one), Error);
}

TEST(AttentionRows, ThreadCountsAndLongerContexts) {
  for (int threads = 1; threads <= 6; ++threads) {
    ThreadPool pool(threads);
    check_rows({8, 2, 64}, {90, 0, 17, 40, 3, 64, 1, 33}, 0, pool);
    check_rows({5, 5, 35}, {33, 12}, 1, pool);
  }
}

TEST(AttentionRows, GenericPathIsTheReference) {
  ThreadPool two(2);
  testing::ForceGeneric generic;
  check_rows({4, 2, 8}, {6, 0, 3}, 0, two);
}

TEST(AttentionRows, PositionOutsideTheScratchIsAnError) {
  ThreadPool one(1);
  const AttentionShape shape{2, 2, 4};
  std::vector<float> q(8), k(8 * 5), v(8 * 5), out(8), scores(2 * 4);
  const AttentionRow row{q.data(), k.data(), v.data(), 4, out.data()};
  EXPECT_THROW(attention_rows({&row, 1}, shape, scores.data(), 4, one), Error);
}

}  // namespace
}  // namespace tulu

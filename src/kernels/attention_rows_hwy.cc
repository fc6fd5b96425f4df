// Highway fast path of attention_rows.h, dispatched at run time; (row, head) pairs split
// over the pool.
#include "kernels/attention_rows.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_rows_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/attention_head_hwy-inl.h"
#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Pairs [pair_begin, pair_end) of the flattened (row, head) index row · heads + head.
template <typename KV>
void AttentionPairs(const AttentionRowOf<KV>* rows, const AttentionShape& shape, float* scores_base,
                    int64_t scores_stride, size_t pair_begin, size_t pair_end) {
  const auto heads = static_cast<size_t>(shape.heads);
  const int group = shape.heads / shape.kv_heads;
  const auto hd = static_cast<size_t>(shape.head_dim);
  const int64_t kv_dim = shape.kv_dim();
  const float scale_divisor = std::sqrt(static_cast<float>(shape.head_dim));
  for (size_t pair = pair_begin; pair < pair_end; ++pair) {
    const AttentionRowOf<KV>& row = rows[pair / heads];
    const auto h = static_cast<int>(pair % heads);
    const int64_t kv_offset = static_cast<int64_t>(h / group) * shape.head_dim;
    AttendHead(row.query + static_cast<size_t>(h) * hd, row.keys + kv_offset,
               row.values + kv_offset, static_cast<int64_t>(row.position) + 1, kv_dim, hd,
               scale_divisor, scores_base + static_cast<int64_t>(pair) * scores_stride,
               row.out + static_cast<size_t>(h) * hd);
  }
}

void AttentionPairsF32(const AttentionRow* rows, const AttentionShape& shape, float* scores_base,
                       int64_t scores_stride, size_t pair_begin, size_t pair_end) {
  AttentionPairs(rows, shape, scores_base, scores_stride, pair_begin, pair_end);
}

void AttentionPairsF16(const AttentionRowF16* rows, const AttentionShape& shape, float* scores_base,
                       int64_t scores_stride, size_t pair_begin, size_t pair_end) {
  AttentionPairs(rows, shape, scores_base, scores_stride, pair_begin, pair_end);
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "core/error.h"
#include "kernels/attention_ref.h"
#include "kernels/dispatch.h"

namespace tulu {

HWY_EXPORT(AttentionPairsF32);
HWY_EXPORT(AttentionPairsF16);

namespace {

// Checks, the generic path, or `pairs` (the dispatched per-target kernel) over the pool.
template <typename KV, typename Pairs>
void run_rows(std::span<const AttentionRowOf<KV>> rows, const AttentionShape& shape, float* scores,
              int64_t scores_stride, ThreadPool& pool, Pairs pairs) {
  for (const AttentionRowOf<KV>& row : rows) {
    TULU_CHECK(row.position >= 0 && row.position < scores_stride, "attention_rows: position ",
               row.position, " outside the score scratch of ", scores_stride, " positions");
  }
  if (force_generic_kernels()) {
    for (const AttentionRowOf<KV>& row : rows)
      attention_ref(row.query, 1, row.position, row.keys, row.values, shape, row.out);
    return;
  }
  const size_t count = rows.size() * static_cast<size_t>(shape.heads);
  pool.parallel_for(count, 1, [&](size_t begin, size_t end) {
    pairs(rows.data(), shape, scores, scores_stride, begin, end);
  });
}

}  // namespace

void attention_rows(std::span<const AttentionRow> rows, const AttentionShape& shape, float* scores,
                    int64_t scores_stride, ThreadPool& pool) {
  run_rows(rows, shape, scores, scores_stride, pool,
           [](const AttentionRow* r, const AttentionShape& s, float* sc, int64_t stride,
              size_t begin, size_t end) {
             HWY_DYNAMIC_DISPATCH(AttentionPairsF32)(r, s, sc, stride, begin, end);
           });
}

void attention_rows(std::span<const AttentionRowF16> rows, const AttentionShape& shape,
                    float* scores, int64_t scores_stride, ThreadPool& pool) {
  run_rows(rows, shape, scores, scores_stride, pool,
           [](const AttentionRowF16* r, const AttentionShape& s, float* sc, int64_t stride,
              size_t begin, size_t end) {
             HWY_DYNAMIC_DISPATCH(AttentionPairsF16)(r, s, sc, stride, begin, end);
           });
}

}  // namespace tulu
#endif  // HWY_ONCE

// Highway fast path of attention_rows.h, dispatched at run time; (row, head) pairs split
// over the pool.
#include "kernels/attention_rows.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_rows_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Pairs [pair_begin, pair_end) of the flattened (row, head) index row · heads + head.
void AttentionPairsImpl(const AttentionRow* rows, const AttentionShape& shape, float* scores_base,
                        int64_t scores_stride, size_t pair_begin, size_t pair_end) {
  const auto heads = static_cast<size_t>(shape.heads);
  const int group = shape.heads / shape.kv_heads;
  const auto hd = static_cast<size_t>(shape.head_dim);
  const int64_t kv_dim = shape.kv_dim();
  const float scale_divisor = std::sqrt(static_cast<float>(shape.head_dim));
  for (size_t pair = pair_begin; pair < pair_end; ++pair) {
    const AttentionRow& row = rows[pair / heads];
    const auto h = static_cast<int>(pair % heads);
    float* scores = scores_base + static_cast<int64_t>(pair) * scores_stride;
    const int64_t kv_offset = static_cast<int64_t>(h / group) * shape.head_dim;
    const float* query = row.query + static_cast<size_t>(h) * hd;
    const int64_t visible = static_cast<int64_t>(row.position) + 1;
    for (int64_t s = 0; s < visible; ++s)
      scores[s] = DotF32(query, row.keys + s * kv_dim + kv_offset, hd) / scale_divisor;
    SoftmaxF32(scores, static_cast<size_t>(visible));
    float* dst = row.out + static_cast<size_t>(h) * hd;
    for (size_t i = 0; i < hd; ++i) dst[i] = 0.0f;
    for (int64_t s = 0; s < visible; ++s)
      AxpyF32(scores[s], row.values + s * kv_dim + kv_offset, dst, hd);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "core/error.h"
#include "kernels/attention_ref.h"
#include "kernels/dispatch.h"

namespace tulu {

HWY_EXPORT(AttentionPairsImpl);

void attention_rows(std::span<const AttentionRow> rows, const AttentionShape& shape, float* scores,
                    int64_t scores_stride, ThreadPool& pool) {
  for (const AttentionRow& row : rows) {
    TULU_CHECK(row.position >= 0 && row.position < scores_stride, "attention_rows: position ",
               row.position, " outside the score scratch of ", scores_stride, " positions");
  }
  if (force_generic_kernels()) {
    for (const AttentionRow& row : rows)
      attention_ref(row.query, 1, row.position, row.keys, row.values, shape, row.out);
    return;
  }
  const size_t pairs = rows.size() * static_cast<size_t>(shape.heads);
  pool.parallel_for(pairs, 1, [&](size_t begin, size_t end) {
    HWY_DYNAMIC_DISPATCH(AttentionPairsImpl)(rows.data(), shape, scores, scores_stride, begin, end);
  });
}

}  // namespace tulu
#endif  // HWY_ONCE

// Highway fast path of attention.h, dispatched at run time; heads split over the pool.
#include "kernels/attention.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/attention_head_hwy-inl.h"
#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Heads [head_begin, head_end) for every row; scores: this head's own scratch row
// (scores_base + h · scores_stride), so that concurrent heads never share memory.
template <typename KV>
void AttentionHeads(const float* q, int64_t rows, int first_position, const KV* keys,
                    const KV* values, const AttentionShape& shape, float* out, float* scores_base,
                    int64_t scores_stride, int head_begin, int head_end) {
  const int group = shape.heads / shape.kv_heads;
  const auto hd = static_cast<size_t>(shape.head_dim);
  const int64_t q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const float scale_divisor = std::sqrt(static_cast<float>(shape.head_dim));
  for (int h = head_begin; h < head_end; ++h) {
    float* scores = scores_base + static_cast<int64_t>(h) * scores_stride;
    const int64_t kv_offset = static_cast<int64_t>(h / group) * shape.head_dim;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t head_offset = r * q_dim + static_cast<int64_t>(h) * shape.head_dim;
      AttendHead(q + head_offset, keys + kv_offset, values + kv_offset, first_position + r + 1,
                 kv_dim, hd, scale_divisor, scores, out + head_offset);
    }
  }
}

void AttentionHeadsF32(const float* q, int64_t rows, int first_position, const float* keys,
                       const float* values, const AttentionShape& shape, float* out,
                       float* scores_base, int64_t scores_stride, int head_begin, int head_end) {
  AttentionHeads(q, rows, first_position, keys, values, shape, out, scores_base, scores_stride,
                 head_begin, head_end);
}

void AttentionHeadsF16(const float* q, int64_t rows, int first_position, const Half* keys,
                       const Half* values, const AttentionShape& shape, float* out,
                       float* scores_base, int64_t scores_stride, int head_begin, int head_end) {
  AttentionHeads(q, rows, first_position, keys, values, shape, out, scores_base, scores_stride,
                 head_begin, head_end);
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "kernels/attention_ref.h"
#include "kernels/dispatch.h"

namespace tulu {

HWY_EXPORT(AttentionHeadsF32);
HWY_EXPORT(AttentionHeadsF16);

namespace {

// Both cache types: heads split over the pool, each task running `heads` (the dispatched
// AttentionHeadsF32 / AttentionHeadsF16) over its range; the scalar reference when forced.
template <typename KV, typename HeadsFn>
void attention_over_heads(const float* q, int64_t rows, int first_position, const KV* keys,
                          const KV* values, const AttentionShape& shape, float* out, float* scores,
                          ThreadPool& pool, HeadsFn heads) {
  if (rows <= 0) return;
  if (force_generic_kernels())
    return attention_ref(q, rows, first_position, keys, values, shape, out);
  const int64_t scores_stride = first_position + rows;
  pool.parallel_for(static_cast<size_t>(shape.heads), 1, [&](size_t begin, size_t end) {
    heads(q, rows, first_position, keys, values, shape, out, scores, scores_stride,
          static_cast<int>(begin), static_cast<int>(end));
  });
}

}  // namespace

void attention(const float* q, int64_t rows, int first_position, const float* keys,
               const float* values, const AttentionShape& shape, float* out, float* scores,
               ThreadPool& pool) {
  attention_over_heads(q, rows, first_position, keys, values, shape, out, scores, pool,
                       HWY_DYNAMIC_DISPATCH(AttentionHeadsF32));
}

void attention(const float* q, int64_t rows, int first_position, const Half* keys,
               const Half* values, const AttentionShape& shape, float* out, float* scores,
               ThreadPool& pool) {
  attention_over_heads(q, rows, first_position, keys, values, shape, out, scores, pool,
                       HWY_DYNAMIC_DISPATCH(AttentionHeadsF16));
}

}  // namespace tulu
#endif  // HWY_ONCE

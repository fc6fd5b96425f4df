// attention_gemm.h: GEMMs through OpenBLAS (single-threaded calls, see matmul.cc), the
// causal scale-and-softmax of the score rows with Highway (runtime dispatch).
#include "kernels/attention_gemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_gemm.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// Row r of scores [rows, stride]: divide the visible columns 0 ..= first_position + r by
// sqrt(head_dim) (as attention() does: a division, not a multiplication by the inverse),
// softmax them, zero the masked rest.
void CausalSoftmaxRowsImpl(float* scores, int64_t rows, int64_t stride, int first_position,
                           int head_dim) {
  const float scale_divisor = std::sqrt(static_cast<float>(head_dim));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = scores + r * stride;
    const int64_t visible = first_position + r + 1;
    for (int64_t s = 0; s < visible; ++s) row[s] /= scale_divisor;
    SoftmaxF32(row, static_cast<size_t>(visible));
    for (int64_t s = visible; s < stride; ++s) row[s] = 0.0f;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "kernels/attention_ref.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

namespace tulu {

HWY_EXPORT(CausalSoftmaxRowsImpl);

int64_t attention_gemm_scratch_floats(int64_t rows, int64_t first_position, int threads) {
  return static_cast<int64_t>(std::max(1, threads)) * rows * (first_position + rows);
}

int64_t attention_gemm_f16_scratch_floats(int64_t rows, int64_t first_position, int64_t kv_dim,
                                          int threads) {
  return attention_gemm_scratch_floats(rows, first_position, threads) +
         2 * (first_position + rows) * kv_dim;
}

void attention_gemm(const float* q, int64_t rows, int first_position, const float* keys,
                    const float* values, const AttentionShape& shape, float* out, float* scratch,
                    ThreadPool& pool) {
  if (rows <= 0) return;
  if (force_generic_kernels())
    return attention_ref(q, rows, first_position, keys, values, shape, out);
  const int64_t total = first_position + rows;
  const int group = shape.heads / shape.kv_heads;
  const auto hd = static_cast<blasint>(shape.head_dim);
  const auto q_dim = static_cast<blasint>(shape.q_dim());
  const auto kv_dim = static_cast<blasint>(shape.kv_dim());
  // One pool does the parallel work; OpenBLAS stays on the calling thread (see matmul.cc).
  static std::once_flag blas_single_threaded;
  std::call_once(blas_single_threaded, [] { openblas_set_num_threads(1); });
  const int slots = std::min(pool.num_threads(), shape.heads);
  pool.parallel_for(static_cast<size_t>(slots), 1, [&](size_t begin, size_t end) {
    for (size_t slot = begin; slot < end; ++slot) {
      float* scores = scratch + static_cast<int64_t>(slot) * rows * total;
      for (int h = static_cast<int>(slot); h < shape.heads; h += slots) {
        const float* q_h = q + static_cast<int64_t>(h) * shape.head_dim;
        const int64_t kv_offset = static_cast<int64_t>(h / group) * shape.head_dim;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                    static_cast<blasint>(total), hd, 1.0f, q_h, q_dim, keys + kv_offset, kv_dim,
                    0.0f, scores, static_cast<blasint>(total));
        HWY_DYNAMIC_DISPATCH(CausalSoftmaxRowsImpl)
        (scores, rows, total, first_position, shape.head_dim);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows), hd,
                    static_cast<blasint>(total), 1.0f, scores, static_cast<blasint>(total),
                    values + kv_offset, kv_dim, 0.0f,
                    out + static_cast<int64_t>(h) * shape.head_dim, q_dim);
      }
    }
  });
}

void attention_gemm(const float* q, int64_t rows, int first_position, const Half* keys,
                    const Half* values, const AttentionShape& shape, float* out, float* scratch,
                    ThreadPool& pool) {
  if (rows <= 0) return;
  if (force_generic_kernels())
    return attention_ref(q, rows, first_position, keys, values, shape, out);
  const int64_t total = first_position + rows;
  const int64_t kv_dim = shape.kv_dim();
  float* wide_keys =
      scratch + attention_gemm_scratch_floats(rows, first_position, pool.num_threads());
  float* wide_values = wide_keys + total * kv_dim;
  // Cache rows split over the pool; keys and values of a row go to the same task.
  pool.parallel_for(static_cast<size_t>(total), 16, [&](size_t begin, size_t end) {
    const auto offset = static_cast<int64_t>(begin) * kv_dim;
    const auto count = static_cast<size_t>(static_cast<int64_t>(end - begin) * kv_dim);
    convert_to_f32(keys + offset, DType::F16, count, wide_keys + offset);
    convert_to_f32(values + offset, DType::F16, count, wide_values + offset);
  });
  attention_gemm(q, rows, first_position, wide_keys, wide_values, shape, out, scratch, pool);
}

}  // namespace tulu
#endif  // HWY_ONCE

// attention_train.h through per-head GEMMs on the causal part only: the T query rows are
// cut into blocks of kBlockRows, and block [r0, r1) only multiplies against key/value rows
// [0, r1) (≈ 56 % of the full T×T work at T = 512 instead of 100 %). GEMMs are
// single-threaded OpenBLAS calls inside our pool's tasks (see matmul.cc); the row-wise
// softmax / dS steps are Highway (runtime dispatch).
//   forward:  tasks are (head, row block) pairs, all independent;
//   backward: tasks are query heads; a head's dK/dV go straight into dk/dv when each kv
//             head has one query head, else into that head's own partial [T, head_dim]
//             pair in scratch, summed per kv head in head order afterwards. Either way the
//             result does not depend on the thread count.
#include "kernels/attention_train.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention_train.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// scores [rows, cols] (already scaled), row i holding query position first_row + i:
// softmax over the visible columns 0 ..= first_row + i, masked columns set to 0, and
// lse[i] = max + log Σ exp(score − max).
void CausalSoftmaxLseImpl(float* scores, int64_t rows, int64_t cols, int64_t first_row,
                          float* lse) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = scores + r * cols;
    const auto visible = static_cast<size_t>(first_row + r + 1);
    size_t i = 0;
    float max_value = row[0];
    if (visible >= lanes) {
      auto vmax = hn::LoadU(d, row);
      for (i = lanes; i + lanes <= visible; i += lanes) vmax = hn::Max(vmax, hn::LoadU(d, row + i));
      max_value = hn::GetLane(hn::MaxOfLanes(d, vmax));
    }
    for (; i < visible; ++i) max_value = row[i] > max_value ? row[i] : max_value;
    const auto vmax = hn::Set(d, max_value);
    auto vsum = hn::Zero(d);
    for (i = 0; i + lanes <= visible; i += lanes) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, row + i), vmax));
      hn::StoreU(e, d, row + i);
      vsum = hn::Add(vsum, e);
    }
    float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
    for (; i < visible; ++i) {
      row[i] = std::exp(row[i] - max_value);
      sum += row[i];
    }
    lse[r] = max_value + std::log(sum);
    const auto vinv = hn::Set(d, 1.0f / sum);
    for (i = 0; i + lanes <= visible; i += lanes)
      hn::StoreU(hn::Mul(hn::LoadU(d, row + i), vinv), d, row + i);
    for (; i < visible; ++i) row[i] *= 1.0f / sum;
    for (; i < static_cast<size_t>(cols); ++i) row[i] = 0.0f;
  }
}

// In: scores [rows, cols] (scaled S), dp [rows, cols] (dO·Vᵀ). Out: scores ← P = exp(S − lse)
// and dp ← dS = P ∘ (dP − D) on the visible columns, both 0 on the masked ones.
// D_i = dout_i · out_i (head_dim long; row i at dout + i·ld, out + i·ld).
void SoftmaxGradImpl(float* scores, float* dp, int64_t rows, int64_t cols, int64_t first_row,
                     const float* lse, const float* dout, const float* out, int64_t ld,
                     int head_dim) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  for (int64_t r = 0; r < rows; ++r) {
    float* p = scores + r * cols;
    float* g = dp + r * cols;
    const auto visible = static_cast<size_t>(first_row + r + 1);
    const float delta = DotF32(dout + r * ld, out + r * ld, static_cast<size_t>(head_dim));
    const auto vlse = hn::Set(d, lse[r]), vdelta = hn::Set(d, delta);
    size_t i = 0;
    for (; i + lanes <= visible; i += lanes) {
      const auto prob = hn::Exp(d, hn::Sub(hn::LoadU(d, p + i), vlse));
      hn::StoreU(prob, d, p + i);
      hn::StoreU(hn::Mul(prob, hn::Sub(hn::LoadU(d, g + i), vdelta)), d, g + i);
    }
    for (; i < visible; ++i) {
      p[i] = std::exp(p[i] - lse[r]);
      g[i] = p[i] * (g[i] - delta);
    }
    for (; i < static_cast<size_t>(cols); ++i) p[i] = g[i] = 0.0f;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/error.h"
#include "kernels/attention_train_ref.h"
#include "kernels/dispatch.h"

namespace tulu {

HWY_EXPORT(CausalSoftmaxLseImpl);
HWY_EXPORT(SoftmaxGradImpl);

namespace {

// Query rows per block: small enough that the causal triangle is tightly covered, large
// enough for efficient GEMMs.
constexpr int64_t kBlockRows = 64;

void set_blas_single_threaded() {  // see matmul.cc
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

blasint blas_int(int64_t v) { return static_cast<blasint>(v); }

void check_shape(const AttentionShape& shape) {
  TULU_CHECK(shape.heads > 0 && shape.kv_heads > 0 && shape.head_dim > 0 &&
                 shape.heads % shape.kv_heads == 0,
             "attention_train: bad shape heads=", shape.heads, " kv_heads=", shape.kv_heads,
             " head_dim=", shape.head_dim);
}

int64_t block_rows(int64_t seq_len) { return std::min(kBlockRows, seq_len); }

// Block j of n in an order that pairs cheap and expensive blocks (0, n−1, 1, n−2, ...), so
// that round-robin dealing gives every thread a similar share of the triangle.
int64_t zigzag_block(int64_t j, int64_t n) { return j % 2 == 0 ? j / 2 : n - 1 - j / 2; }

// gemm C[m, n] = alpha · op(A) · op(B) + beta · C, row-major.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, blas_int(m), blas_int(n), blas_int(k), alpha, a,
              blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}

}  // namespace

int64_t attention_train_scratch_floats(int64_t seq_len, const AttentionShape& shape, int threads) {
  const int64_t per_thread = 2 * block_rows(seq_len) * seq_len;  // P and dP blocks
  const int group = shape.kv_heads > 0 ? shape.heads / shape.kv_heads : 1;
  const int64_t partials =
      group > 1 ? static_cast<int64_t>(shape.heads) * 2 * seq_len * shape.head_dim : 0;
  return static_cast<int64_t>(std::max(1, threads)) * per_thread + partials;
}

void attention_train_forward(const float* q, const float* k, const float* v, int64_t seq_len,
                             const AttentionShape& shape, float* out, float* lse, float* scratch,
                             ThreadPool& pool) {
  check_shape(shape);
  if (seq_len <= 0) return;
  if (force_generic_kernels())
    return attention_train_forward_ref(q, k, v, seq_len, shape, out, lse);
  set_blas_single_threaded();
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const int64_t block = block_rows(seq_len), blocks = (seq_len + block - 1) / block;
  const int64_t items = shape.heads * blocks;
  const auto slots = std::min<int64_t>(pool.num_threads(), items);
  pool.parallel_for(static_cast<size_t>(slots), 1, [&](size_t begin, size_t end) {
    for (auto slot = static_cast<int64_t>(begin); slot < static_cast<int64_t>(end); ++slot) {
      float* scores = scratch + slot * 2 * block * seq_len;
      for (int64_t item = slot; item < items; item += slots) {
        const int64_t h = item / blocks, b = zigzag_block(item % blocks, blocks);
        const int64_t r0 = b * block, r1 = std::min(seq_len, r0 + block), rows = r1 - r0;
        const float* k_g = k + (h / group) * hd;
        const float* v_g = v + (h / group) * hd;
        gemm(false, true, rows, r1, hd, scale, q + r0 * q_dim + h * hd, q_dim, k_g, kv_dim, 0.0f,
             scores, r1);
        HWY_DYNAMIC_DISPATCH(CausalSoftmaxLseImpl)(scores, rows, r1, r0, lse + h * seq_len + r0);
        gemm(false, false, rows, hd, r1, 1.0f, scores, r1, v_g, kv_dim, 0.0f,
             out + r0 * q_dim + h * hd, q_dim);
      }
    }
  });
}

void attention_train_backward(const float* q, const float* k, const float* v, const float* out,
                              const float* lse, const float* dout, int64_t seq_len,
                              const AttentionShape& shape, float* dq, float* dk, float* dv,
                              float* scratch, ThreadPool& pool) {
  check_shape(shape);
  if (seq_len <= 0) return;
  if (force_generic_kernels())
    return attention_train_backward_ref(q, k, v, out, lse, dout, seq_len, shape, dq, dk, dv);
  set_blas_single_threaded();
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const int64_t block = block_rows(seq_len), blocks = (seq_len + block - 1) / block;
  const int threads = pool.num_threads();
  float* partials = scratch + static_cast<int64_t>(threads) * 2 * block * seq_len;
  const auto slots = std::min<int64_t>(threads, shape.heads);
  pool.parallel_for(static_cast<size_t>(slots), 1, [&](size_t begin, size_t end) {
    for (auto slot = static_cast<int64_t>(begin); slot < static_cast<int64_t>(end); ++slot) {
      float* probs = scratch + slot * 2 * block * seq_len;
      float* dprobs = probs + block * seq_len;
      for (int64_t h = slot; h < shape.heads; h += slots) {
        const int64_t kv_offset = (h / group) * hd;
        const float* q_h = q + h * hd;
        const float* dout_h = dout + h * hd;
        float *dk_h, *dv_h;
        int64_t ld;  // row stride of dk_h / dv_h
        if (group == 1) {
          dk_h = dk + kv_offset, dv_h = dv + kv_offset, ld = kv_dim;
        } else {
          dk_h = partials + h * 2 * seq_len * hd, dv_h = dk_h + seq_len * hd, ld = hd;
        }
        for (int64_t t = 0; t < seq_len; ++t) {
          std::fill(dk_h + t * ld, dk_h + t * ld + hd, 0.0f);
          std::fill(dv_h + t * ld, dv_h + t * ld + hd, 0.0f);
        }
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t r0 = b * block, r1 = std::min(seq_len, r0 + block), rows = r1 - r0;
          const float* q_blk = q_h + r0 * q_dim;
          const float* dout_blk = dout_h + r0 * q_dim;
          // S (scaled) and dP = dO·Vᵀ over the visible key columns [0, r1).
          gemm(false, true, rows, r1, hd, scale, q_blk, q_dim, k + kv_offset, kv_dim, 0.0f, probs,
               r1);
          gemm(false, true, rows, r1, hd, 1.0f, dout_blk, q_dim, v + kv_offset, kv_dim, 0.0f,
               dprobs, r1);
          HWY_DYNAMIC_DISPATCH(SoftmaxGradImpl)
          (probs, dprobs, rows, r1, r0, lse + h * seq_len + r0, dout_blk, out + r0 * q_dim + h * hd,
           q_dim, shape.head_dim);
          // dV[0:r1] += Pᵀ·dO;  dQ = scale·dS·K;  dK[0:r1] += scale·dSᵀ·Q.
          gemm(true, false, r1, hd, rows, 1.0f, probs, r1, dout_blk, q_dim, 1.0f, dv_h, ld);
          gemm(false, false, rows, hd, r1, scale, dprobs, r1, k + kv_offset, kv_dim, 0.0f,
               dq + r0 * q_dim + h * hd, q_dim);
          gemm(true, false, r1, hd, rows, scale, dprobs, r1, q_blk, q_dim, 1.0f, dk_h, ld);
        }
      }
    }
  });
  if (group == 1) return;
  // dk/dv row t, kv head g = Σ over its query heads (in head order) of their partials.
  pool.parallel_for(static_cast<size_t>(seq_len), 16, [&](size_t begin, size_t end) {
    for (auto t = static_cast<int64_t>(begin); t < static_cast<int64_t>(end); ++t) {
      for (int g = 0; g < shape.kv_heads; ++g) {
        float* dk_row = dk + t * kv_dim + g * hd;
        float* dv_row = dv + t * kv_dim + g * hd;
        for (int64_t h = static_cast<int64_t>(g) * group; h < (g + 1) * group; ++h) {
          const float* pk = partials + h * 2 * seq_len * hd + t * hd;
          const float* pv = pk + seq_len * hd;
          for (int64_t j = 0; j < hd; ++j) {
            dk_row[j] = (h == g * group ? 0.0f : dk_row[j]) + pk[j];
            dv_row[j] = (h == g * group ? 0.0f : dv_row[j]) + pv[j];
          }
        }
      }
    }
  });
}

}  // namespace tulu
#endif  // HWY_ONCE

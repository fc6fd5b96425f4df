// attention_train.h through per-head GEMMs on the causal part only: the T query rows are
// cut into blocks of kBlockRows, and block [r0, r1) only multiplies against key/value rows
// [0, r1) (≈ 56 % of the full T×T work at T = 512 instead of 100 %). GEMMs are
// single-threaded OpenBLAS calls inside our pool's tasks (see matmul.cc); the row-wise
// softmax / dS steps are Highway (runtime dispatch). Work units, dealt dynamically to the
// pool's threads (most expensive first):
//   forward:  (sequence, head, row block), all independent;
//   backward: (sequence, query head); its dK/dV go straight into dk/dv when each kv head
//             has one query head, else into the unit's own [length, head_dim] partials in
//             scratch, summed per kv head in head order afterwards.
// No unit's arithmetic depends on which thread runs it, so results are the same bits for
// every thread count, and a packed call gives the bits of one call per sequence.
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
#include <atomic>
#include <cmath>
#include <mutex>
#include <vector>

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

blasint blas_int(int64_t v) {
  return static_cast<blasint>(v);
}

void check_shape(const AttentionShape& shape) {
  TULU_CHECK(shape.heads > 0 && shape.kv_heads > 0 && shape.head_dim > 0 &&
                 shape.heads % shape.kv_heads == 0,
             "attention_train: bad shape heads=", shape.heads, " kv_heads=", shape.kv_heads,
             " head_dim=", shape.head_dim);
}

void check_starts(std::span<const int64_t> starts) {
  TULU_CHECK(!starts.empty() && starts[0] >= 0,
             "attention_train: sequence starts must begin at a "
             "row ≥ 0 (",
             starts.size(), " given)");
  for (size_t s = 1; s < starts.size(); ++s) {
    TULU_CHECK(starts[s] >= starts[s - 1], "attention_train: sequence start ", s, " (", starts[s],
               ") is before the previous one (", starts[s - 1], ")");
  }
}

int64_t longest(std::span<const int64_t> starts) {
  int64_t result = 0;
  for (size_t s = 1; s < starts.size(); ++s) result = std::max(result, starts[s] - starts[s - 1]);
  return result;
}

int64_t block_rows(int64_t seq_len) {
  return std::min(kBlockRows, seq_len);
}

// C[m, n] = alpha · op(A) · op(B) + beta · C, row-major, on the calling thread.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, blas_int(m), blas_int(n), blas_int(k), alpha, a,
              blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}

// A unit of work: (sequence, query head) and, for the forward, one row block of it. cost
// orders the units, most expensive first, for the dynamic dealing below.
struct WorkUnit {
  int64_t first = 0, length = 0;  // the sequence's rows in the packed batch
  int64_t head = 0;
  int64_t r0 = 0, r1 = 0;  // forward: query rows [r0, r1) of the sequence
  int64_t cost = 0;
};

// Runs unit(slot, u) for every unit over the pool: each of the pool's threads (its slot
// index selects its scratch) takes the next unit from a shared counter, so long sequences'
// units go first and the rest fill in. Which thread runs a unit never changes its result.
template <typename Fn>
void run_units(std::vector<WorkUnit>& units, ThreadPool& pool, const Fn& unit) {
  std::stable_sort(units.begin(), units.end(),
                   [](const WorkUnit& a, const WorkUnit& b) { return a.cost > b.cost; });
  std::atomic<size_t> next{0};
  const auto slots = std::min<size_t>(static_cast<size_t>(pool.num_threads()), units.size());
  pool.parallel_for(slots, 1, [&](size_t begin, size_t end) {
    for (size_t slot = begin; slot < end; ++slot) {
      for (size_t u = next.fetch_add(1); u < units.size(); u = next.fetch_add(1))
        unit(slot, units[u]);
    }
  });
}

// Forward of one (sequence, head, row block): S = scale·Q Kᵀ over key rows [0, r1), causal
// softmax with lse, O = P V.
void forward_block(const float* q, const float* k, const float* v, const AttentionShape& shape,
                   const WorkUnit& unit, float* out, float* lse, float* scores) {
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const int64_t h = unit.head, r0 = unit.r0, r1 = unit.r1, rows = r1 - r0;
  const float* k_g = k + unit.first * kv_dim + (h / group) * hd;
  const float* v_g = v + unit.first * kv_dim + (h / group) * hd;
  gemm(false, true, rows, r1, hd, scale, q + (unit.first + r0) * q_dim + h * hd, q_dim, k_g, kv_dim,
       0.0f, scores, r1);
  HWY_DYNAMIC_DISPATCH(CausalSoftmaxLseImpl)
  (scores, rows, r1, r0, lse + unit.first * shape.heads + h * unit.length + r0);
  gemm(false, false, rows, hd, r1, 1.0f, scores, r1, v_g, kv_dim, 0.0f,
       out + (unit.first + r0) * q_dim + h * hd, q_dim);
}

// Backward of one (sequence, head): dQ rows written; dK/dV of the head's kv rows written to
// dk_h/dv_h (row stride ld), which are zeroed first.
void backward_head(const float* q, const float* k, const float* v, const float* out,
                   const float* lse, const float* dout, const AttentionShape& shape,
                   const WorkUnit& unit, float* dq, float* dk_h, float* dv_h, int64_t ld,
                   float* probs, float* dprobs) {
  const int group = shape.heads / shape.kv_heads;
  const int64_t hd = shape.head_dim, q_dim = shape.q_dim(), kv_dim = shape.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const int64_t h = unit.head, seq_len = unit.length;
  const int64_t row_offset = unit.first * q_dim + h * hd;  // element (0, head h) of q-like rows
  const float* k_g = k + unit.first * kv_dim + (h / group) * hd;
  const float* v_g = v + unit.first * kv_dim + (h / group) * hd;
  const float* lse_h = lse + unit.first * shape.heads + h * seq_len;
  for (int64_t t = 0; t < seq_len; ++t) {
    std::fill(dk_h + t * ld, dk_h + t * ld + hd, 0.0f);
    std::fill(dv_h + t * ld, dv_h + t * ld + hd, 0.0f);
  }
  const int64_t block = block_rows(seq_len);
  for (int64_t r0 = 0; r0 < seq_len; r0 += block) {
    const int64_t r1 = std::min(seq_len, r0 + block), rows = r1 - r0;
    const float* q_blk = q + row_offset + r0 * q_dim;
    const float* dout_blk = dout + row_offset + r0 * q_dim;
    // S (scaled) and dP = dO·Vᵀ over the visible key rows [0, r1).
    gemm(false, true, rows, r1, hd, scale, q_blk, q_dim, k_g, kv_dim, 0.0f, probs, r1);
    gemm(false, true, rows, r1, hd, 1.0f, dout_blk, q_dim, v_g, kv_dim, 0.0f, dprobs, r1);
    HWY_DYNAMIC_DISPATCH(SoftmaxGradImpl)
    (probs, dprobs, rows, r1, r0, lse_h + r0, dout_blk, out + row_offset + r0 * q_dim, q_dim,
     shape.head_dim);
    // dV[0:r1] += Pᵀ·dO;  dQ = scale·dS·K;  dK[0:r1] += scale·dSᵀ·Q.
    gemm(true, false, r1, hd, rows, 1.0f, probs, r1, dout_blk, q_dim, 1.0f, dv_h, ld);
    gemm(false, false, rows, hd, r1, scale, dprobs, r1, k_g, kv_dim, 0.0f,
         dq + row_offset + r0 * q_dim, q_dim);
    gemm(true, false, r1, hd, rows, scale, dprobs, r1, q_blk, q_dim, 1.0f, dk_h, ld);
  }
}

int64_t partial_floats(std::span<const int64_t> starts, const AttentionShape& shape) {
  const int group = shape.kv_heads > 0 ? shape.heads / shape.kv_heads : 1;
  if (group <= 1) return 0;
  return static_cast<int64_t>(shape.heads) * 2 * (starts.back() - starts.front()) * shape.head_dim;
}

}  // namespace

int64_t attention_train_packed_scratch_floats(std::span<const int64_t> starts,
                                              const AttentionShape& shape, int threads) {
  if (starts.empty()) return 0;
  const int64_t max_len = longest(starts);
  return static_cast<int64_t>(std::max(1, threads)) * 2 * block_rows(max_len) * max_len +
         partial_floats(starts, shape);
}

int64_t attention_train_scratch_floats(int64_t seq_len, const AttentionShape& shape, int threads) {
  const int64_t starts[] = {0, std::max<int64_t>(seq_len, 0)};
  return attention_train_packed_scratch_floats(starts, shape, threads);
}

void attention_train_forward_packed(const float* q, const float* k, const float* v,
                                    std::span<const int64_t> starts, const AttentionShape& shape,
                                    float* out, float* lse, float* scratch, ThreadPool& pool) {
  check_shape(shape);
  check_starts(starts);
  const int64_t max_len = longest(starts);
  if (max_len == 0) return;
  if (force_generic_kernels()) {
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      const int64_t first = starts[s];
      attention_train_forward_ref(q + first * shape.q_dim(), k + first * shape.kv_dim(),
                                  v + first * shape.kv_dim(), starts[s + 1] - first, shape,
                                  out + first * shape.q_dim(), lse + first * shape.heads);
    }
    return;
  }
  set_blas_single_threaded();
  std::vector<WorkUnit> units;
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    const int64_t first = starts[s], length = starts[s + 1] - first;
    const int64_t block = block_rows(length);
    for (int64_t h = 0; h < shape.heads; ++h) {
      for (int64_t r0 = 0; r0 < length; r0 += block) {
        const int64_t r1 = std::min(length, r0 + block);
        units.push_back({first, length, h, r0, r1, (r1 - r0) * r1});
      }
    }
  }
  const int64_t scores_floats = 2 * block_rows(max_len) * max_len;
  run_units(units, pool, [&](size_t slot, const WorkUnit& unit) {
    forward_block(q, k, v, shape, unit, out, lse,
                  scratch + static_cast<int64_t>(slot) * scores_floats);
  });
}

void attention_train_backward_packed(const float* q, const float* k, const float* v,
                                     const float* out, const float* lse, const float* dout,
                                     std::span<const int64_t> starts, const AttentionShape& shape,
                                     float* dq, float* dk, float* dv, float* scratch,
                                     ThreadPool& pool) {
  check_shape(shape);
  check_starts(starts);
  const int64_t max_len = longest(starts);
  if (max_len == 0) return;
  const int64_t q_dim = shape.q_dim(), kv_dim = shape.kv_dim(), hd = shape.head_dim;
  if (force_generic_kernels()) {
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      const int64_t first = starts[s];
      attention_train_backward_ref(q + first * q_dim, k + first * kv_dim, v + first * kv_dim,
                                   out + first * q_dim, lse + first * shape.heads,
                                   dout + first * q_dim, starts[s + 1] - first, shape,
                                   dq + first * q_dim, dk + first * kv_dim, dv + first * kv_dim);
    }
    return;
  }
  set_blas_single_threaded();
  const int group = shape.heads / shape.kv_heads;
  const int64_t block_floats = block_rows(max_len) * max_len;
  // With GQA, each (sequence, head) pair's dK/dV go to its own [length, head_dim] pair of
  // partials (at 2·head_dim·(first·heads + head·length)), summed per kv head afterwards.
  float* partials = scratch + static_cast<int64_t>(pool.num_threads()) * 2 * block_floats;
  const int64_t base = starts.front();
  std::vector<WorkUnit> units;
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    const int64_t first = starts[s], length = starts[s + 1] - first;
    if (length == 0) continue;
    for (int64_t h = 0; h < shape.heads; ++h)
      units.push_back({first, length, h, 0, length, length * length});
  }
  run_units(units, pool, [&](size_t slot, const WorkUnit& unit) {
    float* probs = scratch + static_cast<int64_t>(slot) * 2 * block_floats;
    float *dk_h, *dv_h;
    int64_t ld;
    if (group == 1) {
      dk_h = dk + unit.first * kv_dim + unit.head * hd;
      dv_h = dv + unit.first * kv_dim + unit.head * hd;
      ld = kv_dim;
    } else {
      dk_h = partials + 2 * hd * ((unit.first - base) * shape.heads + unit.head * unit.length);
      dv_h = dk_h + unit.length * hd;
      ld = hd;
    }
    backward_head(q, k, v, out, lse, dout, shape, unit, dq, dk_h, dv_h, ld, probs,
                  probs + block_floats);
  });
  if (group == 1) return;
  // dk/dv row t, kv head g = Σ over its query heads, in head order, of their partials.
  const int64_t total = starts.back() - base;
  pool.parallel_for(static_cast<size_t>(total), 16, [&](size_t begin, size_t end) {
    for (auto row = static_cast<int64_t>(begin); row < static_cast<int64_t>(end); ++row) {
      const int64_t t = base + row;  // packed row; find its sequence
      const auto next = std::upper_bound(starts.begin(), starts.end(), t);
      const int64_t first = *(next - 1), length = *next - first, at = t - first;
      for (int g = 0; g < shape.kv_heads; ++g) {
        float* dk_row = dk + t * kv_dim + g * hd;
        float* dv_row = dv + t * kv_dim + g * hd;
        std::fill(dk_row, dk_row + hd, 0.0f);
        std::fill(dv_row, dv_row + hd, 0.0f);
        for (int64_t h = static_cast<int64_t>(g) * group; h < (g + 1) * group; ++h) {
          const float* pk =
              partials + 2 * hd * ((first - base) * shape.heads + h * length) + at * hd;
          const float* pv = pk + length * hd;
          for (int64_t j = 0; j < hd; ++j) {
            dk_row[j] += pk[j];
            dv_row[j] += pv[j];
          }
        }
      }
    }
  });
}

void attention_train_forward(const float* q, const float* k, const float* v, int64_t seq_len,
                             const AttentionShape& shape, float* out, float* lse, float* scratch,
                             ThreadPool& pool) {
  const int64_t starts[] = {0, std::max<int64_t>(seq_len, 0)};
  attention_train_forward_packed(q, k, v, starts, shape, out, lse, scratch, pool);
}

void attention_train_backward(const float* q, const float* k, const float* v, const float* out,
                              const float* lse, const float* dout, int64_t seq_len,
                              const AttentionShape& shape, float* dq, float* dk, float* dv,
                              float* scratch, ThreadPool& pool) {
  const int64_t starts[] = {0, std::max<int64_t>(seq_len, 0)};
  attention_train_backward_packed(q, k, v, out, lse, dout, starts, shape, dq, dk, dv, scratch,
                                  pool);
}

}  // namespace tulu
#endif  // HWY_ONCE

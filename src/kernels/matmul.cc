// Orchestration of matmul.h: path choice, threading, BLAS calls, BF16/F16 widening blocks.
#include "kernels/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/matmul_ref.h"
#include "kernels/matvec_multi.h"
#include "kernels/packed_gemm.h"
#include "kernels/quant_matmul.h"

namespace tulu {

namespace {

// Output rows per thread-pool chunk: enough work per task to amortise the hand-off.
constexpr size_t kMinRowsPerTask = 16;

// OpenBLAS starts its own threads; we keep it on the calling thread and parallelise with
// our pool instead (one pool, sized by -t, for every kernel; no oversubscription when
// several of our workers call sgemm at once).
void set_blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// y[:, begin:end] = x · W[begin:end, :]ᵀ for fp32 W rows (ldw = in), ldc = out.
void sgemm_columns(const float* x, int64_t rows, const float* w_rows, int64_t count, int64_t in,
                   float* y, int64_t out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
              static_cast<blasint>(count), static_cast<blasint>(in), 1.0f, x,
              static_cast<blasint>(in), w_rows, static_cast<blasint>(in), 0.0f, y,
              static_cast<blasint>(out));
}

void matmul_f32_blas(const float* x, int64_t rows, const TensorView& w, float* y,
                     ThreadPool& pool) {
  const int64_t out = w.dim(0), in = w.dim(1);
  pool.parallel_for(static_cast<size_t>(out), kMinRowsPerTask, [&](size_t begin, size_t end) {
    const auto b = static_cast<int64_t>(begin);
    sgemm_columns(x, rows, w.f32() + b * in, static_cast<int64_t>(end) - b, in, y + b, out);
  });
}

// BF16/F16 weights: each task widens blocks of kBlockRows rows of W into its own scratch
// slot, then multiplies them with sgemm. Blocks are dealt round-robin to the slots.
void matmul_widened_blas(const float* x, int64_t rows, const TensorView& w, float* y,
                         ThreadPool& pool, MatmulScratch& scratch) {
  const int64_t out = w.dim(0), in = w.dim(1);
  const int64_t block_rows = MatmulScratch::kBlockRows;
  const int64_t blocks = (out + block_rows - 1) / block_rows;
  const int slots =
      static_cast<int>(std::min<int64_t>({scratch.slots(), pool.num_threads(), blocks}));
  const auto* base = static_cast<const uint8_t*>(w.data);
  const size_t row_bytes = static_cast<size_t>(in) * dtype_size(w.dtype);
  pool.parallel_for(static_cast<size_t>(slots), 1, [&](size_t begin, size_t end) {
    for (size_t slot = begin; slot < end; ++slot) {
      float* staging = scratch.slot(static_cast<int>(slot));
      for (int64_t block = static_cast<int64_t>(slot); block < blocks; block += slots) {
        const int64_t first = block * block_rows;
        const int64_t count = std::min(block_rows, out - first);
        convert_to_f32(base + static_cast<size_t>(first) * row_bytes, w.dtype,
                       static_cast<size_t>(count * in), staging);
        sgemm_columns(x, rows, staging, count, in, y + first, out);
      }
    }
  });
}

std::atomic<Bf16Activations>& bf16_activations_setting() {
  static std::atomic<Bf16Activations> mode = [] {
    const char* env = std::getenv("TULU_BF16_ACTIVATIONS");
    if (env != nullptr && std::strcmp(env, "1") == 0) return Bf16Activations::On;
    if (env != nullptr && std::strcmp(env, "0") == 0) return Bf16Activations::Off;
    return Bf16Activations::Auto;
  }();
  return mode;
}

thread_local int t_bf16_scope = -1;  // the innermost Bf16ActivationsScope's choice, or -1

}  // namespace

void set_bf16_activations(Bf16Activations mode) { bf16_activations_setting().store(mode); }
Bf16Activations bf16_activations_mode() { return bf16_activations_setting().load(); }
bool bf16_activations() {
  if (t_bf16_scope >= 0) return t_bf16_scope == 1;
  return bf16_activations_mode() == Bf16Activations::On;
}

Bf16ActivationsScope::Bf16ActivationsScope(bool on) : previous_(t_bf16_scope) {
  t_bf16_scope = on ? 1 : 0;
}
Bf16ActivationsScope::~Bf16ActivationsScope() { t_bf16_scope = previous_; }

const char* blas_core_name() { return openblas_get_corename(); }

std::string prompt_gemm_name() {
  if (!packed_gemm_available()) return std::string("OpenBLAS ") + blas_core_name();
  return bf16_activations() && packed_gemm_bf16_available()
             ? "packed AVX-512 + bf16 inputs for BF16"
             : "packed AVX-512";
}

MatmulScratch::MatmulScratch(int64_t max_in, int threads)
    : max_in_(max_in),
      slots_(std::max(1, threads)),
      buffer_(static_cast<size_t>(slots_) * static_cast<size_t>(kBlockRows * max_in)) {}

void matmul(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool,
            MatmulScratch* scratch) {
  const int64_t out = w.dim(0), in = w.dim(1);
  if (rows <= 0 || out <= 0) return;
  if (in == 0) {  // empty sums (BLAS rejects K = 0 with lda = 0)
    std::fill(y, y + rows * out, 0.0f);
    return;
  }
  if (dtype_is_quantized(w.dtype)) return quant_matmul(x, rows, w, y, pool);
  if (force_generic_kernels()) {
    pool.parallel_for(static_cast<size_t>(out), kMinRowsPerTask, [&](size_t begin, size_t end) {
      matmul_ref<float>(x, rows, w, static_cast<int64_t>(begin), static_cast<int64_t>(end), y);
    });
    return;
  }
  if (rows == 1) {
    pool.parallel_for(static_cast<size_t>(out), kMinRowsPerTask, [&](size_t begin, size_t end) {
      matvec_rows(x, w, static_cast<int64_t>(begin), static_cast<int64_t>(end), y);
    });
    return;
  }
  // A caller's scratch must fit this weight whichever path runs (it was sized for sgemm).
  TULU_CHECK(scratch == nullptr || w.dtype == DType::F32 || scratch->max_in() >= in,
             "matmul: scratch holds rows of ", scratch == nullptr ? 0 : scratch->max_in(),
             " elements, the weight needs ", in);
  if (rows <= kMatvecMultiMaxRows) return matvec_multi(x, rows, w, y, pool);
  if (w.dtype == DType::BF16 && bf16_activations() && packed_gemm_bf16_available())
    return packed_gemm_bf16_inputs(x, rows, w, y, pool);
  if (packed_gemm_available()) return packed_gemm(x, rows, w, y, pool);
  matmul_blas(x, rows, w, y, pool, scratch);
}

void parallel_for_outputs(std::span<const MatmulOutput> outputs, size_t min_chunk,
                          ThreadPool& pool,
                          const std::function<void(size_t, int64_t, int64_t)>& fn,
                          int64_t unit) {
  int64_t total = 0;  // in units
  for (const MatmulOutput& o : outputs) {
    TULU_CHECK(o.w->dim(0) % unit == 0, "matmul: ", o.w->dim(0), " weight rows are not whole ",
               "groups of ", unit);
    total += o.w->dim(0) / unit;
  }
  const auto units_per_chunk =
      static_cast<size_t>((static_cast<int64_t>(min_chunk) + unit - 1) / unit);
  pool.parallel_for(static_cast<size_t>(total), units_per_chunk, [&](size_t begin, size_t end) {
    int64_t offset = 0;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const int64_t n = outputs[i].w->dim(0) / unit;
      const int64_t b = std::max(static_cast<int64_t>(begin), offset);
      const int64_t e = std::min(static_cast<int64_t>(end), offset + n);
      if (b < e) fn(i, (b - offset) * unit, (e - offset) * unit);
      offset += n;
    }
  });
}

void matmul_group(const float* x, int64_t rows, std::span<const MatmulOutput> outputs,
                  ThreadPool& pool, MatmulScratch* scratch) {
  if (outputs.empty() || rows <= 0) return;
  const TensorView& first = *outputs.front().w;
  bool same = first.dim(1) > 0;
  for (const MatmulOutput& o : outputs)
    same = same && o.w->dtype == first.dtype && o.w->dim(1) == first.dim(1);
  if (same && dtype_is_quantized(first.dtype)) {
    if (quant_matvec_group(x, rows, outputs, pool)) return;
  } else if (same && rows == 1 && !force_generic_kernels()) {
    parallel_for_outputs(outputs, kMinRowsPerTask, pool, [&](size_t i, int64_t begin, int64_t end) {
      matvec_rows(x, *outputs[i].w, begin, end, outputs[i].y);
    });
    return;
  }
  for (const MatmulOutput& o : outputs) matmul(x, rows, *o.w, o.y, pool, scratch);
}

void matmul_blas(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool,
                 MatmulScratch* scratch) {
  const int64_t out = w.dim(0), in = w.dim(1);
  TULU_CHECK(!dtype_is_quantized(w.dtype), "matmul_blas: ", dtype_name(w.dtype),
             " weights need the quantized kernels");
  if (rows <= 0 || out <= 0) return;
  if (in == 0) {
    std::fill(y, y + rows * out, 0.0f);
    return;
  }
  set_blas_single_threaded();
  if (w.dtype == DType::F32) return matmul_f32_blas(x, rows, w, y, pool);
  std::optional<MatmulScratch> local;
  if (scratch == nullptr) scratch = &local.emplace(in, pool.num_threads());
  TULU_CHECK(scratch->max_in() >= in, "matmul: scratch holds rows of ", scratch->max_in(),
             " elements, the weight needs ", in);
  matmul_widened_blas(x, rows, w, y, pool, *scratch);
}

}  // namespace tulu

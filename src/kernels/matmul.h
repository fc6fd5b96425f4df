// y = x · Wᵀ: the linear layers. x [rows, in] fp32, W [out, in] (PyTorch's Linear layout)
// stored F32, BF16 or F16, y [rows, out] fp32; accumulation in fp32.
//
//   rows == 1: matrix–vector product, Highway dot products that widen BF16/F16 weights on
//              the fly, output rows split over the thread pool.
//   rows 2 ..= kMatvecMultiMaxRows (24): matvec_multi.h (each weight row read once for all
//              rows).
//   more rows, AVX-512: packed_gemm.h, our own GEMM (fp32 products and sums, like every
//              path above; BF16 weights with bf16_activations() on: its bf16-input mode).
//   more rows otherwise: OpenBLAS cblas_sgemm. F32 weights are used in place; BF16/F16 weights are
//              widened a block of W rows at a time into a per-thread fp32 scratch, never the
//              whole matrix up front. Output columns are split over our thread pool; each
//              worker calls a single-threaded sgemm (OpenBLAS's own threading is set to 1 on
//              first use, so that one pool, sized by -t, does all the parallel work).
//   force_generic_kernels(): the scalar reference (matmul_ref.h), rows split over the pool.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "tensor/tensor.h"

namespace tulu {

// Per-thread fp32 staging blocks for widening BF16/F16 weights before sgemm. Allocate once
// (e.g. per Session) for the largest `in` and the pool's thread count.
class MatmulScratch {
 public:
  // Rows of W widened at a time.
  static constexpr int64_t kBlockRows = 256;
  MatmulScratch(int64_t max_in, int threads);
  int64_t max_in() const { return max_in_; }
  int slots() const { return slots_; }
  float* slot(int i) {
    return buffer_.data() + static_cast<size_t>(i) * static_cast<size_t>(kBlockRows * max_in_);
  }

 private:
  int64_t max_in_ = 0;
  int slots_ = 0;
  std::vector<float> buffer_;  // [slots, kBlockRows, max_in]
};

// BF16 weights in prompt batches (more than kMatvecMultiMaxRows rows): exact fp32
// activations (the logits of the fp32 reference), or activations rounded to bf16 and the
// CPU's bf16 dot product (packed_gemm.h's bf16-input mode, where the CPU has AVX-512 BF16),
// as llama.cpp and PyTorch's bf16 inference do: 1.6–1.9× the prompt speed here, logits that
// differ from the fp32 reference by that rounding (relative 2⁻⁸ per activation). Decode
// steps (≤ kMatvecMultiMaxRows rows) and every other dtype are unaffected.
//
// Process-wide mode, set at start-up (`--bf16-activations`, `--f32-activations`,
// TULU_BF16_ACTIVATIONS=1 / 0):
//   Auto (default)  each model's own choice (LlamaModel::bf16_activations: bf16 for a GGUF
//                   file, as llama.cpp computes its own format; fp32 for a Hugging Face
//                   directory, as transformers does), applied by a Bf16ActivationsScope
//                   around the model's forward pass; fp32 anywhere else;
//   On / Off        bf16 / fp32 for every model.
enum class Bf16Activations { Auto, On, Off };
void set_bf16_activations(Bf16Activations mode);
Bf16Activations bf16_activations_mode();
// What matmul uses on the calling thread now: the innermost Bf16ActivationsScope's choice,
// else true only when the mode is On.
bool bf16_activations();

// Sets the calling thread's choice while it lives (scopes nest). Not to be made while
// kernels run on this thread.
class Bf16ActivationsScope {
 public:
  explicit Bf16ActivationsScope(bool on);
  ~Bf16ActivationsScope();
  Bf16ActivationsScope(const Bf16ActivationsScope&) = delete;
  Bf16ActivationsScope& operator=(const Bf16ActivationsScope&) = delete;

 private:
  int previous_;  // -1: no scope outside this one
};

// Which GEMM prompt batches of F32/BF16/F16 weights use here: "packed AVX-512" (with
// " + bf16 inputs for BF16" when bf16_activations() takes effect) or "OpenBLAS <core>".
std::string prompt_gemm_name();

// The OpenBLAS kernel set in use (e.g. "SkylakeX", "Cooperlake"), for benchmark reports.
const char* blas_core_name();

// y[rows, out] = x[rows, in] · Wᵀ with W = w ([out, in], any stored dtype). y must not
// alias x. scratch may be null (a temporary one is made when BF16/F16 weights need it).
void matmul(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool,
            MatmulScratch* scratch = nullptr);

// One product of a matmul_group(): y [rows, w.dim(0)] = x · Wᵀ. Non-owning.
struct MatmulOutput {
  const TensorView* w;
  float* y;
};

// Several products of the same x (a layer's q/k/v, or gate/up): the same values as one
// matmul() per output, in one pass where that saves work. For a decode step (rows 1..3 with
// Q8_0/Q4_0 weights on the 512-bit matrix–vector kernel, rows == 1 otherwise) the outputs'
// weight rows are dealt over the pool in a single dispatch and x is quantized once: a
// Llama layer then meets 5 pool barriers per token instead of 8, and the small k/v products
// (256 rows on TinyLlama) no longer pay a hand-off each. Otherwise (prompts, weights of
// different dtypes or `in`, forced generic kernels) it calls matmul() per output.
// No y may alias x.
void matmul_group(const float* x, int64_t rows, std::span<const MatmulOutput> outputs,
                  ThreadPool& pool, MatmulScratch* scratch = nullptr);

// The concatenated weight rows of `outputs` split over the pool in one parallel_for:
// fn(i, begin, end) for each output i and its row range [begin, end) within one chunk.
// Chunks hold at least min_chunk rows. With unit > 1 (every output's rows a multiple of
// it) the ranges start and end on multiples of unit (Q4_0_R16's 16-row groups).
void parallel_for_outputs(std::span<const MatmulOutput> outputs, size_t min_chunk,
                          ThreadPool& pool,
                          const std::function<void(size_t, int64_t, int64_t)>& fn,
                          int64_t unit = 1);

// The sgemm path of matmul() whatever the row count (benchmarks and tests compare it with
// matvec_multi.h to place the crossover). Same contract as matmul(); F32/BF16/F16 only.
void matmul_blas(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool,
                 MatmulScratch* scratch = nullptr);

// The Highway matrix–vector kernel on one thread: y[o] = x · W[o, :] for o in
// [row_begin, row_end). y points at element 0 of the output (not at row_begin).
void matvec_rows(const float* x, const TensorView& w, int64_t row_begin, int64_t row_end, float* y);

}  // namespace tulu

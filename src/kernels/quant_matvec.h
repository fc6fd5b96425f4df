// Matrix–vector products for generation (one activation row) with Q8_0 / Q4_0 weights on
// AVX-512 VNNI + VBMI: the decode-step kernel, where every weight byte is read once per
// token and the work per byte must stay well below what memory delivers.
//
// Each step covers a pair of Q8_0 blocks (68 bytes: one zmm of weight bytes, q + 128) or a
// quad of Q4_0 blocks (72 bytes: one two-table byte permute gathers the 64 nibble bytes,
// a mask and a shift split them into two zmm), multiplied by the activation bytes with
// vpdpbusd; the step's f16 weight scales are permuted into lanes and converted in one
// instruction, and one convert + multiply + FMA per step applies the scales. What depends
// on the activation row only — its quantized bytes in the lane order the weights take, the
// offset correction −offset·Σx per lane and the scales d_x per lane — is prepared once per
// row (QuantMatvecRow), not per weight row.
//
// Q4_0_R16 / Q8_0_R16 weights (tensor/quant_repack.h: 16 rows interleaved, the layouts the
// loader makes) take a simpler kernel: a 16-row group streams as one contiguous run of
// blocks; each 64-byte load holds 16 rows' next quants in 32-bit lanes (Q4_0: a mask and a
// shift split it into low and high nibbles; Q8_0: made unsigned), one vpdpbusd per load
// and 4 activation bytes broadcast forms the 16 block sums (started at −offset·Σx of the
// block), and the 16 f16 scales convert in one instruction. The activation side is read once
// per 16 rows instead of once per row, and nothing is permuted: measured on this VM (one
// thread, 600 MiB of Q4_0 [5632, 2048] weights) 1.45× the file-layout kernel, 22 GB/s, this
// machine's one-thread read rate. Each output is formed exactly as the prompt GEMM forms it,
// so a decode step gives the bits the same row gets in a prompt batch.
//
// Every lane's integer sum is a partial of ggml's exact block sum, so the result is the
// ggml block dot (quant_dot.h, vec_dot_*_ref) up to fp32 accumulation order; the bound of
// quant_dot.h holds (tests/kernels/quant_kernels_test.cc checks it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/quant_blocks.h"

namespace tulu {

// True when QuantMatvecRow::prepare would succeed now (AVX-512 VNNI + VBMI, no lower path
// forced).
bool quant_matvec_available();

// One activation row, quantized to Q8_0 blocks, laid out for weights of one type.
// Owns its buffers (reused across prepare calls); not thread-safe while preparing, read-only
// (shareable between threads) afterwards.
class QuantMatvecRow {
 public:
  // x: `blocks` Q8_0 blocks (|q| ≤ 127, as quantize_row_q8_0_ref writes); weight_type Q8_0,
  // Q4_0 or their R16 layouts. Returns false (preparing nothing) when the CPU path is not
  // AVX-512 VNNI + VBMI (or a lower path is forced): the caller then uses quant_dot.h.
  bool prepare(DType weight_type, const BlockQ8_0* x, size_t blocks);

  DType weight_type() const { return weight_type_; }
  size_t blocks() const { return blocks_; }

 private:
  friend void quant_matvec_rows(const void*, size_t, const QuantMatvecRow&, float*);
  friend void quant_matvec_interleaved(const void*, size_t, const QuantMatvecRow*, int,
                                       float* const*);
  DType weight_type_ = DType::Q8_0;
  size_t blocks_ = 0;
  const BlockQ8_0* x_ = nullptr;  // the caller's blocks (for an odd last block)
  // Per step (2 blocks of Q8_0, 4 of Q4_0): 64 or 128 activation bytes in the weights'
  // lane order, 16 int32 corrections and 16 float scales (lane l belongs to one block).
  // R16 layouts: per block one correction and one scale (the bytes are read from x_).
  std::vector<int8_t> bytes_;
  std::vector<int32_t> corrections_;
  std::vector<float> scales_;
};

// out[r] = Σ_b dot(block b of weight row r, block b of x) for r < rows, where weight row r
// starts at weights + r·row_bytes (row_bytes = blocks · block size of x.weight_type());
// for the R16 layouts, weights is the start of a 16-row group and rows a multiple of 16. As
// vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0 would give. x must be prepared. Rows go one at a
// time (one weight stream per thread measured fastest here), each step prefetching the same
// step of the next row, since rows of 1–6 KB are too short for the hardware prefetcher to
// lock on (prefetches past the end of the matrix are harmless: they never fault).
void quant_matvec_rows(const void* weights, size_t rows, const QuantMatvecRow& x, float* out);

// Q4_0_R16 / Q8_0_R16 weights (rows a multiple of 16, weights at a group's start) times
// `count` activation rows (1..kMaxInterleavedMatvecRows, all prepared for that weight type):
// outs[j][r] = row r · x_j, in one pass over the weights — each block's quants are unpacked
// once for all rows (small batches of concurrent generations: `tulu serve`). Each output has
// the bits quant_matvec_rows gives it alone. Up to 4: measured (1.1B, bench_batch_decode),
// 5–8 rows in one pass were no faster than the prompt GEMM (Q4_0) or slower (Q8_0).
inline constexpr int kMaxInterleavedMatvecRows = 4;
void quant_matvec_interleaved(const void* weights, size_t rows, const QuantMatvecRow* xs,
                              int count, float* const* outs);

}  // namespace tulu

#include "kernels/quant_matmul.h"

#include <algorithm>
#include <span>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot.h"
#include "kernels/quant_dot_k.h"
#include "kernels/quant_gemm_vnni.h"
#include "kernels/quant_matvec.h"
#include "kernels/quantize_row.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_repack.h"

namespace tulu {

namespace {

// Output rows per pool task, and the tile edge: 4 weight rows × 4 activation rows
// (quant_tile_4x4_*).
constexpr size_t kMinRowsPerTask = 16;
constexpr int64_t kTileRows = 4;
// From this many activation rows on, the packed-tile GEMM (quant_gemm_vnni.h) beats the
// 4 × 4 tiles: it pays a packing pass over the weights that only a batch amortizes.
// Measured (1 thread, W 5632×2048 and 2048×5632): at 4 rows the two tie, at 8 the GEMM
// takes 0.6× the time of two 4-row tile passes (0.3× at 32 rows).
constexpr int64_t kGemmMinRows = 5;
constexpr size_t kMinRowsPerQuantizeTask = 8;

// Generation steps (1–3 activation rows; 1–4 for the R16 layouts, which take them all in
// one pass): the 512-bit matrix–vector kernel (quant_matvec.h) over every output's weight
// rows (one dtype, one `in`), split over the pool in one dispatch. xq: rows × (in / 32)
// blocks. False (nothing written) when the CPU lacks the path.
bool matvec_512(std::span<const MatmulOutput> outputs, const BlockQ8_0* xq, int64_t rows,
                ThreadPool& pool) {
  const TensorView& first = *outputs.front().w;
  const auto blocks = static_cast<size_t>(first.dim(1)) / kQuantBlock;
  thread_local QuantMatvecRow prepared_rows[kMaxInterleavedMatvecRows];
  // Workers must see the caller's rows, not their own thread_local copies.
  QuantMatvecRow* prepared = prepared_rows;
  for (int64_t r = 0; r < rows; ++r)
    if (!prepared[r].prepare(first.dtype, xq + static_cast<size_t>(r) * blocks, blocks))
      return false;
  // Row r of the matrix starts at r·row_bytes in both layouts when r is a multiple of 16,
  // and R16 chunks start on such rows.
  const size_t row_bytes = dtype_row_bytes(first.dtype, static_cast<uint64_t>(first.dim(1)));
  const int64_t unit = plain_dtype(first.dtype) != first.dtype ? kRepackRows : 1;
  parallel_for_outputs(
      outputs, kMinRowsPerTask, pool,
      [&](size_t i, int64_t begin, int64_t end) {
        const auto* weights = static_cast<const uint8_t*>(outputs[i].w->data) +
                              static_cast<size_t>(begin) * row_bytes;
        const int64_t out = outputs[i].w->dim(0);
        if (unit > 1) {  // the R16 layouts: every activation row in one pass
          float* outs[kMaxInterleavedMatvecRows];
          for (int64_t r = 0; r < rows; ++r) outs[r] = outputs[i].y + r * out + begin;
          return quant_matvec_interleaved(weights, static_cast<size_t>(end - begin), prepared,
                                          static_cast<int>(rows), outs);
        }
        for (int64_t r = 0; r < rows; ++r)
          quant_matvec_rows(weights, static_cast<size_t>(end - begin), prepared[r],
                            outputs[i].y + r * out + begin);
      },
      unit);
  return true;
}

// The Q8_0 blocks of `rows` rows of x ([rows, in], in a multiple of 32), row by row, split
// over the pool for prompt batches (a 512-token prompt has 512 independent rows); a few
// decode rows are not worth a dispatch.
std::vector<BlockQ8_0> quantize_rows(const float* x, int64_t rows, int64_t in, ThreadPool& pool) {
  const auto blocks = static_cast<size_t>(in) / kQuantBlock;
  std::vector<BlockQ8_0> xq(static_cast<size_t>(rows) * blocks);
  pool.parallel_for(static_cast<size_t>(rows), kMinRowsPerQuantizeTask,
                    [&](size_t begin, size_t end) {
                      for (size_t r = begin; r < end; ++r)
                        quantize_row_q8_0(x + r * static_cast<size_t>(in), xq.data() + r * blocks,
                                          static_cast<size_t>(in));
                    });
  return xq;
}

template <typename WBlock, float (*Dot)(const WBlock*, const BlockQ8_0*, size_t),
          float (*DotRef)(const WBlock*, const BlockQ8_0*, size_t),
          bool (*Tile)(const WBlock*, const BlockQ8_0*, size_t, int, float*),
          void (*Gemm)(const WBlock*, int64_t, const BlockQ8_0*, int64_t, size_t, float*,
                       ThreadPool&)>
void matmul_q8_activations(const float* x, int64_t rows, const TensorView& w, float* y,
                           ThreadPool& pool) {
  const int64_t out = w.dim(0), in = w.dim(1);
  const auto blocks = static_cast<size_t>(in) / kQuantBlock;
  const std::vector<BlockQ8_0> xq = quantize_rows(x, rows, in, pool);
  const auto* weights = static_cast<const WBlock*>(w.data);
  if (rows >= kGemmMinRows && quant_gemm_available())
    return Gemm(weights, out, xq.data(), rows, blocks, y, pool);
  const MatmulOutput single[] = {{&w, y}};
  if (rows < kTileRows && matvec_512(single, xq.data(), rows, pool)) return;
  const bool generic = force_generic_kernels();
  const auto dot = generic ? DotRef : Dot;
  // Tiles of 4 weight rows × 4 activation rows (× 1 for the last rows of a batch and for
  // matrix–vector products) share their block loads (quant_dot.h); leftover weight rows
  // of a task and CPUs without VNNI use the pairwise dot.
  const bool tiles = !generic;
  pool.parallel_for(static_cast<size_t>(out), kMinRowsPerTask, [&](size_t begin, size_t end) {
    for (auto tile = static_cast<int64_t>(begin); tile < static_cast<int64_t>(end);
         tile += kTileRows) {
      const int64_t tile_end = std::min(tile + kTileRows, static_cast<int64_t>(end));
      int64_t r = 0;
      if (tiles && tile_end - tile == kTileRows) {
        float products[kTileRows * kTileRows];
        while (r < rows) {
          const int64_t x_rows = rows - r >= kTileRows ? kTileRows : 1;
          const size_t x_offset = static_cast<size_t>(r) * blocks;
          if (!Tile(weights + static_cast<size_t>(tile) * blocks, xq.data() + x_offset, blocks,
                    static_cast<int>(x_rows), products))
            break;
          for (int64_t i = 0; i < kTileRows; ++i)
            for (int64_t j = 0; j < x_rows; ++j)
              y[(r + j) * out + tile + i] = products[i * x_rows + j];
          r += x_rows;
        }
      }
      for (; r < rows; ++r) {
        const BlockQ8_0* xr = xq.data() + static_cast<size_t>(r) * blocks;
        for (int64_t o = tile; o < tile_end; ++o)
          y[r * out + o] = dot(weights + static_cast<size_t>(o) * blocks, xr, blocks);
      }
    }
  });
}

// Q4_0_R16 / Q8_0_R16 weights (tensor/quant_repack.h): 1–4 rows take the matrix–vector
// kernel (all rows in one pass), more the GEMM (its packing reads the groups directly).
// Where neither runs (no AVX-512 VNNI, or a lower path forced), each 16-row group is
// unpacked to plain rows in a per-thread buffer and goes through the pairwise dots: the
// same products as on the rows the copy was made from.
template <typename Interleaved, typename Plain,
          void (*Unpack)(const Interleaved*, size_t, Plain*),
          float (*Dot)(const Plain*, const BlockQ8_0*, size_t),
          float (*DotRef)(const Plain*, const BlockQ8_0*, size_t),
          void (*Gemm)(const Interleaved*, int64_t, const BlockQ8_0*, int64_t, size_t, float*,
                       ThreadPool&)>
void matmul_r16(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool) {
  const int64_t out = w.dim(0), in = w.dim(1);
  TULU_CHECK(rows16_repackable(out, in), "matmul: a ", dtype_name(w.dtype),
             " weight must be [16k, 32m], not ", shape_to_string(w.shape));
  const auto blocks = static_cast<size_t>(in) / kQuantBlock;
  const std::vector<BlockQ8_0> xq = quantize_rows(x, rows, in, pool);
  const auto* groups = static_cast<const Interleaved*>(w.data);
  const MatmulOutput single[] = {{&w, y}};
  if (rows <= kMaxInterleavedMatvecRows && matvec_512(single, xq.data(), rows, pool)) return;
  if (quant_gemm_available()) return Gemm(groups, out, xq.data(), rows, blocks, y, pool);
  const auto dot = force_generic_kernels() ? DotRef : Dot;
  pool.parallel_for(static_cast<size_t>(out / kRepackRows), 1, [&](size_t begin, size_t end) {
    thread_local std::vector<Plain> plain;
    plain.resize(static_cast<size_t>(kRepackRows) * blocks);
    for (size_t g = begin; g < end; ++g) {
      Unpack(groups + g * blocks, blocks, plain.data());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < kRepackRows; ++i)
          y[r * out + static_cast<int64_t>(g) * kRepackRows + i] =
              dot(plain.data() + static_cast<size_t>(i) * blocks,
                  xq.data() + static_cast<size_t>(r) * blocks, blocks);
    }
  });
}

}  // namespace

bool quant_matvec_group(const float* x, int64_t rows, std::span<const MatmulOutput> outputs,
                        ThreadPool& pool) {
  if (rows < 1 || outputs.empty() || force_generic_kernels() ||
      quant_dot_path() != QuantPath::kVnni)
    return false;
  const TensorView& first = *outputs.front().w;
  const DType plain = plain_dtype(first.dtype);
  if (rows > (plain != first.dtype ? kMaxInterleavedMatvecRows : kTileRows - 1)) return false;
  const int64_t in = first.dim(1);
  if ((plain != DType::Q8_0 && plain != DType::Q4_0) || in <= 0 ||
      in % static_cast<int64_t>(kQuantBlock) != 0)
    return false;
  for (const MatmulOutput& o : outputs)
    if (o.w->dtype != first.dtype || o.w->dim(1) != in) return false;
  const std::vector<BlockQ8_0> xq = quantize_rows(x, rows, in, pool);
  return matvec_512(outputs, xq.data(), rows, pool);
}

void quant_matmul(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool) {
  const int64_t in = w.dim(1);
  TULU_CHECK(static_cast<size_t>(in) % dtype_block_elements(w.dtype) == 0,
             "matmul: ", dtype_name(w.dtype), " weight ", shape_to_string(w.shape),
             " rows are not whole blocks of ", dtype_block_elements(w.dtype));
  switch (w.dtype) {
    case DType::Q8_0:
      return matmul_q8_activations<BlockQ8_0, vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_ref,
                                   quant_tile_q8_0, quant_gemm_q8_0>(x, rows, w, y, pool);
    case DType::Q4_0:
      return matmul_q8_activations<BlockQ4_0, vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_ref,
                                   quant_tile_q4_0, quant_gemm_q4_0>(x, rows, w, y, pool);
    case DType::Q4_0_R16:
      return matmul_r16<BlockQ4_0x16, BlockQ4_0, unpack_q4_0_r16_group, vec_dot_q4_0_q8_0,
                        vec_dot_q4_0_q8_0_ref, quant_gemm_q4_0_r16>(x, rows, w, y, pool);
    case DType::Q8_0_R16:
      return matmul_r16<BlockQ8_0x16, BlockQ8_0, unpack_q8_0_r16_group, vec_dot_q8_0_q8_0,
                        vec_dot_q8_0_q8_0_ref, quant_gemm_q8_0_r16>(x, rows, w, y, pool);
    case DType::Q4_K:
    case DType::Q6_K:
      return matmul_k_quant(x, rows, w, y, pool);
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      break;
  }
  fail("quant_matmul: ", dtype_name(w.dtype), " is not a quantized type");
}

}  // namespace tulu

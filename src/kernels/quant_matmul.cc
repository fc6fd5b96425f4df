#include "kernels/quant_matmul.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot.h"
#include "kernels/quant_dot_k.h"
#include "tensor/quant_blocks.h"

namespace tulu {

namespace {

// Output rows per pool task, and the tile edge: 4 weight rows × 4 activation rows
// (quant_tile_4x4_*).
constexpr size_t kMinRowsPerTask = 16;
constexpr int64_t kTileRows = 4;

template <typename WBlock, float (*Dot)(const WBlock*, const BlockQ8_0*, size_t),
          float (*DotRef)(const WBlock*, const BlockQ8_0*, size_t),
          bool (*Tile)(const WBlock*, const BlockQ8_0*, const int32_t*, size_t, int, float*)>
void matmul_q8_activations(const float* x, int64_t rows, const TensorView& w, float* y,
                           ThreadPool& pool) {
  const int64_t out = w.dim(0), in = w.dim(1);
  const auto blocks = static_cast<size_t>(in) / kQuantBlock;
  std::vector<BlockQ8_0> xq(static_cast<size_t>(rows) * blocks);
  for (int64_t r = 0; r < rows; ++r)
    quantize_row_q8_0_ref(x + r * in, xq.data() + static_cast<size_t>(r) * blocks,
                          static_cast<size_t>(in));
  const auto* weights = static_cast<const WBlock*>(w.data);
  const bool generic = force_generic_kernels();
  const auto dot = generic ? DotRef : Dot;
  // Tiles of 4 weight rows × 4 activation rows (× 1 for the last rows of a batch and for
  // matrix–vector products) share their block loads (quant_dot.h); leftover weight rows
  // of a task and CPUs without VNNI use the pairwise dot.
  const bool tiles = !generic;
  std::vector<int32_t> sums(tiles ? xq.size() : 0);
  if (tiles) quant_block_sums(xq.data(), xq.size(), sums.data());
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
          if (!Tile(weights + static_cast<size_t>(tile) * blocks, xq.data() + x_offset,
                    sums.data() + x_offset, blocks, static_cast<int>(x_rows), products))
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

}  // namespace

void quant_matmul(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool) {
  const int64_t in = w.dim(1);
  TULU_CHECK(static_cast<size_t>(in) % dtype_block_elements(w.dtype) == 0,
             "matmul: ", dtype_name(w.dtype), " weight ", shape_to_string(w.shape),
             " rows are not whole blocks of ", dtype_block_elements(w.dtype));
  switch (w.dtype) {
    case DType::Q8_0:
      return matmul_q8_activations<BlockQ8_0, vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_ref,
                                   quant_tile_q8_0>(x, rows, w, y, pool);
    case DType::Q4_0:
      return matmul_q8_activations<BlockQ4_0, vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_ref,
                                   quant_tile_q4_0>(x, rows, w, y, pool);
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

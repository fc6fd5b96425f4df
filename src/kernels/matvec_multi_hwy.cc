// Highway kernel of matvec_multi.h, dispatched at run time; threading and the generic path
// below (HWY_ONCE).
#include "kernels/matvec_multi.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matvec_multi_hwy.cc"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// kW weight rows (w, stride in) × kX activation rows (x, stride in): y[r·out + o] for
// o = o0 .. o0 + kW − 1. Each weight vector is loaded and widened once and multiplied with
// the kX activation vectors of the same columns; kW·kX accumulators stay in registers
// (≤ 16 of the 32 AVX-512 / 16 AVX2 registers: AVX2 spills a few at 4×4, still faster than
// re-reading the weights).
// next: kW weight rows two tiles ahead, or null; prefetched column by column while this
// tile runs. Four rows of 1.5–11 KB each are too short for the hardware prefetcher to lock
// on to (measured, 32000 × 768 BF16 lm_head, 8 rows, 2 threads: 5.0 ms without, 3.7 ms
// one tile ahead, 3.0 ms two tiles ahead).
template <int kW, int kX, typename W>
HWY_INLINE void Tile(const float* HWY_RESTRICT x, const W* HWY_RESTRICT w, size_t in,
                     float* HWY_RESTRICT y, int64_t out, int64_t o0, const W* next) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[kW][kX];
  for (int a = 0; a < kW; ++a)
    for (int b = 0; b < kX; ++b) acc[a][b] = hn::Zero(d);
  size_t i = 0;
  for (; i + lanes <= in; i += lanes) {
    if (next != nullptr) {
      for (int a = 0; a < kW; ++a) hwy::Prefetch(next + static_cast<size_t>(a) * in + i);
    }
    hn::Vec<decltype(d)> xv[kX];
    for (int b = 0; b < kX; ++b) xv[b] = hn::LoadU(d, x + static_cast<size_t>(b) * in + i);
    for (int a = 0; a < kW; ++a) {
      const auto wv = LoadF32(d, w + static_cast<size_t>(a) * in + i);
      for (int b = 0; b < kX; ++b) acc[a][b] = hn::MulAdd(wv, xv[b], acc[a][b]);
    }
  }
  for (int a = 0; a < kW; ++a) {
    for (int b = 0; b < kX; ++b) {
      float total = hn::GetLane(hn::SumOfLanes(d, acc[a][b]));
      for (size_t j = i; j < in; ++j)
        total += x[static_cast<size_t>(b) * in + j] * ToF32(w[static_cast<size_t>(a) * in + j]);
      y[static_cast<int64_t>(b) * out + o0 + a] = total;
    }
  }
}

// Activation rows in groups of 4 (the last group 1 ..= 3 rows) for kW weight rows at o0.
// next: as Tile's, prefetched during the first group only (later groups find this tile in
// cache).
template <int kW, typename W>
HWY_INLINE void TileAllRows(const float* HWY_RESTRICT x, int64_t rows, const W* HWY_RESTRICT w,
                            size_t in, float* HWY_RESTRICT y, int64_t out, int64_t o0,
                            const W* next) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4, next = nullptr)
    Tile<kW, 4>(x + static_cast<size_t>(r) * in, w, in, y + r * out, out, o0, next);
  const float* xr = x + static_cast<size_t>(r) * in;
  float* yr = y + r * out;
  switch (rows - r) {
    case 3:
      Tile<kW, 3>(xr, w, in, yr, out, o0, next);
      break;
    case 2:
      Tile<kW, 2>(xr, w, in, yr, out, o0, next);
      break;
    case 1:
      Tile<kW, 1>(xr, w, in, yr, out, o0, next);
      break;
    default:
      break;
  }
}

template <typename W>
void MatvecMultiTyped(const float* HWY_RESTRICT x, int64_t rows, const W* HWY_RESTRICT w, size_t in,
                      int64_t out, int64_t out_begin, int64_t out_end, float* HWY_RESTRICT y) {
  int64_t o = out_begin;
  for (; o + 4 <= out_end; o += 4) {
    const W* tile = w + static_cast<size_t>(o) * in;
    TileAllRows<4>(x, rows, tile, in, y, out, o, o + 12 <= out_end ? tile + 8 * in : nullptr);
  }
  for (; o < out_end; ++o)
    TileAllRows<1, W>(x, rows, w + static_cast<size_t>(o) * in, in, y, out, o, nullptr);
}

void MatvecMultiImpl(const float* x, int64_t rows, const void* w, DType dtype, size_t in,
                     int64_t out, int64_t out_begin, int64_t out_end, float* y) {
  switch (dtype) {
    case DType::F32:
      MatvecMultiTyped(x, rows, static_cast<const float*>(w), in, out, out_begin, out_end, y);
      break;
    case DType::BF16:
      MatvecMultiTyped(x, rows, static_cast<const Bf16Bits*>(w), in, out, out_begin, out_end, y);
      break;
    case DType::F16:
      MatvecMultiTyped(x, rows, static_cast<const F16Bits*>(w), in, out, out_begin, out_end, y);
      break;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16:
      break;  // rejected by matvec_multi_range before dispatching here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/matvec_multi_ref.h"

namespace tulu {

HWY_EXPORT(MatvecMultiImpl);

namespace {

// Output columns per pool task, a multiple of the 4-row tile: enough work to amortise the
// hand-off, small enough to balance 2–6 threads on 768-column matrices.
constexpr size_t kMinColumnsPerTask = 16;

}  // namespace

void matvec_multi_range(const float* x, int64_t rows, const TensorView& w, int64_t out_begin,
                        int64_t out_end, float* y) {
  TULU_CHECK(!dtype_is_quantized(w.dtype), "matvec_multi: ", dtype_name(w.dtype),
             " weights need the quantized kernels");
  TULU_CHECK(w.shape.size() == 2, "matvec_multi: weight of shape ", shape_to_string(w.shape),
             " is not a matrix");
  if (rows <= 0 || out_begin >= out_end) return;
  if (force_generic_kernels()) return matvec_multi_ref<float>(x, rows, w, out_begin, out_end, y);
  HWY_DYNAMIC_DISPATCH(MatvecMultiImpl)
  (x, rows, w.data, w.dtype, static_cast<size_t>(w.dim(1)), w.dim(0), out_begin, out_end, y);
}

void matvec_multi(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool) {
  TULU_CHECK(!dtype_is_quantized(w.dtype), "matvec_multi: ", dtype_name(w.dtype),
             " weights need the quantized kernels");
  const int64_t out = w.dim(0);
  if (rows <= 0 || out <= 0) return;
  // Tasks over tiles of 4 output columns, so that only the last task has a ragged tile.
  const auto tiles = static_cast<size_t>((out + 3) / 4);
  pool.parallel_for(tiles, kMinColumnsPerTask / 4, [&](size_t begin, size_t end) {
    matvec_multi_range(x, rows, w, static_cast<int64_t>(begin) * 4,
                       std::min(static_cast<int64_t>(end) * 4, out), y);
  });
}

}  // namespace tulu
#endif  // HWY_ONCE

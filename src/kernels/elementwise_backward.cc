// Highway fast paths of elementwise_backward.h, dispatched at run time.
#include "kernels/elementwise_backward.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/elementwise_backward.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/vec_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tulu {
namespace HWY_NAMESPACE {

// The same operations as SiluMulImpl (elementwise_hwy.cc), so silu_mul_to gives the bits
// silu_mul gives in place.
void SiluMulToImpl(const float* HWY_RESTRICT gate, const float* HWY_RESTRICT up,
                   float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto g = hn::LoadU(d, gate + i);
    const auto silu = hn::Div(g, hn::Add(one, hn::Exp(d, hn::Neg(g))));
    hn::StoreU(hn::Mul(silu, hn::LoadU(d, up + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void SiluMulBackwardImpl(const float* HWY_RESTRICT gate, const float* HWY_RESTRICT up,
                         const float* HWY_RESTRICT dh, float* HWY_RESTRICT dgate,
                         float* HWY_RESTRICT dup, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t lanes = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto g = hn::LoadU(d, gate + i), grad = hn::LoadU(d, dh + i);
    const auto denominator = hn::Add(one, hn::Exp(d, hn::Neg(g)));
    const auto sigmoid = hn::Div(one, denominator);
    const auto silu = hn::Div(g, denominator);
    hn::StoreU(hn::Mul(grad, silu), d, dup + i);
    const auto derivative = hn::Mul(sigmoid, hn::MulAdd(g, hn::Sub(one, sigmoid), one));
    hn::StoreU(hn::Mul(hn::Mul(grad, hn::LoadU(d, up + i)), derivative), d, dgate + i);
  }
  for (; i < n; ++i) {
    const float denominator = 1.0f + std::exp(-gate[i]);
    const float sigmoid = 1.0f / denominator;
    dup[i] = dh[i] * (gate[i] / denominator);
    dgate[i] = dh[i] * up[i] * (sigmoid * (1.0f + gate[i] * (1.0f - sigmoid)));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tulu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward_ref.h"
#include "kernels/elementwise_ref.h"

namespace tulu {

HWY_EXPORT(SiluMulToImpl);
HWY_EXPORT(SiluMulBackwardImpl);

void silu_mul_to(const float* gate, const float* up, float* out, size_t n) {
  if (force_generic_kernels()) {
    std::copy(gate, gate + n, out);
    return silu_mul_ref(out, up, n);
  }
  HWY_DYNAMIC_DISPATCH(SiluMulToImpl)(gate, up, out, n);
}

void silu_mul_backward(const float* gate, const float* up, const float* dh, float* dgate,
                       float* dup, size_t n) {
  if (force_generic_kernels()) return silu_mul_backward_ref(gate, up, dh, dgate, dup, n);
  HWY_DYNAMIC_DISPATCH(SiluMulBackwardImpl)(gate, up, dh, dgate, dup, n);
}

namespace {

// Elements per block of the pooled versions (see the header) and blocks per task at least.
constexpr size_t kElementBlock = 64;
constexpr size_t kMinBlocksPerTask = 64;

// fn(begin, end) over [0, n) in kElementBlock-aligned ranges split over the pool.
template <typename Fn>
void parallel_blocks(size_t n, ThreadPool& pool, const Fn& fn) {
  const size_t blocks = (n + kElementBlock - 1) / kElementBlock;
  pool.parallel_for(blocks, kMinBlocksPerTask, [&](size_t begin, size_t end) {
    const size_t first = begin * kElementBlock;
    fn(first, std::min(n, end * kElementBlock) - first);
  });
}

}  // namespace

void silu_mul_to(const float* gate, const float* up, float* out, size_t n, ThreadPool& pool) {
  parallel_blocks(n, pool, [&](size_t first, size_t count) {
    silu_mul_to(gate + first, up + first, out + first, count);
  });
}

void silu_mul_backward(const float* gate, const float* up, const float* dh, float* dgate,
                       float* dup, size_t n, ThreadPool& pool) {
  parallel_blocks(n, pool, [&](size_t first, size_t count) {
    silu_mul_backward(gate + first, up + first, dh + first, dgate + first, dup + first, count);
  });
}

void embedding_backward(std::span<const int> ids, const float* dout, int64_t hidden,
                        float* dtable) {
  if (force_generic_kernels()) return embedding_backward_ref(ids, dout, hidden, dtable);
  for (size_t t = 0; t < ids.size(); ++t) {  // add_inplace is the Highway y += x
    add_inplace(dtable + static_cast<int64_t>(ids[t]) * hidden,
                dout + static_cast<int64_t>(t) * hidden, static_cast<size_t>(hidden));
  }
}

}  // namespace tulu
#endif  // HWY_ONCE

// AdamW as torch.optim.AdamW's single-tensor path (torch 1.13, amsgrad off, not maximize)
// computes it on CPU in fp32, operation for operation:
//   param.mul_(1 - lr * weight_decay)                        python double → float scalar
//   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)          add_ with alpha is a fused
//                                                            multiply-add: fma(g, 1−β1, m·β1)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//                                                            v·β2 + ((1−β2)·g)·g, the last
//                                                            multiply-add fused
//   bias_correction1 = 1 - beta1 ** step, bias_correction2 = 1 - beta2 ** step  (double)
//   step_size = lr / bias_correction1; bias_correction2_sqrt = math.sqrt(bias_correction2)
//   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
//   param.addcdiv_(exp_avg, denom, value=-step_size)         p + ((−step_size)·m) / denom
// Every python scalar is rounded to float before it meets a tensor, as TensorIterator does.
// The two fusions are what torch's AVX2/AVX-512 kernels do (vec::fmadd in add_; GCC
// contracting addcmul's a + s·b·c); checked bit for bit against torch 1.13 on this machine's
// AVX2 build by tests/reference/make_optim_golden.py's inputs. std::fma keeps them exact on
// every CPU (this project compiles with -ffp-contract=off).
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tulu {

namespace {

// Elements per parallel chunk: large enough that dispatch costs nothing next to the work.
constexpr size_t kUpdateChunk = size_t{1} << 15;
// Elements per partial sum of the gradient norm; fixed (not per thread) so the norm does not
// depend on the thread count.
constexpr size_t kNormBlock = size_t{1} << 16;

struct AdamWScalars {
  float decay_factor;  // 1 − lr·wd (entries with weight decay)
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float bias_correction2_sqrt;
  float eps;
  float neg_step_size;  // −lr / (1 − β1ᵗ)
};

// On x86-64, a second copy compiled for FMA hardware is picked at load time (GCC/Clang
// function multiversioning): std::fma becomes one instruction and the loop vectorizes, with
// the same bits (fma, sqrt and division are correctly rounded either way); the default copy
// calls libm's fmaf.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void adamw_range(float* p, const float* g, float* m, float* v, size_t n, const AdamWScalars& s,
                 bool decay) {
  if (decay) {
    for (size_t i = 0; i < n; ++i) p[i] = p[i] * s.decay_factor;
  }
  for (size_t i = 0; i < n; ++i) {
    m[i] = std::fma(g[i], s.one_minus_beta1, m[i] * s.beta1);
    v[i] = std::fma(s.one_minus_beta2 * g[i], g[i], v[i] * s.beta2);
    const float denom = std::sqrt(v[i]) / s.bias_correction2_sqrt + s.eps;
    p[i] = p[i] + (s.neg_step_size * m[i]) / denom;
  }
}

}  // namespace

AdamW::AdamW(const ParamLayout& layout, AdamWOptions options)
    : layout_(layout), options_(options), m_(layout.total(), 0.0f), v_(layout.total(), 0.0f) {
  // torch.optim.AdamW's own checks.
  TULU_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0, "AdamW: beta1 must be in [0, 1), got ",
             options.beta1);
  TULU_CHECK(options.beta2 >= 0.0 && options.beta2 < 1.0, "AdamW: beta2 must be in [0, 1), got ",
             options.beta2);
  TULU_CHECK(options.eps >= 0.0 && std::isfinite(options.eps), "AdamW: eps must be >= 0, got ",
             options.eps);
  TULU_CHECK(options.weight_decay >= 0.0 && std::isfinite(options.weight_decay),
             "AdamW: weight decay must be >= 0, got ", options.weight_decay);
}

void AdamW::update(float* params, const float* grads, double lr, ThreadPool& pool) {
  TULU_CHECK(lr >= 0.0 && std::isfinite(lr), "AdamW: learning rate must be >= 0, got ", lr);
  TULU_CHECK(m_.size() == layout_.total() && v_.size() == layout_.total(),
             "AdamW: optimizer state has ", m_.size(), " / ", v_.size(), " values, layout ",
             layout_.total());
  ++step_;
  const double step = static_cast<double>(step_);
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, step);
  const double step_size = lr / bias_correction1;
  AdamWScalars s{};
  s.decay_factor = static_cast<float>(1.0 - lr * options_.weight_decay);
  s.beta1 = static_cast<float>(options_.beta1);
  s.one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
  s.beta2 = static_cast<float>(options_.beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
  s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  s.eps = static_cast<float>(options_.eps);
  s.neg_step_size = static_cast<float>(-step_size);
  const bool any_decay = options_.weight_decay != 0.0;

  const std::vector<ParamEntry>& entries = layout_.entries();
  pool.parallel_for(layout_.total(), kUpdateChunk, [&](size_t begin, size_t end) {
    // The entries overlapping [begin, end): the first one is found by binary search on the
    // offsets (entries are contiguous and in offset order).
    auto it = std::upper_bound(entries.begin(), entries.end(), begin,
                               [](size_t value, const ParamEntry& e) { return value < e.offset; });
    size_t index = static_cast<size_t>(it - entries.begin()) - 1;
    for (size_t pos = begin; pos < end; ++index) {
      const ParamEntry& entry = entries[index];
      const size_t stop = std::min(end, entry.offset + entry.numel);
      if (stop > pos) {
        adamw_range(params + pos, grads + pos, m_.data() + pos, v_.data() + pos, stop - pos, s,
                    any_decay && entry.weight_decay);
      }
      pos = std::max(pos, stop);
    }
  });
}

double clip_grad_norm(float* grads, size_t n, double max_norm, ThreadPool& pool) {
  const size_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(blocks, 0.0);
  pool.parallel_for(blocks, 1, [&](size_t first, size_t last) {
    for (size_t b = first; b < last; ++b) {
      const size_t begin = b * kNormBlock, end = std::min(n, begin + kNormBlock);
      double sum = 0.0;
      for (size_t i = begin; i < end; ++i) sum += static_cast<double>(grads[i]) * grads[i];
      partial[b] = sum;
    }
  });
  double sum = 0.0;
  for (double p : partial) sum += p;
  const double norm = std::sqrt(sum);
  if (max_norm <= 0.0 || !std::isfinite(norm)) return norm;
  // torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, clamped to 1,
  // then grads.mul_(coef) (multiplying by 1 changes nothing, so we skip it).
  const float coef = static_cast<float>(max_norm) / (static_cast<float>(norm) + 1e-6f);
  if (coef < 1.0f) {
    pool.parallel_for(n, kUpdateChunk, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) grads[i] = grads[i] * coef;
    });
  }
  return norm;
}

double clip_grad_norm(float* grads, size_t n, double max_norm) {
  ThreadPool inline_pool(1);
  return clip_grad_norm(grads, n, max_norm, inline_pool);
}

}  // namespace tulu

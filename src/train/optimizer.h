// AdamW exactly as torch.optim.AdamW (single-tensor path, fp32) computes it, over the flat
// parameter buffer of a ParamLayout, plus global-norm gradient clipping as
// torch.nn.utils.clip_grad_norm_ does it.
//   p ← p · (1 − lr · wd)            (decoupled decay; wd = 0 for entries without decay)
//   m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)
// with torch's fp32 roundings and operation order (see optimizer.cc). Element-wise, threaded
// over the pool in chunks: results do not depend on the thread count. The constructor
// checks the options as torch does (betas in [0, 1), eps ≥ 0, weight_decay ≥ 0).
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "train/param_set.h"

namespace tulu {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // applied to entries with weight_decay == true only
};

class AdamW {
 public:
  AdamW(const ParamLayout& layout, AdamWOptions options);
  // One update with learning rate lr; increments step(). params/grads: layout.total() floats.
  void update(float* params, const float* grads, double lr, ThreadPool& pool);
  int64_t step() const { return step_; }
  // State for checkpoints (resume): first/second moments, layout order.
  std::vector<float>& exp_avg() { return m_; }
  const std::vector<float>& exp_avg() const { return m_; }
  std::vector<float>& exp_avg_sq() { return v_; }
  const std::vector<float>& exp_avg_sq() const { return v_; }
  void set_step(int64_t step) { step_ = step; }
  const AdamWOptions& options() const { return options_; }

 private:
  const ParamLayout& layout_;
  AdamWOptions options_;
  std::vector<float> m_, v_;
  int64_t step_ = 0;
};

// Global L2 norm of the gradient: the square root of the sum of squares, accumulated in
// double over fixed blocks (so the result does not depend on the thread count); equal to
// torch's norm of per-parameter norms up to its fp32 rounding. When max_norm > 0, scales
// grads by coef = float(max_norm) / (float(norm) + 1e-6f) where coef < 1 (torch's clip
// coefficient, clamped to 1). Returns the norm before clipping. max_norm ≤ 0 = no clipping
// (norm still returned). A non-finite norm (inf/NaN gradients) is returned and the grads are
// left as they are: the caller must treat it as an error or skip the step.
double clip_grad_norm(float* grads, size_t n, double max_norm, ThreadPool& pool);
// The same on the calling thread.
double clip_grad_norm(float* grads, size_t n, double max_norm);

}  // namespace tulu

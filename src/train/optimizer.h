// AdamW exactly as torch.optim.AdamW (single-tensor path, fp32) computes it, over the flat
// parameter buffer of a ParamLayout, plus global-norm gradient clipping as
// torch.nn.utils.clip_grad_norm_ does it.
//   p ← p · (1 − lr · wd)            (decoupled decay; wd = 0 for entries without decay)
//   m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g²
//   p ← p − (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)
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

// Global L2 norm of the gradient (accumulated in double, as a sum of per-parameter squared
// norms). When max_norm > 0 and the norm exceeds it, scales grads by
// max_norm / (norm + 1e-6) (torch's clip coefficient, applied only when it is < 1).
// Returns the norm before clipping. max_norm ≤ 0 = no clipping (norm still returned).
double clip_grad_norm(float* grads, size_t n, double max_norm);

}  // namespace tulu

// AdamW and clip_grad_norm against torch.optim.AdamW / clip_grad_norm_ (goldens from
// tests/reference/make_optim_golden.py), plus the properties the goldens do not pin down:
// thread-count independence, decay only on matrices, option checks.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "core/error.h"
#include "optim_golden.h"
#include "train/lr_schedule.h"

namespace tulu {
namespace {

using optim_test::count_bit_equal;
using optim_test::count_mismatches;
using optim_test::count_mismatches_normwise;
using optim_test::floats;
using optim_test::golden;

// Bound on parameters and moments after every step: 1e-6 relative, norm-wise per parameter
// tensor (see count_mismatches_normwise). Without clipping the test demands equal bits.
constexpr double kRel = 1e-6;

std::vector<std::pair<size_t, size_t>> entry_ranges(const ParamLayout& layout) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const ParamEntry& e : layout.entries()) ranges.emplace_back(e.offset, e.offset + e.numel);
  return ranges;
}

TEST(AdamWGolden, LayoutIsTheGeneratorsRegistry) {
  const ParamLayout layout(optim_test::config_from(golden()["config"]), DType::F32);
  const Json& params = golden()["params"];
  ASSERT_EQ(layout.entries().size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(layout.entries()[i].name, params[i]["name"].get<std::string>());
    EXPECT_EQ(layout.entries()[i].shape, params[i]["shape"].get<std::vector<int64_t>>());
  }
}

TEST(AdamWGolden, MatchesTorchStepByStep) {
  const LlamaConfig config = optim_test::config_from(golden()["config"]);
  const ParamLayout layout(config, DType::F32);
  const auto ranges = entry_ranges(layout);
  ThreadPool pool(2);
  for (const Json& c : golden()["adamw"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    AdamWOptions options;
    options.beta1 = c["beta1"].get<double>();
    options.beta2 = c["beta2"].get<double>();
    options.eps = c["eps"].get<double>();
    options.weight_decay = c["weight_decay"].get<double>();
    AdamW adamw(layout, options);
    LrSchedule schedule;
    schedule.kind = parse_lr_schedule(c["schedule"].get<std::string>());
    schedule.base_lr = c["base_lr"].get<double>();
    schedule.total_steps = c["total_steps"].get<int64_t>();
    schedule.warmup_steps = c["warmup_steps"].get<int64_t>();
    const double max_norm = c["max_norm"].get<double>();

    std::vector<float> params = floats(c["params0"]);
    ASSERT_EQ(params.size(), layout.total());
    size_t bit_equal = 0, compared = 0;
    for (size_t s = 0; s < c["steps"].size(); ++s) {
      const Json& step = c["steps"][s];
      std::vector<float> grads = floats(c["grads"][s]);
      const double lr = schedule.lr_at(static_cast<int64_t>(s));
      EXPECT_DOUBLE_EQ(lr, step["lr"].get<double>()) << "step " << s;
      const double norm = clip_grad_norm(grads.data(), grads.size(), max_norm, pool);
      EXPECT_NEAR(norm, step["grad_norm"].get<double>(), 1e-6 * step["grad_norm"].get<double>())
          << "step " << s;
      adamw.update(params.data(), grads.data(), lr, pool);
      EXPECT_EQ(adamw.step(), static_cast<int64_t>(s + 1));
      const std::vector<float> want = floats(step["params"]);
      EXPECT_EQ(count_mismatches_normwise(params, want, ranges, kRel,
                                          name + " params after step " + std::to_string(s + 1)),
                0u);
      bit_equal += count_bit_equal(params, want);
      compared += want.size();
    }
    const std::vector<float> want_m = floats(c["exp_avg"]), want_v = floats(c["exp_avg_sq"]);
    EXPECT_EQ(count_mismatches_normwise(adamw.exp_avg(), want_m, ranges, kRel, name + " exp_avg"),
              0u);
    EXPECT_EQ(
        count_mismatches_normwise(adamw.exp_avg_sq(), want_v, ranges, kRel, name + " exp_avg_sq"),
        0u);
    std::cout << name << ": " << bit_equal << " of " << compared
              << " parameter values bit-equal to torch\n";
    if (max_norm <= 0) {
      // Without clipping every input to AdamW is torch's exactly, and so is every operation.
      EXPECT_EQ(bit_equal, compared);
      EXPECT_EQ(count_bit_equal(adamw.exp_avg(), want_m), want_m.size());
      EXPECT_EQ(count_bit_equal(adamw.exp_avg_sq(), want_v), want_v.size());
    }
  }
}

TEST(ClipGradNormGolden, MatchesTorch) {
  for (const Json& c : golden()["clip"]) {
    std::vector<float> grads = floats(c["grads"]);
    const double norm = clip_grad_norm(grads.data(), grads.size(), c["max_norm"].get<double>());
    EXPECT_NEAR(norm, c["norm"].get<double>(), 1e-6 * c["norm"].get<double>());
    EXPECT_EQ(count_mismatches(grads, floats(c["clipped"]), 1e-6, 1e-30, "clipped grads"), 0u);
  }
}

TEST(ClipGradNorm, NoClippingWhenOffOrBelowTheLimit) {
  std::vector<float> grads = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads.data(), 2, 0.0), 5.0);
  EXPECT_EQ(grads, (std::vector<float>{3.0f, 4.0f}));
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads.data(), 2, -1.0), 5.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads.data(), 2, 10.0), 5.0);
  EXPECT_EQ(grads, (std::vector<float>{3.0f, 4.0f}));
  // Clipped: the new norm is max_norm up to torch's 1e-6 guard.
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads.data(), 2, 1.0), 5.0);
  EXPECT_NEAR(std::hypot(grads[0], grads[1]), 1.0, 1e-6);
  EXPECT_DOUBLE_EQ(clip_grad_norm(nullptr, 0, 1.0), 0.0);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradsAlone) {
  std::vector<float> grads = {1.0f, INFINITY, 2.0f};
  EXPECT_TRUE(std::isinf(clip_grad_norm(grads.data(), 3, 1.0)));
  EXPECT_EQ(grads[0], 1.0f);
  grads[1] = NAN;
  EXPECT_TRUE(std::isnan(clip_grad_norm(grads.data(), 3, 1.0)));
  EXPECT_EQ(grads[2], 2.0f);
}

LlamaConfig mid_config() {
  return parse_llama_config({{"hidden_size", 64},
                             {"intermediate_size", 160},
                             {"num_hidden_layers", 2},
                             {"num_attention_heads", 4},
                             {"num_key_value_heads", 2},
                             {"vocab_size", 301}},
                            "test");
}

std::vector<float> pattern(size_t n, double a, double scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(std::sin(static_cast<double>(i) * a) * scale);
  return v;
}

TEST(AdamW, ThreadCountDoesNotChangeAnyBit) {
  const ParamLayout layout(mid_config(), DType::F32);
  ASSERT_GT(layout.total(), size_t{100000});  // several parallel chunks
  AdamWOptions options;
  options.weight_decay = 0.1;
  std::vector<float> p1 = pattern(layout.total(), 0.37, 1.0), p4 = p1;
  AdamW one(layout, options), four(layout, options);
  ThreadPool pool1(1), pool4(4);
  for (int s = 0; s < 3; ++s) {
    std::vector<float> g1 = pattern(layout.total(), 0.11 + s, 0.5 + s), g4 = g1;
    EXPECT_EQ(clip_grad_norm(g1.data(), g1.size(), 1.0, pool1),
              clip_grad_norm(g4.data(), g4.size(), 1.0, pool4));
    one.update(p1.data(), g1.data(), 1e-3, pool1);
    four.update(p4.data(), g4.data(), 1e-3, pool4);
  }
  EXPECT_EQ(p1, p4);
  EXPECT_EQ(one.exp_avg(), four.exp_avg());
  EXPECT_EQ(one.exp_avg_sq(), four.exp_avg_sq());
}

TEST(AdamW, WeightDecayOnlyOnMatrices) {
  const ParamLayout layout(mid_config(), DType::F32);
  AdamWOptions options;
  options.weight_decay = 0.25;
  AdamW adamw(layout, options);
  const std::vector<float> before = pattern(layout.total(), 0.37, 1.0);
  std::vector<float> params = before;
  const std::vector<float> zero(layout.total(), 0.0f);
  ThreadPool pool(3);
  const double lr = 0.01;
  // Zero gradients: moments stay 0 and the Adam term is 0 / (0 + eps) = 0, so only decay acts.
  adamw.update(params.data(), zero.data(), lr, pool);
  const float factor = static_cast<float>(1.0 - lr * options.weight_decay);
  size_t decayed = 0, kept = 0;
  for (const ParamEntry& e : layout.entries()) {
    for (size_t i = e.offset; i < e.offset + e.numel; ++i) {
      if (e.weight_decay) {
        ASSERT_EQ(params[i], before[i] * factor) << e.name;
      } else {
        ASSERT_EQ(params[i], before[i]) << e.name;
      }
    }
    (e.weight_decay ? decayed : kept) += 1;
  }
  EXPECT_EQ(kept, 2u * 2 + 1);  // two norms per layer + the final norm
  EXPECT_GT(decayed, 0u);
}

TEST(AdamW, StepCountAndBiasCorrection) {
  // One element, one step: m = (1−β1)g, v = (1−β2)g², bias-corrected to g and g², so the
  // update is lr · g / (|g| + eps) = lr (up to eps and roundings).
  const ParamLayout layout(mid_config(), DType::F32);
  AdamW adamw(layout, {});
  std::vector<float> params(layout.total(), 1.0f), grads(layout.total(), 0.5f);
  ThreadPool pool(1);
  adamw.update(params.data(), grads.data(), 0.01, pool);
  EXPECT_EQ(adamw.step(), 1);
  EXPECT_NEAR(params[0], 0.99f, 1e-6);
  adamw.set_step(10);
  adamw.update(params.data(), grads.data(), 0.0, pool);  // lr 0: moments move, params do not
  EXPECT_EQ(adamw.step(), 11);
  EXPECT_NEAR(params[0], 0.99f, 1e-6);
  EXPECT_NEAR(adamw.exp_avg()[0], 0.05f * 0.9f + 0.05f, 1e-7);
}

TEST(AdamW, RejectsBadOptions) {
  const ParamLayout layout(mid_config(), DType::F32);
  auto with = [&](double b1, double b2, double eps, double wd) {
    AdamWOptions o;
    o.beta1 = b1, o.beta2 = b2, o.eps = eps, o.weight_decay = wd;
    AdamW adamw(layout, o);
  };
  EXPECT_THROW(with(1.0, 0.999, 1e-8, 0), Error);
  EXPECT_THROW(with(-0.1, 0.999, 1e-8, 0), Error);
  EXPECT_THROW(with(0.9, 1.0, 1e-8, 0), Error);
  EXPECT_THROW(with(0.9, 0.999, -1.0, 0), Error);
  EXPECT_THROW(with(0.9, 0.999, 1e-8, -0.1), Error);
  EXPECT_THROW(with(0.9, 0.999, NAN, 0), Error);
  EXPECT_NO_THROW(with(0.0, 0.0, 0.0, 0.0));
  AdamW adamw(layout, {});
  std::vector<float> p(layout.total()), g(layout.total());
  ThreadPool pool(1);
  try {
    adamw.update(p.data(), g.data(), -1e-3, pool);
    ADD_FAILURE() << "negative lr accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("learning rate"), std::string::npos) << e.what();
  }
  EXPECT_EQ(adamw.step(), 0);
}

}  // namespace
}  // namespace tulu

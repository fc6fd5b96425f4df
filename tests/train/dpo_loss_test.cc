// DPO loss family: every output of dpo_pair_loss and every DPO metric equals the PyTorch
// reference (tests/reference/dpo_loss_reference.py → tests/data/dpo_loss/golden.json) within
// 1e-10 relative; analytic gradients equal central finite differences; bad input is refused.
#include "train/dpo_loss.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"

namespace tulu {
namespace {

const std::string kGolden = std::string(TULU_TEST_DATA) + "/dpo_loss/golden.json";

// |a − b| ≤ 1e-10 · max(|a|, |b|); exact zeros must match exactly (up to the sign of zero).
::testing::AssertionResult close(double want, double got, const std::string& what) {
  const double scale = std::max(std::abs(want), std::abs(got));
  if (std::abs(want - got) <= 1e-10 * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": reference " << want << ", got " << got << " (relative difference "
         << std::abs(want - got) / scale << ")";
}

DpoLossOptions options_from(const Json& j) {
  DpoLossOptions options;
  options.type = parse_dpo_loss(j.at("type").get<std::string>());
  options.beta = j.at("beta").get<double>();
  options.label_smoothing = j.at("label_smoothing").get<double>();
  options.simpo_gamma_beta_ratio = j.at("simpo_gamma_beta_ratio").get<double>();
  return options;
}

DpoPairInput input_from(const Json& j) {
  DpoPairInput in;
  in.policy_chosen = j.at("policy_chosen").get<double>();
  in.policy_rejected = j.at("policy_rejected").get<double>();
  in.ref_chosen = j.at("ref_chosen").get<double>();
  in.ref_rejected = j.at("ref_rejected").get<double>();
  in.chosen_tokens = j.at("chosen_tokens").get<int64_t>();
  in.rejected_tokens = j.at("rejected_tokens").get<int64_t>();
  return in;
}

TEST(DpoLoss, EqualsPyTorchReferenceForEveryLossType) {
  const Json golden = read_json_file(kGolden);
  const Json& cases = golden.at("cases");
  ASSERT_GE(cases.size(), 200u);
  std::vector<std::string> types_seen;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Json& c = cases[i];
    const DpoLossOptions options = options_from(c.at("options"));
    const DpoPairOutput out = dpo_pair_loss(input_from(c.at("input")), options);
    const Json& want = c.at("expected");
    const std::string where = "case " + std::to_string(i) + " (" + dpo_loss_name(options.type) +
                              ", beta " + std::to_string(options.beta) + ", eps " +
                              std::to_string(options.label_smoothing) + ")";
    EXPECT_TRUE(close(want.at("loss").get<double>(), out.loss, where + " loss"));
    EXPECT_TRUE(close(want.at("grad_policy_chosen").get<double>(), out.grad_policy_chosen,
                      where + " grad_policy_chosen"));
    EXPECT_TRUE(close(want.at("grad_policy_rejected").get<double>(), out.grad_policy_rejected,
                      where + " grad_policy_rejected"));
    EXPECT_TRUE(
        close(want.at("reward_chosen").get<double>(), out.reward_chosen, where + " reward_chosen"));
    EXPECT_TRUE(close(want.at("reward_rejected").get<double>(), out.reward_rejected,
                      where + " reward_rejected"));
    EXPECT_TRUE(
        close(want.at("logps_chosen").get<double>(), out.logps_chosen, where + " logps_chosen"));
    EXPECT_TRUE(close(want.at("logps_rejected").get<double>(), out.logps_rejected,
                      where + " logps_rejected"));
    EXPECT_TRUE(std::isfinite(out.loss) && std::isfinite(out.grad_policy_chosen) &&
                std::isfinite(out.grad_policy_rejected))
        << where;
    types_seen.push_back(dpo_loss_name(options.type));
  }
  for (const char* name : {"sigmoid", "ipo", "hinge", "dpo_norm", "simpo"}) {
    EXPECT_NE(std::find(types_seen.begin(), types_seen.end(), name), types_seen.end()) << name;
  }
}

TEST(DpoLoss, MetricsEqualTrlDefinitions) {
  const Json golden = read_json_file(kGolden);
  const Json& batches = golden.at("batches");
  ASSERT_GE(batches.size(), 20u);
  for (size_t b = 0; b < batches.size(); ++b) {
    const Json& batch = batches[b];
    const DpoLossOptions options = options_from(batch.at("options"));
    // Added in two halves and merged, as micro-batches of one optimizer step are.
    DpoMetrics first;
    DpoMetrics second;
    const Json& inputs = batch.at("inputs");
    for (size_t i = 0; i < inputs.size(); ++i) {
      DpoMetrics& part = i < inputs.size() / 2 ? first : second;
      part.add(dpo_pair_loss(input_from(inputs[i]), options));
      const Json& lc = batch.at("logits_chosen")[i];
      const Json& lr = batch.at("logits_rejected")[i];
      part.add_logits(lc[0].get<double>(), lc[1].get<int64_t>(), lr[0].get<double>(),
                      lr[1].get<int64_t>());
    }
    first.merge(second);
    ASSERT_EQ(first.pairs, static_cast<int64_t>(inputs.size()));
    for (const std::string prefix : {"", "eval_"}) {
      const Json row = first.to_json(prefix);
      const Json& want = batch.at("expected");
      ASSERT_EQ(row.size(), want.size()) << row.dump();
      for (auto it = want.begin(); it != want.end(); ++it) {
        ASSERT_TRUE(row.contains(prefix + it.key())) << prefix + it.key() << " in " << row.dump();
        EXPECT_TRUE(close(it.value().get<double>(), row.at(prefix + it.key()).get<double>(),
                          "batch " + std::to_string(b) + " " + prefix + it.key()));
      }
    }
  }
}

TEST(DpoLoss, MetricsWithoutLogitsLeaveThemOutAndEmptyIsAnError) {
  DpoMetrics metrics;
  EXPECT_THROW(metrics.to_json(), Error);
  DpoPairInput in;
  in.policy_chosen = -3;
  in.policy_rejected = -5;
  in.ref_chosen = -4;
  in.ref_rejected = -4;
  in.chosen_tokens = 2;
  in.rejected_tokens = 3;
  metrics.add(dpo_pair_loss(in, DpoLossOptions{}));
  const Json row = metrics.to_json();
  EXPECT_FALSE(row.contains("logits/chosen"));
  EXPECT_DOUBLE_EQ(row.at("rewards/accuracies").get<double>(), 1.0);
  EXPECT_NEAR(row.at("rewards/chosen").get<double>(), 0.1, 1e-15);
  EXPECT_NEAR(row.at("rewards/rejected").get<double>(), -0.1, 1e-15);
  EXPECT_NEAR(row.at("rewards/margins").get<double>(), 0.2, 1e-15);
  EXPECT_NEAR(row.at("loss").get<double>(), std::log1p(std::exp(-0.2)), 1e-15);
}

// ∂loss/∂(summed policy log-probs) against central differences, at random points of every loss
// type (away from hinge's kink, where the derivative does not exist).
TEST(DpoLoss, GradientsEqualFiniteDifferences) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> logp(-60.0, -0.5);
  std::uniform_int_distribution<int64_t> length(1, 40);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int checked = 0;
  for (const DpoLossType type : {DpoLossType::Sigmoid, DpoLossType::Ipo, DpoLossType::Hinge,
                                 DpoLossType::DpoNorm, DpoLossType::Simpo}) {
    for (int trial = 0; trial < 200; ++trial) {
      DpoLossOptions options;
      options.type = type;
      options.beta = 0.05 + unit(rng);
      options.label_smoothing = unit(rng) < 0.5 ? 0.0 : 0.4 * unit(rng);
      options.simpo_gamma_beta_ratio = 2 * unit(rng);
      DpoPairInput in;
      in.policy_chosen = logp(rng);
      in.policy_rejected = logp(rng);
      in.ref_chosen = in.policy_chosen + 10 * (unit(rng) - 0.5);
      in.ref_rejected = in.policy_rejected + 10 * (unit(rng) - 0.5);
      in.chosen_tokens = length(rng);
      in.rejected_tokens = length(rng);
      const DpoPairOutput out = dpo_pair_loss(in, options);
      const double h = 1e-5;
      for (int side = 0; side < 2; ++side) {
        DpoPairInput plus = in;
        DpoPairInput minus = in;
        (side == 0 ? plus.policy_chosen : plus.policy_rejected) += h;
        (side == 0 ? minus.policy_chosen : minus.policy_rejected) -= h;
        const double lp = dpo_pair_loss(plus, options).loss;
        const double lm = dpo_pair_loss(minus, options).loss;
        if (type == DpoLossType::Hinge && (lp == 0.0) != (lm == 0.0)) continue;  // the kink
        const double numeric = (lp - lm) / (2 * h);
        const double analytic = side == 0 ? out.grad_policy_chosen : out.grad_policy_rejected;
        EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric)) + 1e-9)
            << dpo_loss_name(type) << " side " << side << " trial " << trial;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1900);
}

TEST(DpoLoss, ExtremeLogitsStayFinite) {
  for (const DpoLossType type : {DpoLossType::Sigmoid, DpoLossType::DpoNorm, DpoLossType::Simpo}) {
    for (const double gap : {1e6, -1e6, 1e300, -1e300}) {
      DpoLossOptions options;
      options.type = type;
      options.label_smoothing = 0.1;
      DpoPairInput in;
      in.policy_chosen = gap > 0 ? -1.0 : -1.0 + gap;
      in.policy_rejected = gap > 0 ? -1.0 - gap : -1.0;
      in.chosen_tokens = 1;
      in.rejected_tokens = 1;
      const DpoPairOutput out = dpo_pair_loss(in, options);
      EXPECT_TRUE(std::isfinite(out.loss)) << dpo_loss_name(type) << " " << gap;
      EXPECT_TRUE(std::isfinite(out.grad_policy_chosen)) << dpo_loss_name(type) << " " << gap;
      // With smoothing ε the gradient tends to ±β·ε or ∓β·(1−ε), never 0.
      EXPECT_NE(out.grad_policy_chosen, 0.0) << dpo_loss_name(type) << " " << gap;
    }
  }
}

TEST(DpoLoss, SummedAndAveragedLossesAndReferenceUse) {
  EXPECT_FALSE(dpo_loss_averages_logps(DpoLossType::Sigmoid));
  EXPECT_FALSE(dpo_loss_averages_logps(DpoLossType::Hinge));
  EXPECT_TRUE(dpo_loss_averages_logps(DpoLossType::Ipo));
  EXPECT_TRUE(dpo_loss_averages_logps(DpoLossType::DpoNorm));
  EXPECT_TRUE(dpo_loss_averages_logps(DpoLossType::Simpo));
  EXPECT_FALSE(dpo_loss_uses_reference(DpoLossType::Simpo));
  EXPECT_TRUE(dpo_loss_uses_reference(DpoLossType::Sigmoid));
  EXPECT_FALSE(dpo_loss_uses_label_smoothing(DpoLossType::Ipo));
  EXPECT_FALSE(dpo_loss_uses_label_smoothing(DpoLossType::Hinge));
  EXPECT_TRUE(dpo_loss_uses_label_smoothing(DpoLossType::Simpo));
  // SimPO ignores the reference entirely.
  DpoLossOptions simpo;
  simpo.type = DpoLossType::Simpo;
  DpoPairInput a;
  a.policy_chosen = -4;
  a.policy_rejected = -9;
  a.chosen_tokens = 2;
  a.rejected_tokens = 3;
  DpoPairInput b = a;
  b.ref_chosen = -100;
  b.ref_rejected = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(dpo_pair_loss(a, simpo).loss, dpo_pair_loss(b, simpo).loss);
}

TEST(DpoLoss, BadInputIsRefused) {
  for (const char* name : {"sigmoid", "ipo", "hinge", "dpo_norm", "simpo"}) {
    EXPECT_STREQ(dpo_loss_name(parse_dpo_loss(name)), name);
  }
  try {
    parse_dpo_loss("kto");
    FAIL() << "kto accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'kto'"), std::string::npos) << message;
    EXPECT_NE(message.find("sigmoid, ipo, hinge, dpo_norm, simpo"), std::string::npos) << message;
  }
  DpoLossOptions options;
  EXPECT_NO_THROW(validate_dpo_options(options));
  options.beta = 0;
  EXPECT_THROW(validate_dpo_options(options), Error);
  options.beta = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(validate_dpo_options(options), Error);
  options.beta = 0.1;
  options.label_smoothing = 0.6;
  EXPECT_THROW(validate_dpo_options(options), Error);
  options.label_smoothing = -0.1;
  EXPECT_THROW(validate_dpo_options(options), Error);
  options.label_smoothing = 0;
  options.simpo_gamma_beta_ratio = std::numeric_limits<double>::infinity();
  EXPECT_THROW(validate_dpo_options(options), Error);

  DpoPairInput in;
  in.policy_chosen = -1;
  in.policy_rejected = -2;
  in.chosen_tokens = 0;  // nothing scored
  in.rejected_tokens = 4;
  EXPECT_NO_THROW(dpo_pair_loss(in, DpoLossOptions{}));  // summed: the length is not used
  for (const DpoLossType type : {DpoLossType::Ipo, DpoLossType::DpoNorm, DpoLossType::Simpo}) {
    DpoLossOptions averaged;
    averaged.type = type;
    EXPECT_THROW(dpo_pair_loss(in, averaged), Error) << dpo_loss_name(type);
  }
  in.chosen_tokens = 3;
  in.policy_rejected = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(dpo_pair_loss(in, DpoLossOptions{}), Error);
  in.policy_rejected = -2;
  in.ref_chosen = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(dpo_pair_loss(in, DpoLossOptions{}), Error);
}

}  // namespace
}  // namespace tulu

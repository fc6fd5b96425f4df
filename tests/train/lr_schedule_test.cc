// Learning-rate schedules against torch's LambdaLR with transformers' lambdas, and the step
// arithmetic against open-instruct's (goldens from tests/reference/make_optim_golden.py).
#include "train/lr_schedule.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "optim_golden.h"

namespace tulu {
namespace {

using optim_test::golden;

TEST(LrScheduleGolden, EveryStepOfEveryKindMatchesLambdaLR) {
  size_t checked = 0;
  for (const Json& c : golden()["schedules"]) {
    LrSchedule schedule;
    schedule.kind = parse_lr_schedule(c["kind"].get<std::string>());
    schedule.base_lr = c["base_lr"].get<double>();
    schedule.total_steps = c["total_steps"].get<int64_t>();
    schedule.warmup_steps = c["warmup_steps"].get<int64_t>();
    const Json& lrs = c["lrs"];
    for (size_t s = 0; s < lrs.size(); ++s) {
      // Same double operations in the same order: equal, not merely close.
      EXPECT_EQ(schedule.lr_at(static_cast<int64_t>(s)), lrs[s].get<double>())
          << c["kind"] << " total " << schedule.total_steps << " warmup " << schedule.warmup_steps
          << " step " << s;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300u);
}

TEST(LrSchedule, Shapes) {
  LrSchedule linear{LrScheduleKind::Linear, 1.0, 10, 2};
  EXPECT_EQ(linear.lr_at(0), 0.0);  // the first update of a warm-up has lr 0, as in transformers
  EXPECT_EQ(linear.lr_at(1), 0.5);
  EXPECT_EQ(linear.lr_at(2), 1.0);
  EXPECT_EQ(linear.lr_at(6), 0.5);
  EXPECT_EQ(linear.lr_at(10), 0.0);
  EXPECT_EQ(linear.lr_at(50), 0.0);
  LrSchedule cosine{LrScheduleKind::Cosine, 1.0, 12, 2};
  EXPECT_EQ(cosine.lr_at(2), 1.0);
  EXPECT_NEAR(cosine.lr_at(7), 0.5, 1e-15);
  EXPECT_NEAR(cosine.lr_at(12), 0.0, 1e-15);
  LrSchedule constant{LrScheduleKind::Constant, 3.0, 5, 0};
  EXPECT_EQ(constant.lr_at(0), 3.0);
  EXPECT_EQ(constant.lr_at(1000), 3.0);
  EXPECT_THROW(constant.lr_at(-1), Error);
}

TEST(LrSchedule, Names) {
  for (auto kind : {LrScheduleKind::Linear, LrScheduleKind::Cosine, LrScheduleKind::Constant}) {
    EXPECT_EQ(parse_lr_schedule(lr_schedule_name(kind)), kind);
  }
  try {
    parse_lr_schedule("cosine_with_restarts");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cosine_with_restarts"), std::string::npos) << message;
    EXPECT_NE(message.find("linear, cosine or constant"), std::string::npos) << message;
  }
  EXPECT_THROW(parse_lr_schedule(""), Error);
  EXPECT_THROW(parse_lr_schedule("Linear"), Error);
}

TEST(StepArithmeticGolden, MatchesOpenInstruct) {
  for (const Json& c : golden()["steps"]) {
    const int64_t per_epoch =
        steps_per_epoch(c["micro_batches"].get<int64_t>(), c["grad_accum"].get<int64_t>());
    EXPECT_EQ(per_epoch, c["steps_per_epoch"].get<int64_t>()) << c;
    const int64_t total = per_epoch * c["epochs"].get<int64_t>();
    EXPECT_EQ(total, c["total_steps"].get<int64_t>()) << c;
    EXPECT_EQ(warmup_steps_for(total, c["warmup_ratio"].get<double>()),
              c["warmup_steps"].get<int64_t>())
        << c;
  }
}

TEST(StepArithmetic, RejectsBadValues) {
  EXPECT_THROW(steps_per_epoch(10, 0), Error);
  EXPECT_THROW(steps_per_epoch(-1, 1), Error);
  EXPECT_THROW(warmup_steps_for(10, -0.1), Error);
  EXPECT_THROW(warmup_steps_for(10, 1.5), Error);
  EXPECT_THROW(warmup_steps_for(10, NAN), Error);
  EXPECT_THROW(warmup_steps_for(-1, 0.1), Error);
}

}  // namespace
}  // namespace tulu

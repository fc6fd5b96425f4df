// The SFT loop's bookkeeping: step arithmetic (open-instruct's ceil(micro / accum), the
// effective-batch derivation and its clamp, --max-steps), the resume fingerprint check,
// metrics.jsonl truncation on resume (rows after the checkpoint and a killed run's partial
// line dropped), checkpoint listing in numeric order and pruning, the progress line
// (durations, how many lines a non-interactive run prints) and the --dump-grads batch path.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file_io.h"
#include "train/grad_dump.h"
#include "train/metrics_log.h"
#include "train/sft_run.h"
#include "train/train_progress.h"

namespace tulu {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tulu_sft_parts_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

SftOptions options(int64_t batch, int64_t accum, int64_t epochs) {
  SftOptions o;
  o.batch_size = batch;
  o.grad_accum = accum;
  o.epochs = epochs;
  return o;
}

TEST(SftPlan, StepsAreCeilOfMicroBatchesOverAccumulation) {
  struct Case {
    int64_t examples, batch, accum, epochs, micro, used_accum, per_epoch;
  };
  const Case cases[] = {
      {10, 3, 2, 2, 4, 2, 2}, {7, 2, 3, 3, 4, 3, 2}, {5, 1, 1, 1, 5, 1, 5},
      {1, 1, 1, 1, 1, 1, 1},  {4, 1, 9, 2, 4, 4, 1}, {1000, 8, 16, 2, 125, 16, 8},
  };
  for (const Case& c : cases) {
    const SftPlan plan = resolve_sft_plan(options(c.batch, c.accum, c.epochs), c.examples);
    EXPECT_EQ(plan.micro_batches_per_epoch, c.micro) << c.examples << "/" << c.batch;
    EXPECT_EQ(plan.grad_accum, c.used_accum);
    EXPECT_EQ(plan.grad_accum_clamped, c.used_accum < c.accum);
    EXPECT_EQ(plan.steps_per_epoch, c.per_epoch);
    EXPECT_EQ(plan.total_steps, c.per_epoch * c.epochs);
  }
}

TEST(SftPlan, EffectiveBatchDerivesAccumulationAndWarmup) {
  SftOptions o = options(4, 0, 2);
  o.effective_batch = 128;
  SftPlan plan = resolve_sft_plan(o, 100000);  // 25000 micro-batches
  EXPECT_EQ(plan.grad_accum, 32);
  EXPECT_EQ(plan.steps_per_epoch, 782);  // ceil(25000 / 32)
  EXPECT_EQ(plan.total_steps, 1564);
  EXPECT_EQ(plan.warmup_steps, 46);  // int(1564 × 0.03)
  o.effective_batch = 2;             // smaller than a micro-batch: one micro-batch per step
  EXPECT_EQ(resolve_sft_plan(o, 10).grad_accum, 1);
  o.warmup_steps = 7;
  o.max_steps = 50;
  plan = resolve_sft_plan(o, 10);
  EXPECT_EQ(plan.total_steps, 50);
  EXPECT_EQ(plan.warmup_steps, 7);
  EXPECT_THROW(resolve_sft_plan(o, 0), Error);
}

TEST(SftFingerprint, EqualPassesAndEveryDifferenceIsNamed) {
  SftOptions o = options(2, 2, 3);
  o.data_path = "data.jsonl";
  const SftPlan plan = resolve_sft_plan(o, 20);
  const Json saved = parse_json(sft_run_fingerprint(o, plan).dump(), "saved");
  EXPECT_NO_THROW(check_sft_run_fingerprint(saved, sft_run_fingerprint(o, plan), "ckpt"));
  SftOptions other = o;
  other.lr = 1e-4;
  other.seed = 7;
  try {
    check_sft_run_fingerprint(saved, sft_run_fingerprint(other, plan), "ckpt");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--lr: 2e-05 then, 0.0001 now"), std::string::npos) << message;
    EXPECT_NE(message.find("--seed: 42 then, 7 now"), std::string::npos) << message;
    EXPECT_NE(message.find("ckpt"), std::string::npos) << message;
  }
  Json incomplete = saved;
  incomplete.erase("seed");
  EXPECT_THROW(check_sft_run_fingerprint(incomplete, sft_run_fingerprint(o, plan), "ckpt"), Error);
  EXPECT_THROW(check_sft_run_fingerprint(Json(), sft_run_fingerprint(o, plan), "ckpt"), Error);
}

TEST(MetricsLog, ResumeKeepsRowsThroughTheCheckpointAndDropsAPartialLine) {
  const std::string path = join_path(temp_dir("metrics"), "metrics.jsonl");
  {
    MetricsLog log = MetricsLog::create(path);
    for (int step = 1; step <= 5; ++step) log.write(Json{{"step", step}, {"loss", 1.0 / step}});
    log.write(Json{{"step", 4}, {"eval_loss", 0.5}});
  }
  {
    std::ofstream append(path, std::ios::app);
    append << "{\"step\": 6, \"lo";  // killed mid-write
  }
  {
    MetricsLog log = MetricsLog::resume(path, 4);
    EXPECT_EQ(log.kept_rows(), 5);  // steps 1-4 and the eval row at 4
    log.write(Json{{"step", 5}, {"loss", 9.0}});
  }
  const std::string text = read_text_file(path);
  EXPECT_EQ(text,
            "{\"loss\":1.0,\"step\":1}\n{\"loss\":0.5,\"step\":2}\n"
            "{\"loss\":0.3333333333333333,\"step\":3}\n{\"loss\":0.25,\"step\":4}\n"
            "{\"eval_loss\":0.5,\"step\":4}\n{\"loss\":9.0,\"step\":5}\n");
  // A missing file starts empty; a malformed complete line names the file and line.
  const std::string fresh = join_path(temp_dir("metrics_fresh"), "metrics.jsonl");
  EXPECT_EQ(MetricsLog::resume(fresh, 3).kept_rows(), 0);
  write_file_atomic(path, "{\"step\":1}\n[1, 2]\n");
  try {
    MetricsLog::resume(path, 3);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(Checkpoints, ListedInNumericOrderAndPruned) {
  const std::string dir = temp_dir("checkpoints");
  for (const char* name : {"checkpoint-10", "checkpoint-9", "checkpoint-100", "checkpoint-x",
                           "checkpoint-", ".checkpoint-11.tmp-1"}) {
    fs::create_directories(join_path(dir, name));
  }
  write_file_atomic(join_path(dir, "checkpoint-7"), "a file, not a checkpoint");
  std::vector<std::string> names;
  for (const auto& p : list_checkpoints(dir)) names.push_back(fs::path(p).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-9", "checkpoint-10", "checkpoint-100"}));
  prune_checkpoints(dir, 0);
  EXPECT_EQ(list_checkpoints(dir).size(), 3u);
  prune_checkpoints(dir, 2);
  names.clear();
  for (const auto& p : list_checkpoints(dir)) names.push_back(fs::path(p).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-10", "checkpoint-100"}));
  EXPECT_TRUE(list_checkpoints(join_path(dir, "absent")).empty());
}

TEST(TrainProgress, DurationsAndNonInteractiveLineCount) {
  EXPECT_EQ(TrainProgress::format_duration(0), "0:00");
  EXPECT_EQ(TrainProgress::format_duration(125.4), "2:05");
  EXPECT_EQ(TrainProgress::format_duration(3723), "1:02:03");
  EXPECT_EQ(TrainProgress::format_duration(-1), "?");
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  TrainProgress progress(100, 0, /*enabled=*/true, out, /*interactive=*/false);
  for (int64_t step = 1; step <= 100; ++step)
    progress.update({step, step / 10.0, 1.5, 1e-5, 0.3, 64, {}});
  progress.finish();
  std::rewind(out);
  int lines = 0;
  char buffer[512];
  std::string last;
  while (std::fgets(buffer, sizeof buffer, out) != nullptr) {
    ++lines;
    last = buffer;
  }
  std::fclose(out);
  EXPECT_EQ(lines, 11);  // step 1 and every 10th step (within 30 s)
  EXPECT_NE(last.find("step 100/100"), std::string::npos) << last;
  EXPECT_NE(last.find("loss 1.5000"), std::string::npos) << last;
  EXPECT_NE(last.find("tok/s"), std::string::npos) << last;
}

TEST(GradDump, BatchPathReplacesTheSafetensorsSuffix) {
  EXPECT_EQ(grad_dump_batch_path("out/g.safetensors"), "out/g.batch.json");
  EXPECT_EQ(grad_dump_batch_path("grads"), "grads.batch.json");
  EXPECT_EQ(grad_dump_batch_path(".safetensors"), ".safetensors.batch.json");
}

}  // namespace
}  // namespace tulu

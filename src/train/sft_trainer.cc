// run_sft: validation → model, tokenizer and data → the step plan and a summary → either the
// first step's gradient (--dump-grads) or the training loop with metrics, progress,
// evaluation and checkpoints, resumable bit for bit.
#include "train/sft_trainer.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/file_io.h"
#include "core/thread_pool.h"
#include "llama/model.h"
#include "tokenizer/tokenizer.h"
#include "train/batching.h"
#include "train/grad_dump.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/param_set.h"
#include "train/sft_data.h"
#include "train/sft_run.h"
#include "train/sft_step.h"
#include "train/train_checkpoint.h"
#include "train/train_loop.h"
#include "train/train_model.h"
#include "train/train_progress.h"
#include "train/train_setup.h"

namespace tulu {

namespace fs = std::filesystem;

namespace {

std::string mib(double bytes) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buffer;
}

std::string describe_data(const SftDataset& d, int64_t max_seq_length) {
  int64_t tokens = 0, targets = 0;
  for (const SftExample& e : d.examples) {
    tokens += static_cast<int64_t>(e.input_ids.size());
    targets += count_target_tokens({e.input_ids, e.labels});
  }
  std::string text = str_cat(d.rows_read, " rows, ", d.examples.size(), " examples (",
                             d.dropped_no_labels, " dropped without a target token, ", d.truncated,
                             " truncated at ", max_seq_length, " tokens");
  if (d.bad_rows > 0)
    text += str_cat(", ", d.bad_rows, " bad rows skipped, first: ", d.first_bad_row);
  return text + str_cat("), ", tokens, " tokens, ", targets, " target tokens");
}

// Upper bound of the memory training needs: fp32 weights, gradients and both Adam moments,
// plus the activations of the largest possible micro-batch (train_model.h's per-token count).
double estimate_memory_bytes(const LlamaConfig& c, size_t params, int64_t longest,
                             int64_t batch_size, bool checkpoint_activations) {
  const double tokens = static_cast<double>(longest) * static_cast<double>(batch_size);
  const double per_layer =
      4.0 * c.hidden_size + 2.0 * c.q_dim() + 2.0 * c.kv_dim() + 2.0 * c.intermediate_size;
  const double layers = c.num_hidden_layers;
  const double activations = checkpoint_activations ? tokens * (layers * c.hidden_size + per_layer)
                                                    : tokens * layers * per_layer;
  return 4.0 * (4.0 * static_cast<double>(params) + activations);
}

// Everything the training loop works on, set up once.
struct Session {
  const SftOptions& options;
  SftPlan plan;
  LrSchedule schedule;
  BatchPlanOptions batch_options;
  const SftDataset& data;
  const SftDataset* eval_data;  // null without --eval-data
  std::vector<int64_t> lengths;
  LlamaConfig config;
  const ParamLayout& layout;
  std::vector<float>& params;
  std::vector<float> grads;
  ThreadPool& pool;
  TrainModel& model;
};

std::vector<MicroBatch> step_micro_batches(const Session& s,
                                           const std::vector<std::vector<int64_t>>& epoch_plan,
                                           int64_t first, int64_t end) {
  std::vector<MicroBatch> batches;
  for (int64_t i = first; i < end; ++i) {
    batches.push_back(make_micro_batch(s.data, epoch_plan[static_cast<size_t>(i)]));
  }
  return batches;
}

int run_dump_grads(Session& s) {
  const auto epoch_plan = plan_epoch(s.lengths, s.batch_options, /*epoch=*/0);
  const int64_t end = std::min<int64_t>(s.plan.grad_accum, static_cast<int64_t>(epoch_plan.size()));
  const std::vector<MicroBatch> batches = step_micro_batches(s, epoch_plan, 0, end);
  const StepStats stats =
      accumulate_step_gradient(s.model, batches, s.params.data(), s.grads.data());
  const double norm = clip_grad_norm(s.grads.data(), s.grads.size(), /*max_norm=*/0.0);
  std::vector<DumpedRow> rows;
  for (size_t k = 0; k < batches.size(); ++k) {
    for (const SftExample* example : batches[k].examples) {
      rows.push_back({example, static_cast<int>(k)});
    }
  }
  write_grad_dump(s.options.dump_grads_path, s.layout, s.grads.data(), rows);
  std::printf("wrote the first step's gradient (%zu micro-batches, %zu rows, %" PRId64
              " target tokens, loss %.6f, grad norm %.6f, not clipped) to %s and %s\n",
              batches.size(), rows.size(), stats.target_tokens, stats.loss, norm,
              s.options.dump_grads_path.c_str(),
              grad_dump_batch_path(s.options.dump_grads_path).c_str());
  return 0;
}

double epoch_of(const Session& s, int64_t step) {
  return static_cast<double>(step) / static_cast<double>(s.plan.steps_per_epoch);
}

void run_eval(Session& s, int64_t step, MetricsLog& metrics, TrainProgress& progress) {
  const EvalStats stats =
      evaluate_dataset(s.model, *s.eval_data, s.options.batch_size, s.params.data());
  metrics.write(Json{{"step", step},
                     {"epoch", epoch_of(s, step)},
                     {"eval_loss", stats.loss},
                     {"eval_mean_token_accuracy", stats.accuracy},
                     {"eval_num_tokens", stats.tokens}});
  progress.finish();
  if (s.options.progress) {
    std::fprintf(stderr,
                 "eval at step %" PRId64 ": loss %.4f, token accuracy %.4f (%" PRId64 " tokens)\n",
                 step, stats.loss, stats.accuracy, stats.tokens);
  }
}

// The loop from `state` to the last step (run_train_loop with SFT's gradient, metrics row
// and evaluation). Returns the last step's loss. num_tokens: target tokens trained before
// `state` (0 for a fresh run).
double train(Session& s, TrainerState& state, AdamW& optimizer, int64_t num_tokens,
             double last_loss, MetricsLog& metrics) {
  StepStats stats;  // the current step's, for its metrics row
  TrainLoopParts parts{s.options, s.plan,   s.schedule, s.batch_options, s.lengths,
                       s.config,  s.layout, s.params,   s.grads,         s.pool,
                       {},        {},       {}};
  parts.gradient = [&](const EpochPlan& epoch_plan, int64_t first, int64_t end) {
    const std::vector<MicroBatch> batches = step_micro_batches(s, epoch_plan, first, end);
    stats = accumulate_step_gradient(s.model, batches, s.params.data(), s.grads.data());
    return StepGradient{stats.loss, stats.target_tokens};
  };
  parts.report = [&](const StepDone& done, MetricsLog& log, TrainProgress& progress) {
    log.write(Json{{"step", done.step},
                   {"epoch", done.epoch},
                   {"loss", done.loss},
                   {"grad_norm", done.grad_norm},
                   {"learning_rate", done.learning_rate},
                   {"num_tokens", done.num_tokens},
                   {"mean_token_accuracy", stats.accuracy}});
    progress.update({done.step,
                     done.epoch,
                     done.loss,
                     done.learning_rate,
                     done.grad_norm,
                     stats.input_tokens,
                     {}});
  };
  if (s.eval_data != nullptr) {
    parts.evaluate = [&](int64_t step, MetricsLog& log, TrainProgress& progress) {
      run_eval(s, step, log, progress);
    };
  }
  return run_train_loop(parts, state, optimizer, num_tokens, last_loss, metrics);
}

void print_summary(const SftOptions& o, const LoadedTrainModel& m, const SftDataset& data,
                   const SftDataset* eval, const SftPlan& plan, int64_t longest, int threads) {
  std::printf("model: %s (%s, %" PRId64 " parameters, %d layers, hidden %d, vocab %d)\n",
              o.model_dir.c_str(), m.weight_format.c_str(), m.parameter_count,
              m.config.num_hidden_layers, m.config.hidden_size, m.config.vocab_size);
  std::printf("data: %s: %s\n", o.data_path.c_str(), describe_data(data, o.max_seq_length).c_str());
  if (eval != nullptr) {
    std::printf("eval data: %s: %s\n", o.eval_data_path.c_str(),
                describe_data(*eval, o.max_seq_length).c_str());
  }
  std::printf("batches: %" PRId64 " micro-batches of up to %" PRId64
              " per epoch, gradient "
              "accumulation %" PRId64 "%s (effective batch %" PRId64 "), %" PRId64
              " steps per epoch, %" PRId64 " steps in all%s\n",
              plan.micro_batches_per_epoch, o.batch_size, plan.grad_accum,
              plan.grad_accum_clamped ? " (clamped to the micro-batches of an epoch)" : "",
              plan.grad_accum * o.batch_size, plan.steps_per_epoch, plan.total_steps,
              o.max_steps > 0 ? " (--max-steps)" : str_cat(" (", o.epochs, " epochs)").c_str());
  std::printf("optimizer: AdamW lr %g (%s schedule, %" PRId64
              " warm-up steps), betas (%g, %g), "
              "eps %g, weight decay %g, clip %s\n",
              o.lr, o.lr_schedule.c_str(), plan.warmup_steps, o.adam_beta1, o.adam_beta2,
              o.adam_eps, o.weight_decay, o.clip > 0 ? str_cat(o.clip).c_str() : "off");
  const double memory = estimate_memory_bytes(m.config, m.layout->total(), longest, o.batch_size,
                                              o.checkpoint_activations);
  std::printf(
      "memory: about %s (fp32 weights, gradients and Adam moments %s; longest sequence "
      "%" PRId64 " tokens%s), %d threads\n",
      mib(memory).c_str(), mib(16.0 * static_cast<double>(m.layout->total())).c_str(), longest,
      o.checkpoint_activations ? ", activation checkpointing" : "", threads);
  std::fflush(stdout);
}

}  // namespace

void validate_sft_options(const SftOptions& o) {
  TULU_CHECK(!o.model_dir.empty(), "--model is required");
  TULU_CHECK(!o.data_path.empty(), "--data is required");
  check_input_file(o.data_path, "--data");
  if (!o.eval_data_path.empty()) check_input_file(o.eval_data_path, "--eval-data");
  const bool dumping = !o.dump_grads_path.empty();
  TULU_CHECK(dumping || !o.output_dir.empty(), "--output is required");
  std::error_code ec;
  if (!o.output_dir.empty()) {
    TULU_CHECK(!fs::exists(o.output_dir, ec) || fs::is_directory(o.output_dir, ec), "--output: '",
               o.output_dir, "' exists and is not a directory");
  }
  TULU_CHECK(o.epochs >= 1, "--epochs must be >= 1, got ", o.epochs);
  TULU_CHECK(std::isfinite(o.lr) && o.lr > 0, "--lr must be a number > 0, got ", o.lr);
  try {
    parse_lr_schedule(o.lr_schedule);
  } catch (const Error& e) {
    fail("--lr-scheduler: ", e.what());
  }
  TULU_CHECK(std::isfinite(o.warmup_ratio) && o.warmup_ratio >= 0 && o.warmup_ratio <= 1,
             "--warmup-ratio must be in [0, 1], got ", o.warmup_ratio);
  TULU_CHECK(o.warmup_steps >= -1, "--warmup-steps must be >= 0, got ", o.warmup_steps);
  TULU_CHECK(o.batch_size >= 1, "--batch-size must be >= 1, got ", o.batch_size);
  TULU_CHECK(o.grad_accum >= 0,
             "--grad-accum must be >= 1 (or 0: --effective-batch / "
             "--batch-size), got ",
             o.grad_accum);
  TULU_CHECK(o.effective_batch >= 1, "--effective-batch must be >= 1, got ", o.effective_batch);
  TULU_CHECK(o.max_seq_length >= 2, "--max-seq-length must be >= 2, got ", o.max_seq_length);
  TULU_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
             "--weight-decay must be a number >= 0, got ", o.weight_decay);
  TULU_CHECK(std::isfinite(o.clip), "--clip must be a number (<= 0 turns clipping off), got ",
             o.clip);
  TULU_CHECK(o.adam_beta1 >= 0 && o.adam_beta1 < 1, "--adam-beta1 must be in [0, 1), got ",
             o.adam_beta1);
  TULU_CHECK(o.adam_beta2 >= 0 && o.adam_beta2 < 1, "--adam-beta2 must be in [0, 1), got ",
             o.adam_beta2);
  TULU_CHECK(std::isfinite(o.adam_eps) && o.adam_eps > 0, "--adam-eps must be a number > 0, got ",
             o.adam_eps);
  TULU_CHECK(o.max_steps == -1 || o.max_steps >= 1, "--max-steps must be >= 1, got ", o.max_steps);
  TULU_CHECK(o.save_every >= 0, "--save-every must be >= 0 (0 = no checkpoints), got ",
             o.save_every);
  TULU_CHECK(o.save_total_limit >= 0, "--save-total-limit must be >= 0 (0 = keep all), got ",
             o.save_total_limit);
  TULU_CHECK(o.eval_every >= 0, "--eval-every must be >= 0 (0 = end of each epoch), got ",
             o.eval_every);
  TULU_CHECK(o.eval_every == 0 || !o.eval_data_path.empty(), "--eval-every needs --eval-data");
  TULU_CHECK(o.threads >= 0, "--threads must be >= 0, got ", o.threads);
  TULU_CHECK(!dumping || (!o.resume && o.resume_from.empty()),
             "--dump-grads computes the first step of a fresh run; it cannot be combined with "
             "--resume");
}

int run_sft(const SftOptions& options) {
  validate_sft_options(options);
  const SftOptions& o = options;
  const bool dumping = !o.dump_grads_path.empty();
  const std::string resume_dir =
      dumping ? std::string() : resolve_resume_checkpoint(o.output_dir, o.resume, o.resume_from);

  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  ThreadPool pool(threads);
  LoadedTrainModel loaded = load_model_for_training(o.model_dir);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load_dir(o.model_dir);
  SftDataOptions data_options;
  data_options.max_seq_length = o.max_seq_length;
  data_options.skip_bad_rows = o.skip_bad_rows;
  const SftDataset data = load_sft_jsonl(o.data_path, *tokenizer, data_options);
  std::unique_ptr<SftDataset> eval_data;
  if (!o.eval_data_path.empty()) {
    eval_data =
        std::make_unique<SftDataset>(load_sft_jsonl(o.eval_data_path, *tokenizer, data_options));
  }

  std::vector<int64_t> lengths;
  for (const SftExample& e : data.examples)
    lengths.push_back(static_cast<int64_t>(e.input_ids.size()));
  const SftPlan plan = resolve_sft_plan(o, static_cast<int64_t>(data.examples.size()));
  print_summary(o, loaded, data, eval_data.get(), plan,
                *std::max_element(lengths.begin(), lengths.end()), threads);

  TrainModel model(loaded.config, *loaded.layout, pool, o.checkpoint_activations);
  Session s{o,
            plan,
            LrSchedule{parse_lr_schedule(o.lr_schedule), o.lr, plan.total_steps, plan.warmup_steps},
            BatchPlanOptions{o.batch_size, o.seed, /*shuffle=*/true, o.length_buckets},
            data,
            eval_data.get(),
            lengths,
            loaded.config,
            *loaded.layout,
            loaded.params,
            std::vector<float>(loaded.layout->total(), 0.0f),
            pool,
            model};
  if (dumping) return run_dump_grads(s);

  return train_and_save(o, resume_dir, loaded, sft_run_fingerprint(o, plan), plan.total_steps,
                        [&](TrainerState& state, AdamW& optimizer, int64_t num_tokens,
                            double last_loss, MetricsLog& metrics) {
                          return train(s, state, optimizer, num_tokens, last_loss, metrics);
                        });
}

}  // namespace tulu

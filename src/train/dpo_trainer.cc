// run_dpo: validation → policy, tokenizer and preference data → the reference (frozen copy,
// --ref-model, or the --precompute-ref file) → the step plan and a summary → either the first
// step's gradient (--dump-grads) or the training loop with metrics, progress, evaluation and
// checkpoints, resumable bit for bit.
#include "train/dpo_trainer.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "core/thread_pool.h"
#include "tokenizer/tokenizer.h"
#include "train/batching.h"
#include "train/dpo_ref_cache.h"
#include "train/dpo_step.h"
#include "train/grad_dump.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"
#include "train/optimizer.h"
#include "train/preference_data.h"
#include "train/sft_run.h"
#include "train/train_checkpoint.h"
#include "train/train_loop.h"
#include "train/train_model.h"
#include "train/train_progress.h"
#include "train/train_setup.h"

namespace tulu {

namespace fs = std::filesystem;

namespace {

std::string absolute_path(const std::string& path) {
  if (path.empty()) return {};
  std::error_code ec;
  return fs::absolute(path, ec).lexically_normal().string();
}

int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(bytes);
}

std::string describe_data(const PreferenceDataset& d, const DpoOptions& o) {
  int64_t chosen = 0, rejected = 0;
  for (const PreferencePair& p : d.pairs) {
    chosen += static_cast<int64_t>(p.chosen_ids.size());
    rejected += static_cast<int64_t>(p.rejected_ids.size());
  }
  std::string text = str_cat(d.rows_read, " rows, ", d.pairs.size(), " pairs (", d.truncated,
                             " truncated at --max-length ", o.max_length);
  if (o.max_prompt_length > 0) text += str_cat(" / --max-prompt-length ", o.max_prompt_length);
  text += str_cat(", ", d.dropped_empty, " dropped with an empty completion");
  if (d.bad_rows > 0)
    text += str_cat(", ", d.bad_rows, " bad rows skipped, first: ", d.first_bad_row);
  return text + str_cat("), ", chosen, " chosen and ", rejected, " rejected completion tokens");
}

// The reference as the step needs it, owning whatever it loaded.
struct Reference {
  DpoReference train, eval;
  std::string description;
  std::vector<float> frozen_params;        // the default frozen copy
  std::optional<LoadedTrainModel> loaded;  // --ref-model without --precompute-ref
  std::unique_ptr<TrainModel> model;       // its TrainModel
  DpoRefCache cache;                       // --precompute-ref
};

DpoRefLogps compute_ref_logps(TrainModel& model, const float* params,
                              const std::vector<DpoSequences>& seqs, int64_t batch_size) {
  DpoRefLogps logps;
  const DpoReference ref{&model, params, nullptr, nullptr};
  const auto total = static_cast<int64_t>(seqs.size());
  for (int64_t first = 0; first < total; first += batch_size) {
    std::vector<int64_t> pairs;
    for (int64_t i = first; i < std::min(total, first + batch_size); ++i) pairs.push_back(i);
    const std::vector<double> values = reference_logps(ref, seqs, pairs);
    const size_t n = pairs.size();
    logps.chosen.insert(logps.chosen.end(), values.begin(), values.begin() + static_cast<long>(n));
    logps.rejected.insert(logps.rejected.end(), values.begin() + static_cast<long>(n),
                          values.end());
  }
  return logps;
}

// --precompute-ref: reuses the file when its fingerprint matches, else computes every pair's
// reference log-probs (with --ref-model, or the policy's starting weights) and writes it.
void precompute_reference(const DpoOptions& o, const LoadedTrainModel& policy,
                          TrainModel& policy_model, ThreadPool& pool,
                          const std::vector<DpoSequences>& seqs,
                          const std::vector<DpoSequences>* eval_seqs, Reference& ref) {
  std::optional<LoadedTrainModel> ref_loaded;
  if (!o.ref_model_dir.empty())
    ref_loaded = load_model_for_training(o.ref_model_dir, "--ref-model");
  const LoadedTrainModel& weights = ref_loaded.has_value() ? *ref_loaded : policy;
  const LlamaConfig& c = weights.config;
  Json fingerprint{
      {"data", absolute_path(o.train.data_path)},
      {"data-bytes", file_bytes(o.train.data_path)},
      {"pairs", seqs.size()},
      {"eval-data", absolute_path(o.train.eval_data_path)},
      {"eval-data-bytes", eval_seqs != nullptr ? file_bytes(o.train.eval_data_path) : -1},
      {"eval-pairs", eval_seqs != nullptr ? static_cast<int64_t>(eval_seqs->size()) : -1},
      {"max-length", o.max_length},
      {"max-prompt-length", o.max_prompt_length},
      {"skip-bad-rows", o.train.skip_bad_rows},
      {"model-layers", c.num_hidden_layers},
      {"model-hidden", c.hidden_size},
      {"model-vocab", c.vocab_size},
      {"model-weights-fnv1a", str_cat(hash_weights(weights.params))},
  };
  const std::string& path = o.precompute_ref_path;
  const std::optional<DpoRefCache> existing = read_dpo_ref_cache(path);
  if (existing.has_value()) {
    const std::string difference =
        dpo_ref_fingerprint_difference(existing->fingerprint, fingerprint);
    if (difference.empty()) {
      TULU_CHECK(existing->train.chosen.size() == seqs.size() &&
                     (eval_seqs == nullptr || (existing->eval.has_value() &&
                                               existing->eval->chosen.size() == eval_seqs->size())),
                 "--precompute-ref: ", path, ": the log-prob counts do not match the data");
      ref.cache = *existing;
      ref.description = str_cat("precomputed log-probs reused from ", path);
    } else {
      std::printf(
          "--precompute-ref: %s was made for other data or another reference (%s): "
          "recomputing\n",
          path.c_str(), difference.c_str());
    }
  }
  if (ref.description.empty()) {
    std::unique_ptr<TrainModel> own;
    TrainModel* model = &policy_model;
    if (ref_loaded.has_value()) {
      own = std::make_unique<TrainModel>(ref_loaded->config, *ref_loaded->layout, pool,
                                         /*checkpoint_activations=*/false);
      model = own.get();
    }
    ref.cache.fingerprint = fingerprint;
    ref.cache.train = compute_ref_logps(*model, weights.params.data(), seqs, o.train.batch_size);
    if (eval_seqs != nullptr) {
      ref.cache.eval =
          compute_ref_logps(*model, weights.params.data(), *eval_seqs, o.train.batch_size);
    }
    write_dpo_ref_cache(path, ref.cache);
    ref.description = str_cat("log-probs precomputed with ",
                              ref_loaded.has_value() ? o.ref_model_dir : "the starting weights",
                              " and written to ", path);
  }
  ref.train = DpoReference{nullptr, nullptr, &ref.cache.train.chosen, &ref.cache.train.rejected};
  if (ref.cache.eval.has_value()) {
    ref.eval = DpoReference{nullptr, nullptr, &ref.cache.eval->chosen, &ref.cache.eval->rejected};
  }
}

void set_up_reference(const DpoOptions& o, const LoadedTrainModel& policy, TrainModel& policy_model,
                      ThreadPool& pool, const std::vector<DpoSequences>& seqs,
                      const std::vector<DpoSequences>* eval_seqs, Reference& ref) {
  if (!dpo_loss_uses_reference(o.loss.type)) {
    ref.description = "none (simpo is reference-free)";
  } else if (!o.precompute_ref_path.empty()) {
    precompute_reference(o, policy, policy_model, pool, seqs, eval_seqs, ref);
    return;
  } else if (!o.ref_model_dir.empty()) {
    ref.loaded = load_model_for_training(o.ref_model_dir, "--ref-model");
    ref.model = std::make_unique<TrainModel>(ref.loaded->config, *ref.loaded->layout, pool,
                                             /*checkpoint_activations=*/false);
    ref.train = DpoReference{ref.model.get(), ref.loaded->params.data(), nullptr, nullptr};
    ref.description = str_cat(o.ref_model_dir, " (", ref.loaded->weight_format, ", ",
                              ref.loaded->parameter_count, " parameters)");
  } else {
    // The frozen starting weights share the policy's TrainModel: the reference forward runs
    // before the policy's kept forward, so it never disturbs what the backward needs.
    ref.frozen_params = policy.params;
    ref.train = DpoReference{&policy_model, ref.frozen_params.data(), nullptr, nullptr};
    ref.description = "a frozen copy of the starting weights";
  }
  ref.eval = ref.train;
}

struct Session {
  const DpoOptions& options;
  SftPlan plan;
  LrSchedule schedule;
  BatchPlanOptions batch_options;
  const PreferenceDataset& data;
  const std::vector<DpoSequences>& seqs;
  const std::vector<DpoSequences>* eval_seqs;  // null without --eval-data
  std::vector<int64_t> lengths;
  const LoadedTrainModel& loaded;
  std::vector<float>& params;
  std::vector<float> grads;
  ThreadPool& pool;
  TrainModel& model;
  const Reference& ref;
};

std::vector<std::vector<int64_t>> step_pairs(const std::vector<std::vector<int64_t>>& epoch_plan,
                                             int64_t first, int64_t end) {
  return {epoch_plan.begin() + first, epoch_plan.begin() + end};
}

int run_dump_grads(Session& s) {
  const auto epoch_plan = plan_epoch(s.lengths, s.batch_options, /*epoch=*/0);
  const int64_t end = std::min<int64_t>(s.plan.grad_accum, static_cast<int64_t>(epoch_plan.size()));
  const auto micro_batches = step_pairs(epoch_plan, 0, end);
  const DpoStepStats stats = accumulate_dpo_step_gradient(
      s.model, s.params.data(), s.grads.data(), s.ref.train, s.seqs, micro_batches, s.options.loss);
  const double norm = clip_grad_norm(s.grads.data(), s.grads.size(), /*max_norm=*/0.0);
  const std::string& path = s.options.train.dump_grads_path;
  write_grad_tensors(path, *s.loaded.layout, s.grads.data());
  Json rows = Json::array();
  for (size_t k = 0; k < micro_batches.size(); ++k) {
    for (const int64_t i : micro_batches[k]) {
      const PreferencePair& p = s.data.pairs[static_cast<size_t>(i)];
      rows.push_back({{"prompt_ids", p.prompt_ids},
                      {"chosen_ids", p.chosen_ids},
                      {"rejected_ids", p.rejected_ids},
                      {"micro_batch", k}});
    }
  }
  write_file_atomic(grad_dump_batch_path(path), rows.dump() + "\n");
  std::printf(
      "wrote the first step's gradient (%zu micro-batches, %zu pairs, loss %.6f, "
      "rewards/accuracies %.4f, grad norm %.6f, not clipped) to %s and %s\n",
      micro_batches.size(), rows.size(), stats.metrics.loss(), stats.metrics.accuracy(), norm,
      path.c_str(), grad_dump_batch_path(path).c_str());
  return 0;
}

double epoch_of(const Session& s, int64_t step) {
  return static_cast<double>(step) / static_cast<double>(s.plan.steps_per_epoch);
}

void run_eval(Session& s, int64_t step, MetricsLog& metrics, TrainProgress& progress) {
  const DpoMetrics m = evaluate_dpo(s.model, s.params.data(), s.ref.eval, *s.eval_seqs,
                                    s.options.train.batch_size, s.options.loss);
  Json row{{"step", step}, {"epoch", epoch_of(s, step)}};
  row.update(m.to_json("eval_"));
  metrics.write(row);
  progress.finish();
  if (s.options.train.progress) {
    std::fprintf(stderr,
                 "eval at step %" PRId64
                 ": loss %.4f, rewards/accuracies %.4f, "
                 "rewards/margins %.4f (%" PRId64 " pairs)\n",
                 step, m.loss(), m.accuracy(), m.margin(), m.pairs);
  }
}

// The loop from `state` to the last step (run_train_loop with DPO's gradient, metrics row
// and evaluation). Returns the last step's loss.
double train(Session& s, TrainerState& state, AdamW& optimizer, int64_t num_tokens,
             double last_loss, MetricsLog& metrics) {
  DpoStepStats stats;  // the current step's, for its metrics row
  TrainLoopParts parts{s.options.train,
                       s.plan,
                       s.schedule,
                       s.batch_options,
                       s.lengths,
                       s.loaded.config,
                       *s.loaded.layout,
                       s.params,
                       s.grads,
                       s.pool,
                       {},
                       {},
                       {}};
  parts.gradient = [&](const EpochPlan& epoch_plan, int64_t first, int64_t end) {
    stats =
        accumulate_dpo_step_gradient(s.model, s.params.data(), s.grads.data(), s.ref.train, s.seqs,
                                     step_pairs(epoch_plan, first, end), s.options.loss);
    return StepGradient{stats.metrics.loss(), stats.target_tokens};
  };
  parts.report = [&](const StepDone& done, MetricsLog& log, TrainProgress& progress) {
    Json row{{"step", done.step}, {"epoch", done.epoch}};
    row.update(stats.metrics.to_json());
    row.update(Json{{"learning_rate", done.learning_rate},
                    {"grad_norm", done.grad_norm},
                    {"num_tokens", done.num_tokens}});
    log.write(row);
    char extra[96];
    std::snprintf(extra, sizeof extra, "acc %.3f | margin %.4f", stats.metrics.accuracy(),
                  stats.metrics.margin());
    progress.update({done.step, done.epoch, done.loss, done.learning_rate, done.grad_norm,
                     stats.input_tokens, extra});
  };
  if (s.eval_seqs != nullptr) {
    parts.evaluate = [&](int64_t step, MetricsLog& log, TrainProgress& progress) {
      run_eval(s, step, log, progress);
    };
  }
  return run_train_loop(parts, state, optimizer, num_tokens, last_loss, metrics);
}

void print_summary(const DpoOptions& d, const LoadedTrainModel& m, const PreferenceDataset& data,
                   const PreferenceDataset* eval, const SftPlan& plan, const Reference& ref,
                   int threads) {
  const SftOptions& o = d.train;
  std::printf("model: %s (%s, %" PRId64 " parameters, %d layers, hidden %d, vocab %d)\n",
              o.model_dir.c_str(), m.weight_format.c_str(), m.parameter_count,
              m.config.num_hidden_layers, m.config.hidden_size, m.config.vocab_size);
  std::printf("data: %s: %s\n", o.data_path.c_str(), describe_data(data, d).c_str());
  if (eval != nullptr) {
    std::printf("eval data: %s: %s\n", o.eval_data_path.c_str(), describe_data(*eval, d).c_str());
  }
  std::printf("loss: %s, beta %g", dpo_loss_name(d.loss.type), d.loss.beta);
  if (dpo_loss_uses_label_smoothing(d.loss.type))
    std::printf(", label smoothing %g", d.loss.label_smoothing);
  if (d.loss.type == DpoLossType::Simpo)
    std::printf(", simpo gamma/beta %g", d.loss.simpo_gamma_beta_ratio);
  std::printf("; reference: %s\n", ref.description.c_str());
  std::printf("batches: %" PRId64 " micro-batches of up to %" PRId64
              " pairs per epoch, gradient accumulation %" PRId64 "%s (effective batch %" PRId64
              " pairs), %" PRId64 " steps per epoch, %" PRId64 " steps in all%s\n",
              plan.micro_batches_per_epoch, o.batch_size, plan.grad_accum,
              plan.grad_accum_clamped ? " (clamped to the micro-batches of an epoch)" : "",
              plan.grad_accum * o.batch_size, plan.steps_per_epoch, plan.total_steps,
              o.max_steps > 0 ? " (--max-steps)" : str_cat(" (", o.epochs, " epochs)").c_str());
  std::printf("optimizer: AdamW lr %g (%s schedule, %" PRId64
              " warm-up steps), betas (%g, %g), eps %g, weight decay %g, clip %s; %d threads\n",
              o.lr, o.lr_schedule.c_str(), plan.warmup_steps, o.adam_beta1, o.adam_beta2,
              o.adam_eps, o.weight_decay, o.clip > 0 ? str_cat(o.clip).c_str() : "off", threads);
  std::fflush(stdout);
}

Json dpo_run_fingerprint(const DpoOptions& o, const SftPlan& plan) {
  Json run = sft_run_fingerprint(o.train, plan);
  run.erase("max-seq-length");  // DPO's flag is --max-length (same value)
  run.update(Json{{"command", "dpo"},
                  {"loss", dpo_loss_name(o.loss.type)},
                  {"beta", o.loss.beta},
                  {"label-smoothing", o.loss.label_smoothing},
                  {"simpo-gamma", o.loss.simpo_gamma_beta_ratio},
                  {"max-length", o.max_length},
                  {"max-prompt-length", o.max_prompt_length},
                  {"ref-model", absolute_path(o.ref_model_dir)}});
  return run;
}

}  // namespace

DpoOptions default_dpo_options() {
  DpoOptions o;
  o.train.lr = 5e-7;
  o.train.lr_schedule = "linear";
  o.train.warmup_ratio = 0.1;
  o.train.weight_decay = 0.0;
  o.train.adam_beta1 = 0.9;
  o.train.adam_beta2 = 0.999;
  o.train.adam_eps = 1e-8;
  o.train.effective_batch = 32;
  o.train.epochs = 3;
  o.max_length = 8192;
  o.train.max_seq_length = o.max_length;
  return o;
}

void validate_dpo_training_options(const DpoOptions& o) {
  TULU_CHECK(o.max_length >= 2, "--max-length must be >= 2, got ", o.max_length);
  TULU_CHECK(
      o.max_prompt_length == -1 || (o.max_prompt_length >= 1 && o.max_prompt_length < o.max_length),
      "--max-prompt-length must be in [1, --max-length) (or -1: no limit), got ",
      o.max_prompt_length);
  TULU_CHECK(std::isfinite(o.loss.beta) && o.loss.beta > 0, "--beta must be a number > 0, got ",
             o.loss.beta);
  TULU_CHECK(o.loss.label_smoothing >= 0 && o.loss.label_smoothing <= 0.5,
             "--label-smoothing must be in [0, 0.5], got ", o.loss.label_smoothing);
  TULU_CHECK(std::isfinite(o.loss.simpo_gamma_beta_ratio), "--simpo-gamma must be a number, got ",
             o.loss.simpo_gamma_beta_ratio);
  validate_dpo_options(o.loss);
  SftOptions train = o.train;
  train.max_seq_length = o.max_length;
  validate_sft_options(train);
  const bool reference = dpo_loss_uses_reference(o.loss.type);
  TULU_CHECK(reference || (o.ref_model_dir.empty() && o.precompute_ref_path.empty()),
             "--loss simpo uses no reference model: drop --ref-model / --precompute-ref");
  if (!o.ref_model_dir.empty()) {
    TULU_CHECK(is_directory(o.ref_model_dir), "--ref-model: '", o.ref_model_dir,
               "' is not a model directory");
  }
  if (!o.precompute_ref_path.empty()) {
    std::error_code ec;
    TULU_CHECK(!fs::is_directory(o.precompute_ref_path, ec), "--precompute-ref: '",
               o.precompute_ref_path, "' is a directory, not a file");
  }
}

int run_dpo(const DpoOptions& options) {
  validate_dpo_training_options(options);
  DpoOptions d = options;
  d.train.max_seq_length = d.max_length;
  const SftOptions& o = d.train;
  const bool dumping = !o.dump_grads_path.empty();
  const std::string resume_dir =
      dumping ? std::string() : resolve_resume_checkpoint(o.output_dir, o.resume, o.resume_from);

  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  ThreadPool pool(threads);
  LoadedTrainModel loaded = load_model_for_training(o.model_dir);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load_dir(o.model_dir);
  PreferenceDataOptions data_options;
  data_options.max_length = d.max_length;
  data_options.max_prompt_length = d.max_prompt_length;
  data_options.skip_bad_rows = o.skip_bad_rows;
  data_options.threads = threads;
  const PreferenceDataset data = load_preference_jsonl(o.data_path, *tokenizer, data_options);
  std::unique_ptr<PreferenceDataset> eval_data;
  if (!o.eval_data_path.empty()) {
    eval_data = std::make_unique<PreferenceDataset>(
        load_preference_jsonl(o.eval_data_path, *tokenizer, data_options));
  }
  const std::vector<DpoSequences> seqs = build_dpo_sequences(data);
  std::optional<std::vector<DpoSequences>> eval_seqs;
  if (eval_data) eval_seqs = build_dpo_sequences(*eval_data);

  std::vector<int64_t> lengths;
  for (const DpoSequences& s : seqs) {
    lengths.push_back(static_cast<int64_t>(s.chosen_input.size() + s.rejected_input.size()));
  }
  const SftPlan plan = resolve_sft_plan(o, static_cast<int64_t>(seqs.size()));
  TrainModel model(loaded.config, *loaded.layout, pool, o.checkpoint_activations);
  Reference ref;
  set_up_reference(d, loaded, model, pool, seqs, eval_seqs ? &*eval_seqs : nullptr, ref);
  if (ref.loaded.has_value()) {
    TULU_CHECK(ref.loaded->config.vocab_size == loaded.config.vocab_size, "--ref-model '",
               d.ref_model_dir, "': vocabulary of ", ref.loaded->config.vocab_size,
               " tokens, the policy has ", loaded.config.vocab_size);
  }
  print_summary(d, loaded, data, eval_data.get(), plan, ref, threads);

  Session s{d,
            plan,
            LrSchedule{parse_lr_schedule(o.lr_schedule), o.lr, plan.total_steps, plan.warmup_steps},
            BatchPlanOptions{o.batch_size, o.seed, /*shuffle=*/true, o.length_buckets},
            data,
            seqs,
            eval_seqs ? &*eval_seqs : nullptr,
            lengths,
            loaded,
            loaded.params,
            std::vector<float>(loaded.layout->total(), 0.0f),
            pool,
            model,
            ref};
  if (dumping) return run_dump_grads(s);

  return train_and_save(o, resume_dir, loaded, dpo_run_fingerprint(d, plan), plan.total_steps,
                        [&](TrainerState& state, AdamW& optimizer, int64_t num_tokens,
                            double last_loss, MetricsLog& metrics) {
                          return train(s, state, optimizer, num_tokens, last_loss, metrics);
                        });
}

}  // namespace tulu

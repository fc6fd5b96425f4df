// `tulu demo` (see demo_pipeline.h).
#include "demo/demo_pipeline.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "core/thread_pool.h"
#include "demo/demo_model.h"
#include "demo/synthetic_task.h"
#include "eval/eval_progress.h"
#include "eval/preference_eval.h"
#include "generate/generation_defaults.h"
#include "generate/generator.h"
#include "llama/model.h"
#include "llama/session.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "train/dpo_trainer.h"
#include "train/preference_data.h"
#include "train/sft_trainer.h"

namespace tulu {

namespace {

namespace fs = std::filesystem;

constexpr const char* kMarker = ".tulu-demo";
constexpr int64_t kHeldOutQuestions = 160;
constexpr int64_t kDpoQuestions = 240;
constexpr int64_t kMaxLength = 64;  // tokens; the longest demo chat is about 30
constexpr double kBeta = 0.1;
constexpr int kChatTurns = 4;

// The hyper-parameters, chosen so that the run takes minutes on 2 cores (see run_demo).
struct DemoRecipe {
  int64_t sft_epochs, dpo_epochs;
  double sft_lr, dpo_lr;
  int64_t batch;  // sequences (SFT) or pairs (DPO) per optimizer step
};

DemoRecipe recipe_for(bool quick) {
  if (quick) return {3, 1, 3e-3, 5e-4, 16};
  return {30, 5, 3e-3, 5e-4, 16};
}

void heading(int step, const std::string& title) {
  std::cout << "\n== " << step << ". " << title << "\n" << std::flush;
}

// Creates out_dir, or clears it when an earlier demo made it; refuses any other non-empty
// directory (it may hold the user's files).
void prepare_output_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir)) {
    TULU_CHECK(fs::is_directory(dir), "-o '", dir, "' exists and is not a directory");
    if (!fs::is_empty(dir, ec)) {
      TULU_CHECK(fs::exists(join_path(dir, kMarker)), "-o '", dir,
                 "' is not empty and was not made by `tulu demo` (no ", kMarker,
                 " file); choose another directory");
      for (const auto& entry : fs::directory_iterator(dir)) fs::remove_all(entry.path(), ec);
      TULU_CHECK(!ec, "cannot clear '", dir, "': ", ec.message());
    }
  }
  fs::create_directories(dir, ec);
  TULU_CHECK(!ec, "cannot create directory '", dir, "': ", ec.message());
  write_file_atomic(join_path(dir, kMarker),
                    "made by tulu demo; a later run clears this directory\n");
}

struct StageEval {
  std::vector<PairScores> scores;
  PreferenceReport report;
  int64_t task_correct = 0, task_total = 0;
  double task_accuracy() const {
    return task_total > 0 ? static_cast<double>(task_correct) / static_cast<double>(task_total)
                          : 0.0;
  }
};

std::vector<int> chat_prompt_ids(const Tokenizer& tokenizer, const std::string& question) {
  const std::vector<ChatMessage> messages = {{"user", question}};
  return tokenizer.encode(render_chat(ChatFormat::Tulu, messages, true), true);
}

GenerateOptions greedy_options(const LlamaModel& model, const Tokenizer& tokenizer) {
  GenerateOptions g;
  g.max_new_tokens = 8;
  g.eos_ids = resolve_eos_ids(model, tokenizer);
  g.sampling.temperature = 0.0;
  return g;
}

// Held-out preference scores (policy; with `reference` also the DPO rewards) and greedy task
// accuracy on the held-out questions.
StageEval evaluate_stage(const std::string& model_dir, const std::vector<PreferencePair>& pairs,
                         const std::vector<CompareQuestion>& questions,
                         const std::vector<PairScores>& reference, ThreadPool& pool, bool progress,
                         const char* label) {
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(model_dir);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load_dir(model_dir);
  StageEval out;
  EvalProgress bar(str_cat(label, " held-out pairs"), "pairs", progress, stderr,
                   isatty(STDERR_FILENO) != 0);
  out.scores = score_preference_pairs(
      *model, pairs, pool, [&](int64_t done, int64_t total) { bar.update(done, total); });
  bar.finish();
  out.report = summarize_preferences(out.scores, reference, kBeta);
  Session session(*model, static_cast<int>(kMaxLength), pool);
  const GenerateOptions g = greedy_options(*model, *tokenizer);
  for (const CompareQuestion& q : questions) {
    const std::vector<int> prompt = chat_prompt_ids(*tokenizer, q.text);
    const GenerateResult r =
        generate(session, *tokenizer, prompt, g, [](std::string_view) { return true; });
    out.task_correct += is_correct_reply(q, r.text) ? 1 : 0;
    ++out.task_total;
  }
  return out;
}

std::string percent(double fraction) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%5.1f%%", 100.0 * fraction);
  return buffer;
}

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

void print_table(const StageEval& before, const StageEval& after) {
  const PreferenceReport& b = before.report;
  const PreferenceReport& a = after.report;
  std::printf("%-58s %10s %10s\n", "held-out metric", "SFT", "SFT+DPO");
  std::printf("%-58s %10s %10s\n", "preference accuracy, raw log-prob (chosen > rejected)",
              percent(b.logp_accuracy).c_str(), percent(a.logp_accuracy).c_str());
  std::printf("%-58s %10s %10s\n", "preference accuracy, DPO reward vs the SFT model", "-",
              percent(a.reward_accuracy).c_str());
  std::printf("%-58s %10s %10s\n", "mean reward margin (beta 0.1)", "-",
              fixed(a.mean_margin, 4).c_str());
  std::printf("%-58s %10s %10s\n", "mean log-prob of the chosen (correct) reply",
              fixed(b.mean_logp_chosen, 3).c_str(), fixed(a.mean_logp_chosen, 3).c_str());
  std::printf("%-58s %10s %10s\n", "mean log-prob of the rejected (wrong) reply",
              fixed(b.mean_logp_rejected, 3).c_str(), fixed(a.mean_logp_rejected, 3).c_str());
  std::printf("%-58s %10s %10s\n", "task accuracy (greedy reply = the larger digit)",
              percent(before.task_accuracy()).c_str(), percent(after.task_accuracy()).c_str());
  std::fflush(stdout);
}

Json stage_json(const StageEval& stage) {
  Json j = preference_report_json(stage.report);
  j["task_accuracy"] = stage.task_accuracy();
  j["task_correct"] = stage.task_correct;
  j["task_questions"] = stage.task_total;
  return j;
}

// A few held-out questions, the final model's greedy replies streamed as they come.
void show_chat(const std::string& model_dir, const std::vector<CompareQuestion>& questions,
               ThreadPool& pool) {
  const std::unique_ptr<LlamaModel> model = LlamaModel::load(model_dir);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load_dir(model_dir);
  Session session(*model, static_cast<int>(kMaxLength), pool);
  const GenerateOptions g = greedy_options(*model, *tokenizer);
  const size_t turns = std::min(questions.size(), static_cast<size_t>(kChatTurns));
  for (size_t i = 0; i < turns; ++i) {
    const CompareQuestion& q = questions[i];
    std::cout << "user:      " << q.text << "\nassistant: " << std::flush;
    const GenerateResult r = generate(session, *tokenizer, chat_prompt_ids(*tokenizer, q.text), g,
                                      [](std::string_view piece) {
                                        std::cout << piece << std::flush;
                                        return true;
                                      });
    std::cout << "   (" << (is_correct_reply(q, r.text) ? "correct" : "wrong") << ")\n\n";
  }
  std::cout << std::flush;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int run_demo(const DemoOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  TULU_CHECK(!o.out_dir.empty(), "-o must name a directory");
  TULU_CHECK(o.threads >= 0, "--threads must be >= 0, got ", o.threads);
  const int threads = o.threads > 0 ? o.threads : default_thread_count();
  const DemoRecipe recipe = recipe_for(o.quick);
  const std::string dir = o.out_dir, data_dir = join_path(dir, "data");
  const std::string init_dir = join_path(dir, "init"), sft_dir = join_path(dir, "sft");
  const std::string sft_path = join_path(data_dir, "sft.jsonl");
  const std::string dpo_path = join_path(data_dir, "dpo_pairs.jsonl");
  const std::string held_path = join_path(data_dir, "heldout_pairs.jsonl");

  std::cout << "tulu demo: the Tulu 2 recipe (SFT, then DPO) in miniature, on a synthetic task\n"
            << (o.quick ? "(--quick: far fewer steps; the numbers below are not the demo's)\n" : "")
            << "Every number below is computed by this run (seed " << o.seed << ", " << threads
            << " threads).\n";
  prepare_output_dir(dir);

  heading(1, "Data: \"which digit is larger?\" chats, generated from the seed");
  const DemoSplit split = split_compare_questions(o.seed, kHeldOutQuestions, kDpoQuestions);
  fs::create_directories(data_dir);
  const std::vector<Json> sft = sft_rows(split.sft);
  write_file_atomic(sft_path, to_jsonl(sft));
  write_file_atomic(dpo_path, to_jsonl(preference_rows(split.dpo)));
  write_file_atomic(held_path, to_jsonl(preference_rows(split.held_out)));
  std::cout << "SFT chats:        " << sft.size() << " (" << sft.size() / 2
            << " of them answer with the SMALLER digit: noisy data, as real SFT data is) -> "
            << sft_path << "\n"
            << "DPO pairs:        " << split.dpo.size()
            << " (chosen = the larger digit, rejected = the smaller) -> " << dpo_path << "\n"
            << "held-out pairs:   " << split.held_out.size()
            << " (questions in neither training set) -> " << held_path << "\n"
            << "example SFT chat: " << sft[0].dump() << "\n"
            << "example SFT chat: " << sft[1].dump() << "\n";

  heading(2, "Create a small random Llama model (Llama 2 tokenizer, 32000 tokens)");
  const DemoModelInfo info =
      write_demo_model(init_dir, o.seed, o.tokenizer_model, o.tokenizer_config);
  std::cout << "wrote " << init_dir << ": " << info.parameters << " parameters, " << info.layers
            << " layers, hidden " << info.hidden << ", vocab " << info.vocab
            << " (random weights)\n";

  heading(3, "SFT (tulu sft): learn the chat format and the task from the noisy chats");
  std::cout << "Learning rates here are far above Tulu 2's (2e-5 SFT, 5e-7 DPO for 70B): a "
               "tiny model trained from scratch for a minute needs them.\n"
            << std::flush;
  SftOptions s;
  s.model_dir = init_dir;
  s.data_path = sft_path;
  s.output_dir = sft_dir;
  s.epochs = recipe.sft_epochs;
  s.lr = recipe.sft_lr;
  s.warmup_ratio = 0.03;
  s.batch_size = recipe.batch;
  s.effective_batch = recipe.batch;
  s.max_seq_length = kMaxLength;
  s.seed = o.seed;
  s.threads = threads;
  s.progress = o.progress;
  run_sft(s);

  ThreadPool pool(threads);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load_dir(sft_dir);
  PreferenceDataOptions pref_options;
  pref_options.max_length = kMaxLength;
  pref_options.threads = threads;
  const PreferenceDataset held = load_preference_jsonl(held_path, *tokenizer, pref_options);
  TULU_CHECK(held.pairs.size() == split.held_out.size(), "demo: ", held.pairs.size(), " of ",
             split.held_out.size(), " held-out pairs survived tokenization");

  heading(4, "Evaluate the SFT model on the held-out questions");
  const StageEval before =
      evaluate_stage(sft_dir, held.pairs, split.held_out, {}, pool, o.progress, "SFT model:");
  const double raw = before.report.logp_accuracy;
  std::cout << "raw preference accuracy " << percent(raw)
            << (raw > 0.35 && raw < 0.65 ? " (near chance: the noisy data left it indifferent)"
                                         : "")
            << ", task accuracy " << percent(before.task_accuracy()) << "\n";

  heading(5, "DPO (tulu dpo): prefer the correct answer, the SFT model as the reference");
  DpoOptions d = default_dpo_options();
  d.train.model_dir = sft_dir;
  d.train.data_path = dpo_path;
  d.train.output_dir = dir;
  d.train.epochs = recipe.dpo_epochs;
  d.train.lr = recipe.dpo_lr;
  d.train.batch_size = recipe.batch;
  d.train.effective_batch = recipe.batch;
  d.train.max_seq_length = kMaxLength;
  d.train.seed = o.seed;
  d.train.threads = threads;
  d.train.progress = o.progress;
  d.max_length = kMaxLength;
  d.loss.beta = kBeta;
  d.precompute_ref_path = join_path(data_dir, "dpo_reference_logps.json");
  run_dpo(d);

  heading(6, "Evaluate the DPO model on the same held-out questions");
  const StageEval after = evaluate_stage(dir, held.pairs, split.held_out, before.scores, pool,
                                         o.progress, "DPO model:");
  print_table(before, after);

  const double seconds = seconds_since(start);
  const Json summary = {{"seed", o.seed},
                        {"quick", o.quick},
                        {"threads", threads},
                        {"beta", kBeta},
                        {"heldout_pairs_path", held_path},
                        {"sft_model", sft_dir},
                        {"dpo_model", dir},
                        {"sft", stage_json(before)},
                        {"dpo", stage_json(after)},
                        {"seconds", seconds}};
  write_file_atomic(join_path(dir, "summary.json"), summary.dump(2) + "\n");

  heading(7, "The saved model");
  std::cout << "DPO model (Hugging Face layout): " << dir << "   SFT model: " << sft_dir
            << "\nsummary: " << join_path(dir, "summary.json") << "\n";

  heading(8, "A short chat with it (held-out questions, greedy, streamed)");
  show_chat(dir, split.held_out, pool);
  std::printf("demo finished in %.0f s. Chat with the model:\n  tulu chat -m %s\n", seconds,
              dir.c_str());
  return 0;
}

}  // namespace tulu

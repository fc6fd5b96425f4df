// tulu eval: evaluations of a model. One sub-subcommand per evaluation (`tulu eval --help`
// lists them):
//
//   tulu eval prefs -m POLICY [--ref-model REF] --data prefs.jsonl [--beta 0.1]
//                   [--max-length N] [--max-prompt-length N] [--skip-bad-rows] [--limit N]
//                   [--json FILE|-] [--per-pair FILE] [-t N] [--no-progress]
//     How strongly the policy prefers each pair's chosen over its rejected completion
//     (src/eval/preference_eval.h): summed completion log-probs, raw log-prob accuracy and,
//     with a reference, TRL's DPO rewards, reward accuracy, mean margin and sigmoid loss.
//     stdout: the table (or the report JSON with --json -); stderr: data summary, progress.
//     --json FILE: the report as JSON; --per-pair FILE: one JSON object per pair
//     {"line", "chosen_logp", "rejected_logp", "chosen_tokens", "rejected_tokens"} plus, with
//     a reference, "ref_chosen_logp", "ref_rejected_logp", "reward_chosen", "reward_rejected".
// Models: any format `tulu generate -m` loads (Hugging Face directories with F32/BF16/F16
// weights, GGUF files incl. Q8_0/Q4_0). Pairs are tokenized by the policy's tokenizer exactly
// as `tulu dpo` does (train/preference_data.h).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "kv_type_option.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/thread_pool.h"
#include "eval/eval_progress.h"
#include "eval/preference_eval.h"
#include "llama/model.h"
#include "model_tokenizer.h"
#include "train/preference_data.h"

namespace tulu::cli {

namespace {

constexpr const char* kPrefsFooter =
    "Pairs are tokenized as `tulu dpo` tokenizes them (the policy's tokenizer; the prompt with "
    "\"<|assistant|>\\n\" unscored, the reply plus </s> scored). Truncation (TRL's rule, "
    "truncation_mode keep_end): when prompt + longer completion > --max-length, the prompt is "
    "first cut to --max-prompt-length tokens keeping BOS and its end (unless -1); then, if still "
    "too long, both completions are cut to max-length - prompt length keeping their start. A "
    "pair with an empty completion left is dropped and counted. A pair longer than a model's "
    "max_position_embeddings is an error naming its line.\n"
    "Accuracies count strict wins (chosen > rejected, as TRL); ties are reported.\n";

struct PrefsOptions {
  std::string model;
  std::string ref_model;
  std::string data;
  double beta = 0.1;
  int64_t max_length = 8192;
  int64_t max_prompt_length = -1;
  bool skip_bad_rows = false;
  int64_t limit = 0;  // 0 = every pair
  std::string json_path;
  std::string per_pair_path;
  int threads = 0;
  KvTypeOption kv_type;
  bool no_progress = false;
};

// Output files are written after the (possibly long) scoring; a missing directory is an
// error before it.
void check_output_path(const std::string& path, const char* flag) {
  if (path.empty() || path == "-") return;
  TULU_CHECK(!is_directory(path), flag, " '", path, "' is a directory");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  TULU_CHECK(parent.empty() || is_directory(parent.string()), flag, " '", path, "': directory '",
             parent.string(), "' does not exist");
}

void validate(const PrefsOptions& o) {
  TULU_CHECK(std::isfinite(o.beta) && o.beta > 0, "--beta must be a number > 0, got ", o.beta);
  TULU_CHECK(o.max_length >= 2, "--max-length must be >= 2, got ", o.max_length);
  TULU_CHECK(
      o.max_prompt_length == -1 || (o.max_prompt_length >= 1 && o.max_prompt_length < o.max_length),
      "--max-prompt-length must be in [1, --max-length) (or -1: no limit), got ",
      o.max_prompt_length);
  TULU_CHECK(o.per_pair_path != "-" || o.json_path != "-",
             "--json - and --per-pair - cannot both write to stdout");
  check_output_path(o.json_path, "--json");
  check_output_path(o.per_pair_path, "--per-pair");
}

std::vector<PairScores> score_with_progress(const LlamaModel& model,
                                            const std::vector<PreferencePair>& pairs,
                                            ThreadPool& pool, const char* label, bool progress,
                                            KvType kv_type) {
  EvalProgress bar(label, "pairs", progress, stderr, isatty(STDERR_FILENO) != 0);
  std::vector<PairScores> scores = score_preference_pairs(
      model, pairs, pool, [&](int64_t done, int64_t total) { bar.update(done, total); }, kv_type);
  bar.finish();
  return scores;
}

std::string per_pair_lines(const std::vector<PreferencePair>& pairs,
                           const std::vector<PairScores>& policy,
                           const std::vector<PairScores>& reference, double beta) {
  std::string out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    Json row = Json::object();
    row["line"] = pairs[i].line;
    row["chosen_logp"] = policy[i].chosen_logp;
    row["rejected_logp"] = policy[i].rejected_logp;
    row["chosen_tokens"] = policy[i].chosen_tokens;
    row["rejected_tokens"] = policy[i].rejected_tokens;
    if (!reference.empty()) {
      row["ref_chosen_logp"] = reference[i].chosen_logp;
      row["ref_rejected_logp"] = reference[i].rejected_logp;
      row["reward_chosen"] = beta * (policy[i].chosen_logp - reference[i].chosen_logp);
      row["reward_rejected"] = beta * (policy[i].rejected_logp - reference[i].rejected_logp);
    }
    out += row.dump();
    out += '\n';
  }
  return out;
}

void write_output(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    std::cout.flush();
  } else {
    write_file_atomic(path, text);
  }
}

int run_prefs(const PrefsOptions& o) {
  validate(o);
  const KvType kv_type = o.kv_type.resolve();
  const std::unique_ptr<Tokenizer> tokenizer = load_model_tokenizer(o.model);
  const std::unique_ptr<LlamaModel> policy = LlamaModel::load(o.model);
  std::unique_ptr<LlamaModel> reference;
  if (!o.ref_model.empty()) {
    reference = LlamaModel::load(o.ref_model);
    TULU_CHECK(reference->config().vocab_size == policy->config().vocab_size, "--ref-model '",
               o.ref_model, "' has a vocabulary of ", reference->config().vocab_size,
               " tokens, the policy '", o.model, "' has ", policy->config().vocab_size,
               " (they must share the vocabulary)");
  }

  PreferenceDataOptions data_options;
  data_options.max_length = o.max_length;
  data_options.max_prompt_length = o.max_prompt_length;
  data_options.skip_bad_rows = o.skip_bad_rows;
  data_options.threads = resolve_threads(o.threads);
  PreferenceDataset dataset = load_preference_jsonl(o.data, *tokenizer, data_options);
  const size_t kept = dataset.pairs.size();
  if (o.limit > 0 && dataset.pairs.size() > static_cast<size_t>(o.limit)) {
    dataset.pairs.resize(static_cast<size_t>(o.limit));
  }
  std::cerr << "data: " << dataset.rows_read << " rows read, " << kept
            << " pairs kept, dropped (empty completion): " << dataset.dropped_empty
            << ", truncated: " << dataset.truncated << ", bad rows skipped: " << dataset.bad_rows
            << "; evaluating " << dataset.pairs.size() << " pairs\n";
  if (dataset.bad_rows > 0) std::cerr << "first bad row: " << dataset.first_bad_row << "\n";

  // Every model's length and vocabulary checks before the first minute of scoring.
  check_preference_pairs(*policy, dataset.pairs);
  if (reference) check_preference_pairs(*reference, dataset.pairs);

  ThreadPool pool(resolve_threads(o.threads));
  const bool progress = !o.no_progress;
  const std::vector<PairScores> policy_scores =
      score_with_progress(*policy, dataset.pairs, pool, "policy", progress, kv_type);
  std::vector<PairScores> reference_scores;
  if (reference) {
    reference_scores =
        score_with_progress(*reference, dataset.pairs, pool, "reference", progress, kv_type);
  }
  const PreferenceReport report = summarize_preferences(policy_scores, reference_scores, o.beta);

  if (!o.per_pair_path.empty()) {
    write_output(o.per_pair_path,
                 per_pair_lines(dataset.pairs, policy_scores, reference_scores, o.beta));
  }
  if (!o.json_path.empty())
    write_output(o.json_path, preference_report_json(report).dump(2) + "\n");
  if (o.json_path != "-" && o.per_pair_path != "-") {
    std::cout << preference_report_table(report);
    std::cout.flush();
  }
  return 0;
}

void setup_prefs(CLI::App& app, PrefsOptions& o) {
  app.footer(kPrefsFooter);
  app.add_option("-m,--model", o.model,
                 "policy model: a Hugging Face directory (F32/BF16/F16) or a GGUF file, as "
                 "`tulu generate -m` accepts; its tokenizer encodes the pairs")
      ->required();
  add_weight_flags(app);
  app.add_option("--ref-model", o.ref_model,
                 "reference model (same vocabulary): adds DPO rewards beta * (logp - ref logp), "
                 "reward accuracy, margin and the sigmoid DPO loss");
  app.add_option("--data", o.data,
                 "preference pairs, JSON Lines: {\"prompt\", \"chosen\", \"rejected\"} as strings "
                 "or as message lists (HuggingFaceH4/ultrafeedback_binarized)")
      ->required();
  app.add_option("--beta", o.beta, "DPO beta of the rewards")->capture_default_str();
  app.add_option("--max-length", o.max_length,
                 "prompt + longer completion limit in tokens (as tulu dpo)")
      ->capture_default_str();
  app.add_option("--max-prompt-length", o.max_prompt_length,
                 "prompt tokens kept when a pair is too long (-1: no separate limit)")
      ->capture_default_str();
  app.add_flag("--skip-bad-rows", o.skip_bad_rows,
               "count and skip malformed rows instead of stopping at the first");
  app.add_option("--limit", o.limit, "evaluate only the first N kept pairs")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--json", o.json_path, "write the report as JSON to FILE ('-': stdout, no table)");
  app.add_option("--per-pair", o.per_pair_path,
                 "write one JSON line per pair (line, log-probs, token counts, rewards) to FILE "
                 "('-': stdout, no table)");
  app.add_option("-t,--threads", o.threads, "compute threads (0 = all hardware threads)")
      ->check(CLI::Range(0, 1024));
  o.kv_type.add_to(app);
  app.add_flag("--no-progress", o.no_progress, "no progress line on stderr");
}

RunFunction setup_eval(CLI::App& app) {
  app.require_subcommand(1, 1);
  auto prefs_options = std::make_shared<PrefsOptions>();
  CLI::App* prefs = app.add_subcommand(
      "prefs", "preference accuracy, reward margin and log-probs of a policy on pairs JSONL");
  setup_prefs(*prefs, *prefs_options);
  return [prefs, prefs_options]() -> int {
    if (prefs->parsed()) return run_prefs(*prefs_options);
    fail("no evaluation named (see tulu eval --help)");
  };
}

const bool registered_eval = register_command(
    {"eval", "evaluate a model: `eval prefs` = preference accuracy / DPO rewards on pairs", 320,
     setup_eval});

}  // namespace

}  // namespace tulu::cli

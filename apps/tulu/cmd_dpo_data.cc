// tulu dpo-data: shows how DPO training will see a preference JSONL file — each kept pair's
// prompt, chosen and rejected token ids (see train/preference_data.h). Only the tokenizer is
// needed; -m may also name a tokenizer.json / tokenizer.model.
//
//   tulu dpo-data -m DIR --data F.jsonl [--max-length N] [--max-prompt-length N]
//                 [--skip-bad-rows]
//     stdout: {"line": L, "prompt_ids": [...], "chosen_ids": [...], "rejected_ids": [...]}
//             per kept pair, in file order (the completions end in </s> unless truncated)
//     stderr: a summary line (rows read, kept, dropped, truncated, bad rows skipped)
// A bad row is an error naming file:line and the field (exit 1) unless --skip-bad-rows.
#include <iostream>
#include <memory>
#include <string>

#include "command.h"
#include "core/error.h"
#include "json_ids.h"
#include "model_tokenizer.h"
#include "train/preference_data.h"

namespace tulu::cli {

namespace {

// Quoted by --help (the contract is preference_data.h's).
constexpr const char* kTruncationRule =
    "Truncation (TRL's rule, truncation_mode keep_end): when prompt + longer completion > "
    "--max-length, the prompt is first cut to --max-prompt-length tokens keeping BOS and its "
    "end (unless -1); then, if still too long, both completions are cut to max-length - prompt "
    "length keeping their start. A pair with an empty completion left is dropped and counted.\n";

struct DpoDataCliOptions {
  std::string model;
  std::string data;
  PreferenceDataOptions data_options;
  int threads = 0;
};

int run_dpo_data(const DpoDataCliOptions& o) {
  const auto tokenizer = load_tokenizer_or_model(o.model);
  PreferenceDataOptions options = o.data_options;
  options.threads = resolve_threads(o.threads);
  const PreferenceDataset dataset = load_preference_jsonl(o.data, *tokenizer, options);
  std::string line;
  for (const PreferencePair& pair : dataset.pairs) {
    line = "{\"line\":" + std::to_string(pair.line) + ",\"prompt_ids\":";
    append_json_ids(line, pair.prompt_ids);
    line += ",\"chosen_ids\":";
    append_json_ids(line, pair.chosen_ids);
    line += ",\"rejected_ids\":";
    append_json_ids(line, pair.rejected_ids);
    line += "}\n";
    std::cout << line;
  }
  std::cout.flush();
  std::cerr << "rows read: " << dataset.rows_read << ", kept: " << dataset.pairs.size()
            << ", dropped (empty completion): " << dataset.dropped_empty
            << ", truncated: " << dataset.truncated << ", bad rows skipped: " << dataset.bad_rows
            << "\n";
  if (dataset.bad_rows > 0) std::cerr << "first bad row: " << dataset.first_bad_row << "\n";
  return 0;
}

RunFunction setup_dpo_data(CLI::App& app) {
  auto o = std::make_shared<DpoDataCliOptions>();
  app.footer(kTruncationRule);
  app.add_option("-m,--model", o->model,
                 "model directory with tokenizer.json or tokenizer.model (or one of those files)")
      ->required();
  app.add_option("--data", o->data,
                 "JSON lines: ultrafeedback_binarized rows ({\"chosen\": [messages], "
                 "\"rejected\": [messages]}) or {\"prompt\", \"chosen\", \"rejected\"} strings")
      ->required();
  app.add_option("--max-length", o->data_options.max_length,
                 "prompt + longer completion limit in tokens (default 8192)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--max-prompt-length", o->data_options.max_prompt_length,
                 "cut over-long prompts to this many tokens, keeping the end (default -1: none)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30) | CLI::IsMember({int64_t{-1}}));
  app.add_flag("--skip-bad-rows", o->data_options.skip_bad_rows,
               "count and skip malformed rows instead of stopping at the first");
  app.add_option("-t,--threads", o->threads, "tokenizing threads (0 = all hardware threads)")
      ->check(CLI::Range(0, 1024));
  return [o] { return run_dpo_data(*o); };
}

const bool registered_dpo_data = register_command(
    {"dpo-data", "show a DPO preference JSONL file as training sees it: prompt/chosen/rejected ids",
     311, setup_dpo_data});

}  // namespace

}  // namespace tulu::cli

// tulu sft-data: shows how SFT training will see a JSONL file — each kept row's token ids
// and labels (−100 = no loss), as open-instruct's finetune.py encodes them (see
// train/sft_data.h). Only the tokenizer is needed; -m may also name a tokenizer.json /
// tokenizer.model.
//
//   tulu sft-data -m DIR --data F.jsonl [--max-seq-length N] [--skip-bad-rows]
//     stdout: {"line": L, "input_ids": [...], "labels": [...]} per kept row, in file order
//     stderr: a summary line (rows read, kept, dropped, truncated, bad rows skipped)
// A bad row is an error naming file:line and the field (exit 1) unless --skip-bad-rows.
#include <iostream>
#include <memory>
#include <string>

#include "command.h"
#include "core/error.h"
#include "json_ids.h"
#include "model_tokenizer.h"
#include "train/sft_data.h"

namespace tulu::cli {

namespace {

struct SftDataCliOptions {
  std::string model;
  std::string data;
  int64_t max_seq_length = 8192;
  bool skip_bad_rows = false;
  int threads = 0;
};

int run_sft_data(const SftDataCliOptions& o) {
  const auto tokenizer = load_tokenizer_or_model(o.model);
  SftDataOptions options;
  options.max_seq_length = o.max_seq_length;
  options.skip_bad_rows = o.skip_bad_rows;
  options.threads = resolve_threads(o.threads);
  const SftDataset dataset = load_sft_jsonl(o.data, *tokenizer, options);
  std::string line;
  for (const SftExample& example : dataset.examples) {
    line = "{\"line\":" + std::to_string(example.line) + ",\"input_ids\":";
    append_json_ids(line, example.input_ids);
    line += ",\"labels\":";
    append_json_ids(line, example.labels);
    line += "}\n";
    std::cout << line;
  }
  std::cout.flush();
  std::cerr << "rows read: " << dataset.rows_read << ", kept: " << dataset.examples.size()
            << ", dropped (no target token): " << dataset.dropped_no_labels
            << ", truncated: " << dataset.truncated << ", bad rows skipped: " << dataset.bad_rows
            << "\n";
  if (dataset.bad_rows > 0) std::cerr << "first bad row: " << dataset.first_bad_row << "\n";
  return 0;
}

RunFunction setup_sft_data(CLI::App& app) {
  auto o = std::make_shared<SftDataCliOptions>();
  app.add_option("-m,--model", o->model,
                 "model directory with tokenizer.json or tokenizer.model (or one of those files)")
      ->required();
  app.add_option("--data", o->data,
                 "JSON lines: {\"messages\": [...]}, {\"prompt\", \"completion\"} or {\"text\"}")
      ->required();
  app.add_option("--max-seq-length", o->max_seq_length,
                 "truncate each tokenized row to this many tokens (default 8192)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_flag("--skip-bad-rows", o->skip_bad_rows,
               "count and skip malformed rows instead of stopping at the first");
  app.add_option("-t,--threads", o->threads, "tokenizing threads (0 = all hardware threads)")
      ->check(CLI::Range(0, 1024));
  return [o] { return run_sft_data(*o); };
}

const bool registered_sft_data = register_command(
    {"sft-data", "show an SFT JSONL file as training sees it: token ids and loss labels", 301,
     setup_sft_data});

}  // namespace

}  // namespace tulu::cli

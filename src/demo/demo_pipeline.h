// `tulu demo`: the Tulu 2 pipeline in miniature, on a synthetic task (synthetic_task.h):
//   1. write the task's data: noisy SFT chats, DPO preference pairs, held-out pairs;
//   2. create a small random Llama model (the Llama 2 tokenizer, vocab 32000);
//   3. SFT it (run_sft) on the noisy chats;
//   4. evaluate the SFT model on the held-out pairs (score_preference_pairs: raw log-prob
//      preference) and on the held-out questions (greedy replies, exact match);
//   5. DPO it (run_dpo) on the preference pairs, the SFT model as the reference;
//   6. evaluate again (raw preference, DPO reward accuracy against the SFT model, task);
//   7. print a before/after table, write DIR/summary.json, show a short streamed chat.
// Every number printed is computed by the run. Output layout under DIR:
//   data/{sft.jsonl, dpo_pairs.jsonl, heldout_pairs.jsonl}, init/ (random model), sft/ (SFT
//   model and metrics), the final DPO model itself (config.json, model.safetensors, tokenizer
//   files, metrics.jsonl) so that `tulu chat -m DIR` works, summary.json, and .tulu-demo (a
//   marker: a later demo run may clear a directory that has it, and no other).
#pragma once

#include <cstdint>
#include <string>

namespace tulu {

struct DemoOptions {
  std::string out_dir = "demo/run";
  int threads = 0;  // 0 = all hardware threads
  uint64_t seed = 1;
  bool quick = false;  // far fewer steps (tests of the plumbing; the numbers are not the demo's)
  bool progress = true;
  // The Llama 2 tokenizer files written into the new model (the binary embeds them).
  std::string tokenizer_model;   // tokenizer.model bytes
  std::string tokenizer_config;  // tokenizer_config.json text
};

// Runs every step, printing to stdout (trainer progress on stderr). Throws tulu::Error on
// failure, e.g. when out_dir is a non-empty directory that an earlier demo did not create.
int run_demo(const DemoOptions& options);

}  // namespace tulu

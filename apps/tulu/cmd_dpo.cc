// tulu dpo: Direct Preference Optimization (the Tulu 2 DPO recipe by default) of a Hugging
// Face model directory on preference pairs (JSON Lines); writes the aligned model, metrics.jsonl
// (TRL's metric names) and, with --save-every, resumable checkpoints into --output.
//
//   tulu dpo -m SFT_MODEL --data prefs.jsonl -o OUT [--loss sigmoid --beta 0.1 ...]
//   tulu dpo -m SFT_MODEL --data prefs.jsonl -o OUT --precompute-ref ref.json
//   tulu dpo -m SFT_MODEL --data prefs.jsonl --dump-grads g.safetensors   (first gradient)
//
// Ranges are checked by validate_dpo_training_options (tulu::Error naming the flag → exit 1).
#include <memory>
#include <string>

#include "command.h"
#include "core/error.h"
#include "train/dpo_trainer.h"
#include "training_cli.h"

namespace tulu::cli {

namespace {

RunFunction setup(CLI::App& app) {
  auto d = std::make_shared<DpoOptions>(default_dpo_options());
  auto model = std::make_shared<ModelOptions>();
  auto loss = std::make_shared<std::string>("sigmoid");
  add_model_options(app, *model);
  SftOptions& o = d->train;
  app.add_option("--data", o.data_path,
                 "preference pairs, JSON Lines: {\"prompt\", \"chosen\", \"rejected\"} as strings "
                 "or as message lists (HuggingFaceH4/ultrafeedback_binarized)")
      ->required();
  app.add_option("-o,--output", o.output_dir,
                 "output directory: final model, metrics.jsonl, checkpoint-<step>/");
  app.add_option("--eval-data", o.eval_data_path, "evaluation pairs (same formats)");
  app.add_option("--loss", *loss, "sigmoid (DPO), ipo, hinge, dpo_norm or simpo")
      ->capture_default_str();
  app.add_option("--beta", d->loss.beta, "DPO beta")->capture_default_str();
  app.add_option("--label-smoothing", d->loss.label_smoothing,
                 "conservative DPO label smoothing in [0, 0.5] (sigmoid, dpo_norm, simpo)")
      ->capture_default_str();
  app.add_option("--simpo-gamma", d->loss.simpo_gamma_beta_ratio,
                 "SimPO target margin as gamma/beta (open-instruct's gamma_beta_ratio)")
      ->capture_default_str();
  app.add_option("--max-length", d->max_length,
                 "prompt + longer completion, tokens; longer pairs: the prompt is cut to "
                 "--max-prompt-length keeping its end, then both completions keeping their "
                 "start (TRL's rule); pairs left with an empty completion are dropped")
      ->capture_default_str();
  app.add_option("--max-prompt-length", d->max_prompt_length,
                 "prompt tokens kept when a pair is too long (-1: no separate limit)")
      ->capture_default_str();
  app.add_option("--ref-model", d->ref_model_dir,
                 "reference model directory (default: a frozen copy of the starting weights); "
                 "F32/BF16/F16 weights only — quantized models are refused, since training "
                 "reads fp32 weights");
  app.add_option("--precompute-ref", d->precompute_ref_path,
                 "compute the reference log-probs of every pair once, store them in FILE (reused "
                 "when it matches the data, lengths and reference weights) and train without a "
                 "reference model in memory");
  add_training_loop_options(app, o, "pairs");
  auto no_progress = std::make_shared<bool>(false);
  app.add_flag("--no-progress", *no_progress, "no progress line on stderr");
  return [d, model, loss, no_progress] {
    try {
      d->loss.type = parse_dpo_loss(*loss);
    } catch (const Error& e) {
      fail("--loss: ", e.what());
    }
    d->train.progress = !*no_progress;
    d->train.model_dir = model->model_dir;
    d->train.threads = model->threads;
    return run_dpo(*d);
  };
}

const bool registered = register_command(
    {"dpo", "preference optimization (Tulu 2 DPO defaults): pairs JSONL -> aligned model", 310,
     setup});

}  // namespace

}  // namespace tulu::cli

// tulu demo: the built-in SFT → DPO demo (demo/demo_pipeline.h) on a synthetic task.
#include <string>

#include "command.h"
#include "demo/demo_pipeline.h"
#include "embedded_files.h"

namespace tulu::cli {

namespace {

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  app.add_option("-o,--output", o->out_dir,
                 "directory for the data, the SFT model and the final (DPO) model; cleared when "
                 "an earlier demo made it, refused when it holds other files")
      ->capture_default_str();
  app.add_option("-t,--threads", o->threads, "compute threads (0 = all hardware threads)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--seed", o->seed, "seed of the data, the model and the data order")
      ->capture_default_str();
  app.add_flag("--quick", o->quick,
               "far fewer training steps (checks the plumbing; the model stays poor)");
  auto no_progress = std::make_shared<bool>(false);
  app.add_flag("--no-progress", *no_progress, "no progress lines on stderr");
  app.footer(
      "Creates a small random Llama model, SFTs it on generated \"which digit is larger?\" "
      "chats (half of them answered wrongly), DPOs it on pairs that prefer the correct answer, "
      "and prints held-out preference and task accuracy before and after, then a short chat.\n");
  return [o, no_progress] {
    o->progress = !*no_progress;
    o->tokenizer_model = std::string(embedded_tokenizer_model());
    o->tokenizer_config = std::string(embedded_tokenizer_config());
    return run_demo(*o);
  };
}

const bool registered =
    register_command({"demo",
                      "the built-in demo: SFT then DPO of a small model on a synthetic task, with "
                      "held-out evaluation before and after",
                      5, setup});

}  // namespace

}  // namespace tulu::cli

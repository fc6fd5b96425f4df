// tulu: one program, one subcommand per job (see command.h for how they register).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

#include "command.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace tulu::cli {

namespace {
std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> commands;
  return commands;
}
}  // namespace

bool register_command(CommandSpec spec) {
  registry().push_back(std::move(spec));
  return true;
}

const std::vector<CommandSpec>& registered_commands() { return registry(); }

void add_model_options(CLI::App& app, ModelOptions& options) {
  app.add_option("-m,--model", options.model_dir,
                 "model directory as downloaded from the Hugging Face hub (config.json, "
                 "*.safetensors or pytorch_model*.bin, tokenizer.model or tokenizer.json)")
      ->required();
  app.add_option("-t,--threads", options.threads, "compute threads (0 = all hardware threads)")
      ->check(CLI::Range(0, 1024));
}

int resolve_threads(int requested) { return requested > 0 ? requested : default_thread_count(); }

}  // namespace tulu::cli

int main(int argc, char** argv) {
  using namespace tulu::cli;
  CLI::App app{"tulu: run, serve, fine-tune and evaluate Llama chat models (Tulu 2) natively"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tulu 0.1.0");

  auto commands = registered_commands();
  std::sort(commands.begin(), commands.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, RunFunction>> runs;
  for (const auto& spec : commands) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    runs.emplace_back(sub, spec.setup(*sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; every real parse error (unknown flag, bad value) exits 2.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  for (auto& [sub, run] : runs) {
    if (!sub->parsed()) continue;
    try {
      return run();
    } catch (const tulu::Error& e) {
      std::fflush(stdout);
      std::cerr << "tulu " << sub->get_name() << ": error: " << e.what() << "\n";
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "tulu " << sub->get_name() << ": error: out of memory\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "tulu " << sub->get_name() << ": internal error: " << e.what() << "\n";
      return 70;
    }
  }
  return 0;
}

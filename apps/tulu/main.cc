// tulu: one program, one subcommand per job (see command.h for how they register).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "command.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "llama/repack_cache.h"
#include "llama/weight_repack.h"

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
  add_weight_flags(app);
}

void add_weight_flags(CLI::App& app) {
  app.add_flag_callback(
      "--no-mmap", [] { tulu::set_files_in_memory(true); },
      "read the weight files into memory instead of mapping them: loading reads the whole "
      "file, then generation runs about 10-20 % faster on this machine (docs/benchmarks.md)");
  app.add_flag_callback(
      "--no-repack", [] { tulu::set_weight_repack(false); },
      "keep Q4_0/Q8_0 weights in the file's layout instead of copying them at load into the "
      "16-row interleaved layout of the AVX-512 kernels: loads in under 0.1 s instead of "
      "0.2-2.5 s (1.1B) without the repack cache, generation 1.3-1.6x slower (also "
      "TULU_REPACK=0)");
  app.add_flag_callback(
      "--no-repack-cache", [] { tulu::set_repack_cache(false); },
      "repack Q4_0/Q8_0 weights in memory at every load instead of writing them once to "
      "a cache file (TULU_CACHE_DIR, else ~/.cache/tulu; as large as those weights) that "
      "later loads map (also TULU_REPACK_CACHE=0)");
  app.add_flag_callback(
      "--bf16-activations",
      [] { tulu::set_bf16_activations(tulu::Bf16Activations::On); },
      "BF16 weights: round prompt activations to bf16 and use the CPU's bf16 dot product "
      "(AVX-512 BF16), as llama.cpp and PyTorch's bf16 inference do; prompts 1.6-1.9x "
      "faster, logits no longer equal to the fp32 reference (also TULU_BF16_ACTIVATIONS=1). "
      "The default for GGUF files; Hugging Face directories default to fp32");
  app.add_flag_callback(
      "--f32-activations",
      [] { tulu::set_bf16_activations(tulu::Bf16Activations::Off); },
      "BF16 weights: keep prompt activations in fp32, the exact fp32 reference's logits "
      "(also TULU_BF16_ACTIVATIONS=0). The default for Hugging Face directories")
      ->excludes("--bf16-activations");
}

int resolve_threads(int requested) { return requested > 0 ? requested : default_thread_count(); }

}  // namespace tulu::cli

namespace {

// When the parse stopped at a command that needs a subcommand and got none (`tulu`, `tulu
// eval`): "tulu eval: choose a subcommand: prefs (see tulu eval --help)", naming them all
// (CLI11 says only "A subcommand is required"). Empty for any other error.
std::string missing_subcommand_message(CLI::App& app) {
  CLI::App* deepest = &app;
  for (bool descended = true; descended;) {
    descended = false;
    for (CLI::App* sub : deepest->get_subcommands([](CLI::App*) { return true; })) {
      if (sub->parsed()) {
        deepest = sub;
        descended = true;
        break;
      }
    }
  }
  if (deepest->get_require_subcommand_min() == 0 || !deepest->get_subcommands().empty()) return {};
  std::string path = "tulu";
  std::vector<std::string> names;
  for (const CLI::App* a = deepest; a->get_parent() != nullptr; a = a->get_parent())
    names.insert(names.begin(), a->get_name());
  for (const std::string& name : names) path += " " + name;
  std::string choices;
  for (CLI::App* sub : deepest->get_subcommands([](CLI::App*) { return true; }))
    choices += (choices.empty() ? "" : ", ") + sub->get_name();
  return path + ": choose a subcommand: " + choices + " (see " + path + " --help)";
}

}  // namespace

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
  } catch (const CLI::RequiredError& e) {
    const std::string message = missing_subcommand_message(app);
    if (message.empty()) return app.exit(e) == 0 ? 0 : 2;
    std::cerr << message << "\n";
    return 2;
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

// Subcommands register themselves (one file per subcommand, cmd_<name>.cc) so that main.cc
// needs no list of them. Each setup function declares its options on the CLI11 subcommand
// and returns the function that runs it after parsing; that function returns the exit code.
// tulu::Error thrown from a command is printed by main as "tulu <cmd>: error: ..." with
// exit code 1; CLI parse errors (unknown flag, bad value) exit with 2.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace tulu::cli {

using RunFunction = std::function<int()>;

struct CommandSpec {
  std::string name;
  std::string description;
  int order;  // position in --help (lower first)
  std::function<RunFunction(CLI::App&)> setup;
};

// Called from a static initializer in each cmd_*.cc; returns true.
bool register_command(CommandSpec spec);
const std::vector<CommandSpec>& registered_commands();

// Shared option conventions.
struct ModelOptions {
  std::string model_dir;  // -m, --model
  int threads = 0;        // -t, --threads (0 = all hardware threads)
};
// -m, -t and add_weight_flags.
void add_model_options(CLI::App& app, ModelOptions& options);
// --no-mmap (weight files read into memory, core/mapped_file.h's set_files_in_memory,
// instead of mapped), --no-repack, --no-repack-cache, --bf16-activations and
// --f32-activations; alone for commands with their own -m.
void add_weight_flags(CLI::App& app);
int resolve_threads(int requested);

}  // namespace tulu::cli

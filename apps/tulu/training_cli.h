// Command-line options shared by the training commands (`tulu sft`, `tulu dpo`): the loop,
// optimizer, schedule, checkpoint and resume options of SftOptions. Each command adds its data
// and length options itself. `unit` names what a batch counts ("sequences" or "pairs").
#pragma once

#include <CLI/CLI.hpp>

#include "train/sft_trainer.h"

namespace tulu::cli {

void add_training_loop_options(CLI::App& app, SftOptions& o, const char* unit);

}  // namespace tulu::cli

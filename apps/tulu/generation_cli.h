// The generation options shared by `tulu generate` and `tulu chat`: one list that drives
// --help, parsing and the overrides handed to resolve_generate_options (which validates
// them and fills the model's defaults; see generate/generation_defaults.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "generate/generation_defaults.h"
#include "kv_type_option.h"

namespace tulu::cli {

struct GenerationCli {
  double temperature = 0.0, top_p = 1.0, min_p = 0.0, repetition_penalty = 1.0;
  int top_k = 0, max_new_tokens = 0;
  int64_t seed = 0;
  std::vector<std::string> stop_strings;
  int ctx_size = 0;
  KvTypeOption kv_type;
  std::string chat_format;
  // The options, to tell which ones were given.
  CLI::Option *temperature_opt = nullptr, *top_p_opt = nullptr, *min_p_opt = nullptr,
              *repetition_penalty_opt = nullptr, *top_k_opt = nullptr,
              *max_new_tokens_opt = nullptr, *seed_opt = nullptr;

  // Range checks happen in validate_sampling (tulu::Error naming the option and range).
  // ctx_default: how the command sizes the KV cache when --ctx-size is not given.
  void add_to(CLI::App& app, const std::string& ctx_default) {
    temperature_opt = app.add_option(
        "--temperature", temperature,
        "sampling temperature >= 0; 0 = greedy (argmax). Default: greedy, unless the model's "
        "generation_config.json sets do_sample (then its temperature, top_k (50 if unset), "
        "top_p), as Hugging Face generate() does");
    top_k_opt = app.add_option("--top-k", top_k, "keep the K most probable tokens (ties kept); 0 = off");
    top_p_opt = app.add_option("--top-p", top_p, "nucleus sampling: keep the most probable tokens "
                                                 "holding probability P, in (0, 1]; 1 = off");
    min_p_opt = app.add_option("--min-p", min_p, "drop tokens below P x the top probability, "
                                                 "in [0, 1]; 0 = off");
    repetition_penalty_opt = app.add_option(
        "--repetition-penalty", repetition_penalty,
        "> 0; divides positive / multiplies negative logits of every token seen so far (prompt "
        "included); 1 = off (default, or generation_config.json's)");
    seed_opt = app.add_option("--seed", seed, "random seed for sampling (default: a random one, "
                                              "printed in the statistics)");
    max_new_tokens_opt = app.add_option(
        "-n,--max-new-tokens", max_new_tokens,
        "most tokens to generate (default: generation_config.json's max_new_tokens, else 256)");
    app.add_option("--stop", stop_strings,
                   "stop when this text is generated (not printed); repeatable")
        ->allow_extra_args(false);
    app.add_option("--ctx-size", ctx_size,
                   "KV cache capacity in tokens, <= the model's max_position_embeddings "
                   "(default: " + ctx_default + ")")
        ->check(CLI::NonNegativeNumber);
    kv_type.add_to(app);
    app.add_option("--chat-format", chat_format,
                   "tulu, llama-2-chat, zephyr or chatml (default: from tokenizer_config.json's "
                   "chat_template when known, else tulu)");
  }

  GenerationOverrides overrides() const {
    GenerationOverrides o;
    if (temperature_opt->count() > 0) o.temperature = temperature;
    if (top_k_opt->count() > 0) o.top_k = top_k;
    if (top_p_opt->count() > 0) o.top_p = top_p;
    if (min_p_opt->count() > 0) o.min_p = min_p;
    if (repetition_penalty_opt->count() > 0) o.repetition_penalty = repetition_penalty;
    if (max_new_tokens_opt->count() > 0) o.max_new_tokens = max_new_tokens;
    if (seed_opt->count() > 0) {
      TULU_CHECK(seed >= 0, "--seed must be an integer >= 0, got ", seed);
      o.seed = static_cast<uint64_t>(seed);
    }
    o.stop_strings = stop_strings;
    return o;
  }
};

}  // namespace tulu::cli

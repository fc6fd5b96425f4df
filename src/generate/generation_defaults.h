// Generation settings for a model directory: what its generation_config.json asks for,
// overridden by what the user gave. Shared by `tulu generate` and `tulu chat`.
//
// Defaults (Hugging Face generate()'s, read from generation_config.json):
//  * do_sample true → sample with its temperature (default 1.0), top_k (default 50, as
//    HF's GenerationConfig), top_p (default 1.0); absent or false → greedy (temperature 0);
//  * repetition_penalty from the file (default 1.0), also in greedy mode;
//  * max_new_tokens from the file, else 256;
//  * EOS ids: generation_config.json's eos_token_id (int or list) when present, else
//    config.json's, else the tokenizer's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "generate/generator.h"
#include "llama/model.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

// Values the user set explicitly (nullopt = use the model's default).
struct GenerationOverrides {
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k, max_new_tokens;
  std::optional<uint64_t> seed;  // nullopt = a random seed (reported in the result)
  std::vector<std::string> stop_strings;
};

constexpr int kDefaultMaxNewTokens = 256;

// The EOS ids generation stops at (see above).
std::vector<int> resolve_eos_ids(const LlamaModel& model, const Tokenizer& tokenizer);

// Defaults from the model, then the overrides; validated (tulu::Error naming the option).
GenerateOptions resolve_generate_options(const GenerationConfig& generation_config,
                                         const GenerationOverrides& overrides,
                                         std::vector<int> eos_ids);

// Names of the sampling options the user set that greedy decoding ignores (for a note).
std::vector<std::string> ignored_in_greedy(const GenerationOverrides& overrides,
                                           const SamplingParams& resolved);

}  // namespace tulu

// The demo's starting model: a seeded random Llama (as `tulu init` writes one) in Hugging
// Face layout, small enough to train in a minute on 2 cores: hidden 128, 2 layers, 4 heads,
// MLP 336, 128 positions, the Llama 2 tokenizer (vocab 32000).
#pragma once

#include <cstdint>
#include <string>

namespace tulu {

struct DemoModelInfo {
  int64_t parameters = 0;
  int layers = 0, hidden = 0, vocab = 0;
};

// Writes config.json, generation_config.json, model.safetensors (f32, normal(0, 0.02),
// RMSNorm weights 1; random_init.h), tokenizer.model and tokenizer_config.json into dir
// (created). Throws tulu::Error when a file cannot be written.
DemoModelInfo write_demo_model(const std::string& dir, uint64_t seed,
                               const std::string& tokenizer_model,
                               const std::string& tokenizer_config);

}  // namespace tulu

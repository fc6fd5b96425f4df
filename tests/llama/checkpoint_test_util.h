// Helpers shared by the checkpoint tests: scratch directories, raw file bytes, an
// expectation that a call throws tulu::Error whose message contains given fragments; and,
// for the tests of every layer above (generate, serve, eval), small seeded random models.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "llama/config.h"
#include "llama/model.h"
#include "llama/tensor_store.h"

namespace tulu::testing_util {

// A fresh directory under the system temp dir, removed at destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ = (std::filesystem::temp_directory_path() /
             ("tulu_" + tag + "_" + std::to_string(::getpid())))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs f; expects tulu::Error containing every fragment. Returns the message.
inline std::string expect_error(const std::function<void()>& f,
                                std::initializer_list<std::string> fragments) {
  try {
    f();
  } catch (const tulu::Error& e) {
    const std::string message = e.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message: " << message << "\nmissing: " << fragment;
    }
    return message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected tulu::Error, got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected tulu::Error, nothing was thrown";
  return {};
}

// Random generator for fuzz loops (fixed seed: failures reproduce).
class TestRng {
 public:
  explicit TestRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

// A small Llama shape for the tests of generation and serving: hidden 32, 2 layers, 4 heads
// of 8 with 2 KV heads (GQA), the Llama 2 tokenizer's 32000-token vocabulary, 256 positions.
inline LlamaConfig tiny_llama_config() {
  LlamaConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 32000;
  c.rms_norm_eps = 1e-6;
  c.max_position_embeddings = 256;
  return c;
}

// Seeded random F32 weights for every parameter of `c`, in llama_param_specs order, with
// tests/reference/hf_checkpoint.py's scales (O(1) logits): linear layers N(0, 1/in),
// embeddings N(0, 1), norms 1 + N(0, 0.1).
inline std::vector<std::pair<ParamSpec, std::vector<float>>> random_llama_weights(
    const LlamaConfig& c, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::pair<ParamSpec, std::vector<float>>> out;
  for (const ParamSpec& spec : llama_param_specs(c)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    const bool matrix = spec.shape.size() == 2;
    const float scale = matrix && spec.name != "model.embed_tokens.weight"
                            ? 1.0f / std::sqrt(static_cast<float>(spec.shape[1]))
                            : 1.0f;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = matrix ? scale * normal(gen) : 1.0f + 0.1f * normal(gen);
    out.emplace_back(spec, std::move(v));
  }
  return out;
}

// An in-memory LlamaModel (format "memory") holding random_llama_weights(c, seed) as F32.
inline std::unique_ptr<LlamaModel> random_llama_model(const LlamaConfig& c, uint32_t seed) {
  TensorStore store;
  for (const auto& [spec, values] : random_llama_weights(c, seed)) {
    TensorView view;
    view.dtype = DType::F32;
    view.shape = spec.shape;
    auto* data = static_cast<float*>(store.allocate(values.size() * sizeof(float)));
    std::copy(values.begin(), values.end(), data);
    view.data = data;
    store.add(spec.name, view, "memory");
  }
  return std::make_unique<LlamaModel>(c, std::move(store), "memory");
}

}  // namespace tulu::testing_util

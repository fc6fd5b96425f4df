// Test helper: small in-memory Llama models with chosen per-tensor dtypes and deterministic
// values, and scratch directories.
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "llama/model.h"
#include "tensor/half.h"

namespace tulu::train_test {

inline LlamaConfig small_config(bool tie = false, int hidden = 8, int layers = 2) {
  return parse_llama_config({{"hidden_size", hidden},
                             {"intermediate_size", 3 * hidden},
                             {"num_hidden_layers", layers},
                             {"num_attention_heads", 2},
                             {"num_key_value_heads", 1},
                             {"vocab_size", 11},
                             {"tie_word_embeddings", tie},
                             {"bos_token_id", 1},
                             {"eos_token_id", 2}},
                            "test config");
}

// Value i of parameter `index`: varied signs and magnitudes, some not representable in 16 bits.
inline float test_value(size_t index, size_t i) {
  return static_cast<float>(
      std::sin(0.37 * static_cast<double>(i) + 1.3 * static_cast<double>(index)) *
      (1.0 + 0.01 * static_cast<double>(i % 13)));
}

// A model whose parameter `index` (llama_param_specs order) is stored in dtype_of(index, name);
// values test_value(index, i) rounded to that dtype. Quantized dtypes get zero blocks.
inline std::unique_ptr<LlamaModel> make_model(
    const LlamaConfig& config, const std::function<DType(size_t, const std::string&)>& dtype_of) {
  TensorStore store;
  const auto specs = llama_param_specs(config);
  for (size_t index = 0; index < specs.size(); ++index) {
    const ParamSpec& spec = specs[index];
    const DType dtype = dtype_of(index, spec.name);
    size_t numel = 1;
    for (int64_t d : spec.shape) numel *= static_cast<size_t>(d);
    const size_t nbytes = dtype_row_bytes(dtype, numel);
    void* data = store.allocate(nbytes);
    std::memset(data, 0, nbytes);
    for (size_t i = 0; i < numel && !dtype_is_quantized(dtype); ++i) {
      const float v = test_value(index, i);
      if (dtype == DType::F32) static_cast<float*>(data)[i] = v;
      if (dtype == DType::BF16) static_cast<uint16_t*>(data)[i] = f32_to_bf16(v);
      if (dtype == DType::F16) static_cast<uint16_t*>(data)[i] = f32_to_f16(v);
    }
    store.add(spec.name, TensorView{dtype, spec.shape, data}, "memory");
  }
  return std::make_unique<LlamaModel>(config, std::move(store), "test model");
}

// A fresh directory under TULU_TEST_TMP (or the system temp dir), removed at destruction.
class Scratch {
 public:
  explicit Scratch(const std::string& tag) {
    const char* base = std::getenv("TULU_TEST_TMP");
    std::filesystem::path root =
        base ? std::filesystem::path(base) : std::filesystem::temp_directory_path();
    path_ = (root / ("train_" + tag + "_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tulu::train_test

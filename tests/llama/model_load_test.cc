// The parameter registry and LlamaModel binding: every tensor checked (missing, unexpected,
// wrong shape or rank), tied embeddings, ignorable buffers, mixed dtypes, parameter count;
// LlamaModel::load of directories written by tulu's writer; the random initialiser.
#include <cmath>
#include <cstring>

#include "checkpoint_test_util.h"
#include "core/file_io.h"
#include "llama/checkpoint.h"
#include "llama/model.h"
#include "llama/random_init.h"
#include "tensor/half.h"

namespace tulu {
namespace {

using testing_util::expect_error;
using testing_util::ScratchDir;

LlamaConfig small_config(bool tie = false) {
  return parse_llama_config(
      {{"hidden_size", 16}, {"intermediate_size", 40}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
       {"num_key_value_heads", 2}, {"vocab_size", 50}, {"tie_word_embeddings", tie}},
      "test config");
}

// A store with every registry tensor (F32, value = its index in the registry), owned memory.
TensorStore full_store(const LlamaConfig& c, DType dtype = DType::F32) {
  TensorStore store;
  const auto specs = llama_param_specs(c);
  for (size_t i = 0; i < specs.size(); ++i) {
    TensorView v{dtype, specs[i].shape, nullptr};
    void* data = store.allocate(v.nbytes());
    std::memset(data, static_cast<int>(i), v.nbytes());
    v.data = data;
    store.add(specs[i].name, v, "mem.safetensors");
  }
  return store;
}

void add_tensor(TensorStore& store, const std::string& name, std::vector<int64_t> shape, DType dtype = DType::F32) {
  TensorView v{dtype, std::move(shape), nullptr};
  v.data = store.allocate(v.nbytes());
  store.add(name, v, "extra.safetensors");
}

TEST(ParamSpecsTest, ListsTransformersNamesAndShapes) {
  const LlamaConfig c = small_config();
  const auto specs = llama_param_specs(c);
  ASSERT_EQ(specs.size(), 1u + 9u * 2u + 1u + 1u);
  EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(specs.front().shape, (std::vector<int64_t>{50, 16}));
  EXPECT_EQ(specs[1].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(specs[1].shape, (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(specs[2].name, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(specs[2].shape, (std::vector<int64_t>{8, 16}));  // 2 KV heads × head_dim 4
  EXPECT_EQ(specs[4].shape, (std::vector<int64_t>{16, 16}));  // o_proj [hidden, q_dim]
  EXPECT_EQ(specs[7].name, "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(specs[7].shape, (std::vector<int64_t>{16, 40}));
  EXPECT_EQ(specs.back().name, "lm_head.weight");
  EXPECT_EQ(llama_param_specs(small_config(true)).back().name, "model.norm.weight");
}

TEST(ModelBindTest, BindsEveryViewAndCountsParameters) {
  const LlamaConfig c = small_config();
  LlamaModel model(c, full_store(c), "mem");
  const auto& w = model.weights();
  ASSERT_EQ(w.layers.size(), 2u);
  EXPECT_EQ(w.layers[1].gate_proj.data, model.store().get("model.layers.1.mlp.gate_proj.weight").view.data);
  EXPECT_EQ(w.lm_head.data, model.store().get("lm_head.weight").view.data);
  // Independent count from the architecture's formula.
  const int64_t h = 16, i = 40, v = 50, kv = 8, layers = 2;
  const int64_t per_layer = h * h + 2 * kv * h + h * h + 3 * h * i + 2 * h;
  EXPECT_EQ(model.parameter_count(), 2 * v * h + layers * per_layer + h);
}

TEST(ModelBindTest, TiedEmbeddingsViewTheEmbeddingAndIgnoreAStoredLmHead) {
  const LlamaConfig c = small_config(true);
  {
    LlamaModel model(c, full_store(c), "mem");
    EXPECT_EQ(model.weights().lm_head.data, model.weights().embed_tokens.data);
    EXPECT_EQ(model.parameter_count(), LlamaModel(small_config(), full_store(small_config()), "m").parameter_count() -
                                           50 * 16);
  }
  TensorStore store = full_store(c);
  add_tensor(store, "lm_head.weight", {50, 16});
  LlamaModel model(c, std::move(store), "mem");
  EXPECT_EQ(model.weights().lm_head.data, model.weights().embed_tokens.data);
}

TEST(ModelBindTest, RotaryBuffersAreIgnoredOtherExtrasRefused) {
  const LlamaConfig c = small_config();
  TensorStore store = full_store(c);
  add_tensor(store, "model.layers.0.self_attn.rotary_emb.inv_freq", {2});
  add_tensor(store, "model.layers.1.self_attn.rotary_emb.inv_freq", {2});
  EXPECT_NO_THROW(LlamaModel(c, std::move(store), "mem"));
  EXPECT_FALSE(is_ignorable_buffer("model.layers.x.self_attn.rotary_emb.inv_freq"));
  EXPECT_FALSE(is_ignorable_buffer("model.layers..self_attn.rotary_emb.inv_freq"));

  TensorStore extra = full_store(c);
  add_tensor(extra, "model.layers.2.mlp.up_proj.weight", {40, 16});
  expect_error([&] { LlamaModel(c, std::move(extra), "dir"); },
               {"dir", "unexpected", "model.layers.2.mlp.up_proj.weight", "extra.safetensors"});
}

TEST(ModelBindTest, MissingTensorsAreListed) {
  const LlamaConfig c = small_config();
  TensorStore store;
  for (const auto& spec : llama_param_specs(c)) {
    if (spec.name.find("layers.1.") != std::string::npos || spec.name == "lm_head.weight") continue;
    add_tensor(store, spec.name, spec.shape);
  }
  expect_error([&] { LlamaModel(c, std::move(store), "dir"); },
               {"dir", "10 tensor(s) missing", "model.layers.1.self_attn.q_proj.weight", "and 5 more"});
}

TEST(ModelBindTest, WrongShapeOrRankNamesFileTensorAndBothShapes) {
  const LlamaConfig c = small_config();
  TensorStore store;
  for (const auto& spec : llama_param_specs(c)) {
    if (spec.name == "model.layers.1.mlp.up_proj.weight") {
      add_tensor(store, spec.name, {16, 40});
    } else if (spec.name == "model.norm.weight") {
      add_tensor(store, spec.name, {1, 16});
    } else {
      add_tensor(store, spec.name, spec.shape);
    }
  }
  // The map is ordered by name, but the registry order decides which is reported first.
  expect_error([&] { LlamaModel(c, std::move(store), "dir"); },
               {"extra.safetensors: tensor 'model.layers.1.mlp.up_proj.weight': expected shape [40, 16], file has [16, 40]"});
  TensorStore rank;
  for (const auto& spec : llama_param_specs(c)) {
    add_tensor(rank, spec.name, spec.name == "model.norm.weight" ? std::vector<int64_t>{1, 16} : spec.shape);
  }
  expect_error([&] { LlamaModel(c, std::move(rank), "dir"); },
               {"tensor 'model.norm.weight': expected shape [16], file has [1, 16]"});
}

TEST(ModelBindTest, MixedDtypesAreAllowed) {
  const LlamaConfig c = small_config();
  TensorStore store;
  const auto specs = llama_param_specs(c);
  for (size_t i = 0; i < specs.size(); ++i) {
    const DType dtypes[] = {DType::F32, DType::F16, DType::BF16};
    add_tensor(store, specs[i].name, specs[i].shape, dtypes[i % 3]);
  }
  LlamaModel model(c, std::move(store), "mem");
  EXPECT_EQ(model.weights().embed_tokens.dtype, DType::F32);
  EXPECT_EQ(model.weights().layers[0].q_proj.dtype, DType::F16);
  EXPECT_EQ(model.weights().layers[0].k_proj.dtype, DType::BF16);
}

// --- directories ---------------------------------------------------------------------

void write_model(const std::string& dir, const LlamaConfig& c, DType dtype, int shards, uint64_t seed) {
  const auto specs = llama_param_specs(c);
  std::vector<TensorSpecToWrite> tensors;
  for (const auto& s : specs) tensors.push_back({s.name, dtype, s.shape});
  write_safetensors_checkpoint(dir, tensors,
                               [&](size_t i, void* out) { fill_initial_weights(specs[i], seed, 0.02, dtype, out); },
                               shards);
  write_file_atomic(join_path(dir, "config.json"), llama_config_to_json(c).dump());
}

TEST(ModelLoadTest, LoadsWhatTheWriterWrote) {
  ScratchDir dir("model_load");
  const LlamaConfig c = small_config();
  write_model(dir.path(), c, DType::BF16, 3, 7);
  write_file_atomic(dir.file("generation_config.json"), R"({"eos_token_id": [2, 3], "temperature": 0.7})");
  auto model = LlamaModel::load(dir.path());
  EXPECT_EQ(model->weight_format(), "safetensors (3 shards)");
  EXPECT_EQ(model->generation_config().eos_token_ids, (std::vector<int>{2, 3}));
  EXPECT_EQ(model->weights().layers[1].down_proj.dtype, DType::BF16);
  // The stored values are those of the initialiser (same seed, same stream).
  const auto specs = llama_param_specs(c);
  std::vector<uint16_t> expected(16 * 40);
  fill_initial_weights(specs[7], 7, 0.02, DType::BF16, expected.data());
  const TensorView& down = model->weights().layers[0].down_proj;
  EXPECT_EQ(std::memcmp(down.data, expected.data(), down.nbytes()), 0);
}

TEST(ModelLoadTest, DirectoryErrorsNameTheProblem) {
  ScratchDir dir("model_load_err");
  expect_error([&] { LlamaModel::load(dir.file("absent")); }, {"absent", "does not exist"});
  expect_error([&] { LlamaModel::load(dir.path()); }, {"config.json is missing"});
  write_file_atomic(dir.file("config.json"), llama_config_to_json(small_config()).dump());
  expect_error([&] { LlamaModel::load(dir.path()); }, {"no weights found"});
  write_model(dir.path(), small_config(), DType::F32, 1, 1);
  write_file_atomic(dir.file("generation_config.json"), R"({"top_p": 7})");
  expect_error([&] { LlamaModel::load(dir.path()); }, {"generation_config.json", "top_p"});
  std::remove(dir.file("generation_config.json").c_str());
  // A config whose shapes disagree with the weights.
  Json bigger = llama_config_to_json(small_config());
  bigger["intermediate_size"] = 48;
  write_file_atomic(dir.file("config.json"), bigger.dump());
  expect_error([&] { LlamaModel::load(dir.path()); },
               {"model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight': expected shape [48, 16], file has [40, 16]"});
}

// --- random initialisation --------------------------------------------------------------

TEST(RandomInitTest, DeterministicPerSeedAndName) {
  const ParamSpec spec{"model.layers.0.mlp.up_proj.weight", {64, 32}};
  std::vector<float> a(64 * 32), b(64 * 32), c(64 * 32);
  fill_initial_weights(spec, 1, 0.02, DType::F32, a.data());
  fill_initial_weights(spec, 1, 0.02, DType::F32, b.data());
  fill_initial_weights(spec, 2, 0.02, DType::F32, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<float> other(64 * 32);
  fill_initial_weights({"model.layers.1.mlp.up_proj.weight", {64, 32}}, 1, 0.02, DType::F32, other.data());
  EXPECT_NE(a, other);
  // bf16 output is the f32 stream rounded.
  std::vector<uint16_t> h(64 * 32);
  fill_initial_weights(spec, 1, 0.02, DType::BF16, h.data());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(h[i], f32_to_bf16(a[i]));
}

TEST(RandomInitTest, NormalWithTheRequestedStdAndOnesForNorms) {
  const size_t n = 200000;
  std::vector<float> v(n);
  fill_initial_weights({"w", {static_cast<int64_t>(n)/ 100, 100}}, 3, 0.02, DType::F32, v.data());
  double sum = 0, sum2 = 0;
  for (float x : v) {
    sum += x;
    sum2 += static_cast<double>(x) * x;
  }
  const double mean = sum / n, std = std::sqrt(sum2 / n - mean * mean);
  // Standard errors: mean 0.02/sqrt(n) ≈ 4.5e-5, std 0.02/sqrt(2n) ≈ 3.2e-5; allow 5 of them.
  EXPECT_NEAR(mean, 0.0, 5 * 0.02 / std::sqrt(n));
  EXPECT_NEAR(std, 0.02, 5 * 0.02 / std::sqrt(2.0 * n));
  std::vector<float> norm(16);
  fill_initial_weights({"model.norm.weight", {16}}, 3, 0.02, DType::F32, norm.data());
  for (float x : norm) EXPECT_EQ(x, 1.0f);
}

}  // namespace
}  // namespace tulu

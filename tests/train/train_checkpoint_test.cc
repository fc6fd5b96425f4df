// save_hf_model (reloads with our loader: same tensors, dtypes, shapes, safetensors header
// fields exactly; tokenizer files copied; stale shard index removed) and training checkpoints
// (bitwise round trip, atomic replace, find_latest_checkpoint ignoring leftovers, and an
// error naming the file and tensor or field for every corruption).
#include "train/train_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"
#include "llama/checkpoint.h"
#include "tensor/half.h"
#include "train_model_fixture.h"

namespace tulu {
namespace {

using train_test::make_model;
using train_test::Scratch;
using train_test::small_config;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The JSON header of a safetensors file (8-byte little-endian length, then JSON).
Json safetensors_header(const std::string& path) {
  const std::string bytes = read_bytes(path);
  EXPECT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return parse_json(bytes.substr(8, n), path);
}

std::string expect_error(const std::function<void()>& f,
                         std::initializer_list<std::string> fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message: " << message << "\nmissing: " << fragment;
    }
    return message;
  }
  ADD_FAILURE() << "expected tulu::Error";
  return {};
}

float rounded(float v, DType dtype) {
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(v));
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(v));
  return v;
}

struct Loaded {
  std::unique_ptr<LlamaModel> model;
  ParamLayout layout;
  std::vector<float> params;
};

Loaded master_of(const LlamaConfig& config,
                 const std::function<DType(size_t, const std::string&)>& dtype_of) {
  auto model = make_model(config, dtype_of);
  std::vector<float> params;
  ParamLayout layout = load_master_weights(*model, params);
  // Training moved the weights off the 16-bit grid: saving must round them.
  for (size_t i = 0; i < params.size(); ++i)
    params[i] += 1e-4f * static_cast<float>(i % 17) + 3e-6f;
  return {std::move(model), std::move(layout), std::move(params)};
}

TEST(SaveHfModel, ReloadsWithTheSameTensorsDtypesAndHeader) {
  const DType cycle[] = {DType::BF16, DType::F32, DType::F16};
  struct Case {
    const char* name;
    std::function<DType(size_t, const std::string&)> dtype_of;
    const char* torch_dtype;
  };
  const Case cases[] = {
      {"f32", [](size_t, const std::string&) { return DType::F32; }, "float32"},
      {"bf16", [](size_t, const std::string&) { return DType::BF16; }, "bfloat16"},
      {"f16", [](size_t, const std::string&) { return DType::F16; }, "float16"},
      {"mixed", [&](size_t i, const std::string&) { return cycle[i % 3]; }, "bfloat16"},
  };
  for (bool tie : {false, true}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(c.name) + (tie ? " tied" : ""));
      const LlamaConfig config = small_config(tie);
      Loaded m = master_of(config, c.dtype_of);
      Scratch dir("save_hf");
      const std::string out = dir.file("model");  // created by save_hf_model
      save_hf_model(out, config, m.layout, m.params.data(), "");

      auto reloaded = LlamaModel::load(out);
      EXPECT_EQ(reloaded->config().hidden_size, config.hidden_size);
      EXPECT_EQ(reloaded->config().num_hidden_layers, config.num_hidden_layers);
      EXPECT_EQ(reloaded->config().num_key_value_heads, config.num_key_value_heads);
      EXPECT_EQ(reloaded->config().tie_word_embeddings, tie);
      EXPECT_EQ(reloaded->config().eos_token_ids, config.eos_token_ids);
      EXPECT_EQ(reloaded->config().torch_dtype, c.torch_dtype);
      EXPECT_EQ(read_json_file(out + "/config.json")["torch_dtype"], c.torch_dtype);
      std::vector<float> back;
      const ParamLayout back_layout = load_master_weights(*reloaded, back);
      ASSERT_EQ(back.size(), m.params.size());
      for (const ParamEntry& e : m.layout.entries()) {
        EXPECT_EQ(back_layout.at(e.name).stored_dtype, e.stored_dtype) << e.name;
        for (size_t i = e.offset; i < e.offset + e.numel; ++i) {
          ASSERT_EQ(back[i], rounded(m.params[i], e.stored_dtype))
              << e.name << " element " << i - e.offset;
        }
      }
      // The header, exactly: one entry per parameter with safetensors' dtype names and the
      // PyTorch shapes, plus transformers' {"format": "pt"}.
      const Json header = safetensors_header(out + "/model.safetensors");
      EXPECT_EQ(header.size(), m.layout.entries().size() + 1);
      EXPECT_EQ(header["__metadata__"], Json({{"format", "pt"}}));
      for (const ParamEntry& e : m.layout.entries()) {
        ASSERT_TRUE(header.contains(e.name)) << e.name;
        EXPECT_EQ(header[e.name]["dtype"], std::string(dtype_name(e.stored_dtype))) << e.name;
        EXPECT_EQ(header[e.name]["shape"].get<std::vector<int64_t>>(), e.shape) << e.name;
      }
      EXPECT_FALSE(header.contains("lm_head.weight") && tie);
    }
  }
}

TEST(SaveHfModel, CopiesTokenizerAndGenerationConfigFromTheSource) {
  Scratch dir("save_copy");
  const std::string source = dir.file("source"), out = dir.file("out");
  std::filesystem::create_directories(source);
  const std::string binary("\x0a\x00\xff\x10piece\x00", 10);
  write_bytes(source + "/tokenizer.model", binary);
  write_bytes(source + "/tokenizer_config.json", "{\"add_bos_token\": true}\n");
  write_bytes(source + "/generation_config.json", "{\"eos_token_id\": 2, \"temperature\": 0.6}\n");
  write_bytes(source + "/special_tokens_map.json", "{}\n");
  const LlamaConfig config = small_config();
  Loaded m = master_of(config, [](size_t, const std::string&) { return DType::F32; });
  save_hf_model(out, config, m.layout, m.params.data(), source);
  EXPECT_EQ(read_bytes(out + "/tokenizer.model"), binary);
  EXPECT_EQ(read_bytes(out + "/tokenizer_config.json"), "{\"add_bos_token\": true}\n");
  EXPECT_EQ(read_bytes(out + "/special_tokens_map.json"), "{}\n");
  EXPECT_FALSE(std::filesystem::exists(out + "/tokenizer.json"));  // not in the source
  auto reloaded = LlamaModel::load(out);
  EXPECT_EQ(reloaded->generation_config().temperature, 0.6);
  // Saving into the source directory itself keeps its files.
  save_hf_model(source, config, m.layout, m.params.data(), source);
  EXPECT_EQ(read_bytes(source + "/tokenizer.model"), binary);
  // No temporary files left behind.
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST(SaveHfModel, RemovesAStaleShardIndex) {
  Scratch dir("save_stale");
  const LlamaConfig config = small_config();
  Loaded m = master_of(config, [](size_t, const std::string&) { return DType::F32; });
  // An earlier sharded save of other weights.
  std::vector<TensorSpecToWrite> specs;
  for (const ParamEntry& e : m.layout.entries()) specs.push_back({e.name, DType::F32, e.shape});
  write_safetensors_checkpoint(
      dir.path(), specs,
      [&](size_t i, void* out) {
        std::memset(out, 0, m.layout.entries()[i].numel * sizeof(float));
      },
      2);
  ASSERT_TRUE(file_exists(dir.file("model.safetensors.index.json")));
  save_hf_model(dir.path(), config, m.layout, m.params.data(), "");
  EXPECT_FALSE(file_exists(dir.file("model.safetensors.index.json")));
  EXPECT_FALSE(file_exists(dir.file("model-00001-of-00002.safetensors")));
  EXPECT_FALSE(file_exists(dir.file("model-00002-of-00002.safetensors")));
  auto reloaded = LlamaModel::load(dir.path());
  EXPECT_EQ(reloaded->weights().norm.f32()[0], m.params[m.layout.at("model.norm.weight").offset]);
}

TEST(SaveHfModel, RejectsALayoutOfAnotherConfig) {
  Scratch dir("save_bad");
  Loaded m = master_of(small_config(), [](size_t, const std::string&) { return DType::F32; });
  expect_error(
      [&] { save_hf_model(dir.path(), small_config(true), m.layout, m.params.data(), ""); },
      {"layout has", "tensors, the config implies"});
  expect_error(
      [&] { save_hf_model(dir.path(), small_config(false, 16), m.layout, m.params.data(), ""); },
      {"model.embed_tokens.weight", "[11, 8]", "[11, 16]"});
}

// A trained-looking state: params moved, two AdamW steps taken.
struct Training {
  Loaded m;
  AdamW adamw;
  TrainerState state;
  Training()
      : m(master_of(small_config(),
                    [](size_t i, const std::string&) { return i % 2 ? DType::BF16 : DType::F32; })),
        adamw(m.layout, AdamWOptions{0.9, 0.95, 1e-8, 0.1}) {
    ThreadPool pool(1);
    std::vector<float> grads(m.params.size());
    for (int s = 0; s < 2; ++s) {
      for (size_t i = 0; i < grads.size(); ++i)
        grads[i] = std::cos(0.3f * static_cast<float>(i) + static_cast<float>(s));
      adamw.update(m.params.data(), grads.data(), 1e-3, pool);
    }
    state.global_step = 7;
    state.epoch = 1;
    state.micro_batch_in_epoch = 12;
    state.run = {{"seed", 42}, {"data", "train.jsonl"}, {"batch_size", 2}};
    state.extra = {{"loss", 1.25}, {"tokens", 12345}};
  }
  std::string save(const std::string& out) {
    return save_training_checkpoint(out, small_config(), m.layout, m.params.data(), adamw, state,
                                    "");
  }
};

TEST(TrainingCheckpoint, RoundTripIsBitwise) {
  Scratch dir("ckpt_roundtrip");
  Training t;
  const std::string path = t.save(dir.file("out"));
  EXPECT_EQ(path, dir.file("out") + "/checkpoint-7");
  for (const char* f :
       {"config.json", "model.safetensors", "training_state.safetensors", "trainer_state.json"}) {
    EXPECT_TRUE(file_exists(path + "/" + f)) << f;
  }
  const Json saved = read_json_file(path + "/trainer_state.json");
  EXPECT_EQ(saved["optimizer_step"], 2);
  EXPECT_EQ(saved["global_step"], 7);
  EXPECT_EQ(saved["micro_batch_in_epoch"], 12);

  std::vector<float> params(t.m.params.size(), -1.0f);
  AdamW adamw(t.m.layout, AdamWOptions{0.9, 0.95, 1e-8, 0.1});
  TrainerState state;
  state.run = t.state.run;  // the same run options: accepted
  load_training_checkpoint(path, t.m.layout, params.data(), adamw, state);
  EXPECT_EQ(0, std::memcmp(params.data(), t.m.params.data(), params.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(adamw.exp_avg().data(), t.adamw.exp_avg().data(),
                           params.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(adamw.exp_avg_sq().data(), t.adamw.exp_avg_sq().data(),
                           params.size() * sizeof(float)));
  EXPECT_EQ(adamw.step(), 2);
  EXPECT_EQ(state.global_step, 7);
  EXPECT_EQ(state.epoch, 1);
  EXPECT_EQ(state.micro_batch_in_epoch, 12);
  EXPECT_EQ(state.run, t.state.run);
  EXPECT_EQ(state.extra, t.state.extra);

  // Resuming then continues exactly as the uninterrupted run.
  ThreadPool pool(2);
  std::vector<float> grads(params.size(), 0.25f);
  adamw.update(params.data(), grads.data(), 1e-3, pool);
  t.adamw.update(t.m.params.data(), grads.data(), 1e-3, pool);
  EXPECT_EQ(params, t.m.params);

  // The checkpoint is also a Hugging Face model directory in the stored dtypes.
  auto model = LlamaModel::load(path);
  std::vector<float> weights;
  const ParamLayout layout = load_master_weights(*model, weights);
  for (size_t i = 0; i < layout.entries().size(); ++i) {
    EXPECT_EQ(layout.entries()[i].stored_dtype, t.m.layout.entries()[i].stored_dtype);
  }
}

TEST(TrainingCheckpoint, ReplacesAnExistingCheckpointAndLeavesNoTemporaries) {
  Scratch dir("ckpt_replace");
  Training t;
  const std::string out = dir.file("out");
  t.save(out);
  write_bytes(out + "/checkpoint-7/stale.txt", "old");
  // Leftovers of a crashed save (no such pid) are removed; a live process's are kept.
  std::filesystem::create_directories(out + "/.checkpoint-3.tmp-999999999/sub");
  const std::string live = out + "/.checkpoint-3.tmp-" + std::to_string(::getppid());
  std::filesystem::create_directories(live);
  for (float& p : t.m.params) p *= 2.0f;
  t.save(out);
  EXPECT_FALSE(file_exists(out + "/checkpoint-7/stale.txt"));
  EXPECT_TRUE(is_directory(live));
  std::filesystem::remove_all(live);
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string(), "checkpoint-7");
  }
  std::vector<float> params(t.m.params.size());
  AdamW adamw(t.m.layout, {});
  TrainerState state;
  load_training_checkpoint(out + "/checkpoint-7", t.m.layout, params.data(), adamw, state);
  EXPECT_EQ(params, t.m.params);
}

TEST(FindLatestCheckpoint, LargestNumberIgnoringLeftoversAndOtherNames) {
  Scratch dir("ckpt_latest");
  EXPECT_EQ(find_latest_checkpoint(dir.file("absent")), "");
  EXPECT_EQ(find_latest_checkpoint(dir.path()), "");
  for (const char* d : {"checkpoint-2", "checkpoint-10", "checkpoint-9", ".checkpoint-11.tmp-123",
                        "checkpoint-x", "checkpoint-", "checkpoint--3", "checkpoint-+4",
                        "checkpoint-99999999999999999999", "xcheckpoint-50", "checkpoint-13.old"}) {
    std::filesystem::create_directories(dir.file(d));
  }
  write_bytes(dir.file("checkpoint-12"), "a file, not a checkpoint");
  EXPECT_EQ(find_latest_checkpoint(dir.path()), dir.file("checkpoint-10"));
  // A crash mid-save leaves only the temporary directory: the previous checkpoint wins.
  Training t;
  t.state.global_step = 20;
  const std::string latest = t.save(dir.path());
  EXPECT_EQ(find_latest_checkpoint(dir.path()), latest);
}

class CorruptCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override { path_ = t_.save(dir_.file("out")); }

  // Rewrites training_state.safetensors through edit(tensors) (views of the current file).
  void rewrite_state(const std::function<void(std::vector<TensorToWrite>&)>& edit) {
    TensorStore store;
    read_safetensors(state_file(), store);
    std::vector<TensorToWrite> tensors;
    for (const auto& [name, t] : store.tensors())
      tensors.push_back({name, t.view.dtype, t.view.shape, t.view.data});
    edit(tensors);
    write_safetensors(state_file(), tensors);
  }
  std::string state_file() const { return path_ + "/training_state.safetensors"; }
  std::string json_file() const { return path_ + "/trainer_state.json"; }

  std::string load_error(std::initializer_list<std::string> fragments) {
    std::vector<float> params(t_.m.params.size(), 7.0f);
    AdamW adamw(t_.m.layout, {});
    TrainerState state;
    state.run = t_.state.run;
    const std::string message = expect_error(
        [&] { load_training_checkpoint(path_, t_.m.layout, params.data(), adamw, state); },
        fragments);
    // Nothing was touched.
    EXPECT_EQ(params, std::vector<float>(params.size(), 7.0f));
    EXPECT_EQ(adamw.step(), 0);
    EXPECT_EQ(state.global_step, 0);
    return message;
  }

  Scratch dir_{"ckpt_corrupt"};
  Training t_;
  std::string path_;
};

TEST_F(CorruptCheckpoint, MissingFiles) {
  std::filesystem::remove(state_file());
  load_error({path_, "missing training_state.safetensors"});
  std::filesystem::remove(json_file());
  load_error({path_, "missing trainer_state.json"});
  std::vector<float> params(t_.m.params.size());
  AdamW adamw(t_.m.layout, {});
  TrainerState state;
  expect_error(
      [&] {
        load_training_checkpoint(dir_.file("nowhere"), t_.m.layout, params.data(), adamw, state);
      },
      {"nowhere", "not a directory"});
}

TEST_F(CorruptCheckpoint, MissingTensor) {
  rewrite_state([](std::vector<TensorToWrite>& t) {
    std::erase_if(t, [](const TensorToWrite& x) {
      return x.name == "exp_avg_sq.model.layers.1.mlp.down_proj.weight";
    });
  });
  load_error({state_file(), "missing tensor 'exp_avg_sq.model.layers.1.mlp.down_proj.weight'"});
}

TEST_F(CorruptCheckpoint, WrongShape) {
  // k_proj is [kv_dim 4, hidden 8]; same bytes, transposed shape.
  rewrite_state([](std::vector<TensorToWrite>& t) {
    for (auto& x : t) {
      if (x.name == "exp_avg.model.layers.0.self_attn.k_proj.weight") x.shape = {8, 4};
    }
  });
  load_error({state_file(), "tensor 'exp_avg.model.layers.0.self_attn.k_proj.weight'",
              "expected shape [4, 8]", "file has [8, 4]"});
}

TEST_F(CorruptCheckpoint, WrongDtype) {
  std::vector<uint16_t> halves(8, 0);
  rewrite_state([&](std::vector<TensorToWrite>& t) {
    for (auto& x : t) {
      if (x.name == "master.model.norm.weight") {
        x.dtype = DType::F16;
        x.data = halves.data();
      }
    }
  });
  load_error(
      {state_file(), "tensor 'master.model.norm.weight'", "expected dtype F32", "file has F16"});
}

TEST_F(CorruptCheckpoint, UnexpectedTensor) {
  const float extra[2] = {1, 2};
  rewrite_state([&](std::vector<TensorToWrite>& t) {
    t.push_back({"master.model.layers.2.mlp.up_proj.weight", DType::F32, {2}, extra});
  });
  load_error({state_file(), "unexpected tensor 'master.model.layers.2.mlp.up_proj.weight'"});
}

TEST_F(CorruptCheckpoint, TruncatedStateFile) {
  const std::string bytes = read_bytes(state_file());
  write_bytes(state_file(), bytes.substr(0, bytes.size() - 100));
  load_error({"training_state.safetensors"});
}

TEST_F(CorruptCheckpoint, BadTrainerStateJson) {
  write_bytes(json_file(), "{\"global_step\": 7,");
  load_error({"trainer_state.json"});
  Json json = read_json_file(path_ + "/config.json");  // valid JSON, wrong content
  write_bytes(json_file(), json.dump());
  load_error({"trainer_state.json", "format_version"});
  Json good = {{"format_version", 1},       {"global_step", 7},    {"epoch", 1},
               {"micro_batch_in_epoch", 0}, {"optimizer_step", 2}, {"run", t_.state.run},
               {"extra", Json::object()}};
  Json bad = good;
  bad.erase("micro_batch_in_epoch");
  write_bytes(json_file(), bad.dump());
  load_error({"trainer_state.json", "micro_batch_in_epoch"});
  bad = good;
  bad["epoch"] = -1;
  write_bytes(json_file(), bad.dump());
  load_error({"trainer_state.json", "'epoch'", "-1"});
  bad = good;
  bad["optimizer_step"] = "two";
  write_bytes(json_file(), bad.dump());
  load_error({"trainer_state.json", "optimizer_step"});
  bad = good;
  bad.erase("run");
  write_bytes(json_file(), bad.dump());
  load_error({"trainer_state.json", "'run'"});
}

TEST_F(CorruptCheckpoint, RunOptionsMustMatch) {
  std::vector<float> params(t_.m.params.size(), 7.0f);
  AdamW adamw(t_.m.layout, {});
  TrainerState state;
  state.run = t_.state.run;
  state.run["seed"] = 7;
  expect_error([&] { load_training_checkpoint(path_, t_.m.layout, params.data(), adamw, state); },
               {"trainer_state.json", "run option 'seed' was 42", "now 7"});
  state.run = t_.state.run;
  state.run["max_seq_length"] = 1024;
  expect_error([&] { load_training_checkpoint(path_, t_.m.layout, params.data(), adamw, state); },
               {"no run option 'max_seq_length'"});
  state.run = t_.state.run;
  state.run.erase("data");
  expect_error([&] { load_training_checkpoint(path_, t_.m.layout, params.data(), adamw, state); },
               {"run option 'data'", "this run does not set"});
  EXPECT_EQ(params, std::vector<float>(params.size(), 7.0f));
  // An empty run on entry skips the comparison.
  state = TrainerState{};
  load_training_checkpoint(path_, t_.m.layout, params.data(), adamw, state);
  EXPECT_EQ(state.run, t_.state.run);
}

}  // namespace
}  // namespace tulu

// GGUF writer ↔ reader round trip, the q/k permutation against an independent transpose,
// name mapping, GGUF model discovery, and a fuzz loop: any corruption of a valid file must
// give a tulu::Error or a valid file, never a crash (run under ASan by the sanitizer build).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "checkpoint_test_util.h"
#include "llama/gguf_llama.h"
#include "llama/gguf_reader.h"
#include "llama/gguf_writer.h"
#include "llama/model.h"

namespace tulu {
namespace {

using testing_util::expect_error;
using testing_util::read_bytes;
using testing_util::ScratchDir;
using testing_util::TestRng;
using testing_util::write_bytes;

// Tensor i's bytes: a pattern that differs per tensor and per byte.
void fill_pattern(size_t index, void* out, uint64_t nbytes) {
  auto* p = static_cast<uint8_t*>(out);
  for (uint64_t b = 0; b < nbytes; ++b)
    p[b] = static_cast<uint8_t>((b * 31 + index * 7 + 3) & 0xff);
}

std::string write_sample(const ScratchDir& dir) {
  GgufWriter w;
  w.set_string("general.architecture", "test");
  w.set_uint32("u32", 4000000000u);
  w.set_int32("i32", -7);
  w.set_float32("f32", 0.25f);
  w.set_bool("yes", true);
  w.set_string_array("strings", {"a", "", "\xe2\x96\x81x"});
  w.set_float32_array("floats", {1.5f, -2.0f});
  w.set_int32_array("ints", {3, -4, 5});
  w.add_tensor("matrix", DType::F32, {3, 5});
  w.add_tensor("vector", DType::F16, {7});
  w.add_tensor("bf", DType::BF16, {2, 2, 16});
  const std::string path = dir.file("sample.gguf");
  w.write(path, [&](size_t i, void* out) { fill_pattern(i, out, w.tensor_bytes(i)); });
  return path;
}

TEST(Gguf, WriterReaderRoundTrip) {
  ScratchDir dir("gguf_roundtrip");
  const std::string path = write_sample(dir);
  const auto g = GgufFile::open(path);
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->alignment(), 32u);
  EXPECT_EQ(g->data_offset() % 32, 0u);
  EXPECT_EQ(g->get_string("general.architecture"), "test");
  EXPECT_EQ(g->get_int("u32"), 4000000000LL);
  EXPECT_EQ(g->get_int("i32"), -7);
  EXPECT_EQ(g->get_float("f32"), 0.25);
  EXPECT_EQ(g->opt_bool("yes"), true);
  EXPECT_EQ(g->get_string_array("strings"), (std::vector<std::string>{"a", "", "\xe2\x96\x81x"}));
  EXPECT_EQ(g->get_float_array("floats"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(g->get_int_array("ints"), (std::vector<int64_t>{3, -4, 5}));
  EXPECT_FALSE(g->opt_int("absent").has_value());
  expect_error([&] { g->get_int("general.architecture"); },
               {path, "general.architecture", "expected an integer"});
  expect_error([&] { g->get_string("absent"); }, {path, "'absent' is missing"});

  ASSERT_EQ(g->tensors().size(), 3u);
  const std::vector<std::vector<uint64_t>> dims = {{5, 3}, {7}, {16, 2, 2}};
  const std::vector<uint32_t> types = {kGgmlF32, kGgmlF16, kGgmlBF16};
  const std::vector<uint64_t> bytes = {60, 14, 128};
  const auto* base = g->mapping()->data();
  for (size_t i = 0; i < 3; ++i) {
    const GgufTensorInfo& t = g->tensors()[i];
    EXPECT_EQ(t.ggml_dims, dims[i]);
    EXPECT_EQ(t.ggml_type, types[i]);
    EXPECT_EQ(t.nbytes, bytes[i]);
    EXPECT_EQ(t.offset % 32, 0u);
    // A view into the mapping, not a copy.
    EXPECT_GE(t.data, base);
    EXPECT_LE(t.data + t.nbytes, base + g->mapping()->size());
    std::vector<uint8_t> expected(t.nbytes);
    fill_pattern(i, expected.data(), t.nbytes);
    EXPECT_EQ(std::memcmp(t.data, expected.data(), t.nbytes), 0) << t.name;
  }
  EXPECT_EQ(g->tensors()[2].shape(), (std::vector<int64_t>{2, 2, 16}));
}

// llama.cpp's permute: view [H, 2, D/2, cols] → swap axes 1, 2 → [H, D/2, 2, cols]; output
// row-major index (h, i, j) takes input (h, j, i).
TEST(Gguf, PermutationMatchesTranspose) {
  for (const auto& [rows, heads] :
       std::vector<std::pair<size_t, int>>{{8, 1}, {16, 4}, {64, 2}, {12, 3}}) {
    const size_t d = rows / static_cast<size_t>(heads), half = d / 2;
    std::vector<size_t> transposed(rows);
    for (size_t h = 0; h < static_cast<size_t>(heads); ++h) {
      for (size_t i = 0; i < half; ++i) {
        for (size_t j = 0; j < 2; ++j) transposed[h * d + i * 2 + j] = h * d + j * half + i;
      }
    }
    std::vector<bool> seen(rows, false);
    for (size_t r = 0; r < rows; ++r) {
      const size_t source = hf_row_of_gguf_row(r, rows, heads);
      EXPECT_EQ(source, transposed[r]) << rows << " rows, " << heads << " heads, row " << r;
      ASSERT_LT(source, rows);
      EXPECT_FALSE(seen[source]);
      seen[source] = true;
    }
  }
}

TEST(Gguf, NameMappingCoversEveryParameter) {
  LlamaConfig c;
  c.hidden_size = 8, c.intermediate_size = 16, c.num_hidden_layers = 12, c.num_attention_heads = 2;
  c.num_key_value_heads = 1, c.head_dim = 4, c.vocab_size = 10;
  std::set<std::string> gguf_names;
  for (const ParamSpec& spec : llama_param_specs(c)) {
    const auto gguf = gguf_name_from_hf(spec.name);
    ASSERT_TRUE(gguf.has_value()) << spec.name;
    EXPECT_TRUE(gguf_names.insert(*gguf).second) << *gguf;
    EXPECT_EQ(hf_name_from_gguf(*gguf), spec.name);
  }
  EXPECT_EQ(gguf_name_from_hf("model.layers.11.self_attn.q_proj.weight"), "blk.11.attn_q.weight");
  EXPECT_EQ(hf_name_from_gguf("blk.3.ffn_norm.weight"),
            "model.layers.3.post_attention_layernorm.weight");
  EXPECT_FALSE(hf_name_from_gguf("rope_freqs.weight").has_value());
  EXPECT_FALSE(hf_name_from_gguf("blk.x.attn_q.weight").has_value());
  EXPECT_FALSE(hf_name_from_gguf("blk..attn_q.weight").has_value());
  EXPECT_EQ(permuted_head_count("model.layers.0.self_attn.q_proj.weight", c), 2);
  EXPECT_EQ(permuted_head_count("model.layers.0.self_attn.k_proj.weight", c), 1);
  EXPECT_EQ(permuted_head_count("model.layers.0.self_attn.v_proj.weight", c), 0);
}

TEST(Gguf, FindsGgufModels) {
  ScratchDir dir("gguf_find");
  EXPECT_FALSE(find_gguf_model(dir.path()).has_value());
  write_bytes(dir.file("a.gguf"), "GGUF");
  EXPECT_EQ(find_gguf_model(dir.path()), dir.file("a.gguf"));
  EXPECT_EQ(find_gguf_model(dir.file("a.gguf")), dir.file("a.gguf"));
  write_bytes(dir.file("b.gguf"), "GGUF");
  expect_error([&] { find_gguf_model(dir.path()); }, {dir.path(), "a.gguf", "b.gguf"});
  write_bytes(dir.file("model.safetensors"), "");
  EXPECT_FALSE(find_gguf_model(dir.path()).has_value());  // HF weights take precedence
}

TEST(Gguf, CorruptionNeverCrashes) {
  ScratchDir dir("gguf_fuzz");
  const std::string original = read_bytes(write_sample(dir));
  const std::string path = dir.file("fuzzed.gguf");
  TestRng rng(7);
  int errors = 0, opened = 0;
  for (int round = 0; round < 600; ++round) {
    std::string bytes = original;
    const int kind = round % 3;
    if (kind == 0) {  // flip bytes in the header
      const size_t flips = 1 + rng.next() % 4;
      for (size_t f = 0; f < flips; ++f) bytes[rng.next() % 300] = static_cast<char>(rng.next());
    } else if (kind == 1) {  // truncate
      bytes.resize(rng.next() % bytes.size());
    } else {  // overwrite an 8-byte field with an extreme value
      const uint64_t values[] = {0, 1, ~0ull, 1ull << 63, 0x7fffffffffffffffull, 1ull << 32};
      const uint64_t v = values[rng.next() % 6];
      const size_t at = rng.next() % 300;
      std::memcpy(bytes.data() + at, &v, std::min<size_t>(8, bytes.size() - at));
    }
    write_bytes(path, bytes);
    try {
      const auto g = GgufFile::open(path);
      for (const auto& t : g->tensors()) {
        volatile uint8_t sink = 0;
        for (uint64_t b = 0; b < t.nbytes; ++b) sink = static_cast<uint8_t>(sink + t.data[b]);
      }
      ++opened;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      ++errors;
    }
  }
  EXPECT_GT(errors, 300);
  std::printf("fuzz: %d corrupt files refused, %d still valid\n", errors, opened);
}

TEST(Gguf, LoadsAsLlamaModelWithUnpermutedRows) {
  // A 1-layer model written with distinct rows: q/k must come back in HF order.
  ScratchDir dir("gguf_model");
  LlamaConfig c;
  c.hidden_size = 8, c.intermediate_size = 16, c.num_hidden_layers = 1, c.num_attention_heads = 2;
  c.num_key_value_heads = 1, c.head_dim = 4, c.vocab_size = 6, c.rms_norm_eps = 1e-5;
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_uint32("llama.embedding_length", 8);
  w.set_uint32("llama.feed_forward_length", 16);
  w.set_uint32("llama.block_count", 1);
  w.set_uint32("llama.attention.head_count", 2);
  w.set_uint32("llama.attention.head_count_kv", 1);
  w.set_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::vector<ParamSpec> specs = llama_param_specs(c);
  for (const auto& s : specs) w.add_tensor(*gguf_name_from_hf(s.name), DType::F32, s.shape);
  // GGUF row r of q/k holds HF row hf_row_of_gguf_row(r); value = 1000·HF row + column.
  const std::string path = dir.file("m.gguf");
  w.write(path, [&](size_t i, void* out) {
    const ParamSpec& s = specs[i];
    const size_t rows = s.shape.size() == 1 ? 1 : static_cast<size_t>(s.shape[0]);
    const size_t cols =
        s.shape.size() == 1 ? static_cast<size_t>(s.shape[0]) : static_cast<size_t>(s.shape[1]);
    const int heads = permuted_head_count(s.name, c);
    auto* f = static_cast<float*>(out);
    for (size_t r = 0; r < rows; ++r) {
      const size_t hf_row = heads ? hf_row_of_gguf_row(r, rows, heads) : r;
      for (size_t k = 0; k < cols; ++k) f[r * cols + k] = static_cast<float>(hf_row * 1000 + k);
    }
  });
  const auto model = LlamaModel::load(path);
  EXPECT_EQ(model->config().num_key_value_heads, 1);
  EXPECT_EQ(model->config().head_dim, 4);
  EXPECT_FALSE(model->config().tie_word_embeddings);  // output.weight present
  EXPECT_EQ(model->config().vocab_size, 6);
  for (const TensorView* view :
       {&model->weights().layers[0].q_proj, &model->weights().layers[0].k_proj,
        &model->weights().layers[0].v_proj}) {
    for (int64_t r = 0; r < view->dim(0); ++r) {
      for (int64_t k = 0; k < view->dim(1); ++k) {
        ASSERT_EQ(view->f32()[r * view->dim(1) + k], static_cast<float>(r * 1000 + k));
      }
    }
  }
  EXPECT_NE(model->weight_format().find("gguf v3"), std::string::npos);
}

}  // namespace
}  // namespace tulu

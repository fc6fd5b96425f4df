// BatchDecoder: one batched decode step over several sessions equals separate one-token
// Session::eval calls (≤ 1e-5 on the logits), over several steps, sessions at different
// positions, MHA and GQA, F32, BF16 and F16 weights, 1 to 25 sessions (the few-row kernel
// and sgemm), thread counts 1 to 6, the generic kernels, F32 and F16 KV caches (all one
// type, or both types in one step); and its errors leave the sessions unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "llama/batch_decode.h"
#include "llama/model.h"
#include "llama/session.h"
#include "tensor/half.h"

namespace tulu {
namespace {

constexpr double kTolerance = 1e-5;

LlamaConfig small_config(int heads, int kv_heads) {
  LlamaConfig c;
  c.hidden_size = 48;
  c.intermediate_size = 100;
  c.num_hidden_layers = 2;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.head_dim = c.hidden_size / heads;
  c.vocab_size = 300;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 64;
  return c;
}

// Seeded random weights with O(1) activations (as session_test.cc's).
std::unique_ptr<LlamaModel> random_model(const LlamaConfig& config, DType dtype, uint32_t seed) {
  TensorStore store;
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const ParamSpec& spec : llama_param_specs(config)) {
    TensorView view;
    view.dtype = dtype;
    view.shape = spec.shape;
    const auto n = static_cast<size_t>(view.numel());
    void* data = store.allocate(n * dtype_size(dtype));
    const float scale = spec.shape.size() == 2 && spec.name != "model.embed_tokens.weight"
                            ? 1.0f / std::sqrt(static_cast<float>(spec.shape[1]))
                            : 1.0f;
    for (size_t i = 0; i < n; ++i) {
      const float v = spec.shape.size() == 1 ? 1.0f + 0.1f * normal(gen) : scale * normal(gen);
      if (dtype == DType::BF16) {
        static_cast<uint16_t*>(data)[i] = f32_to_bf16(v);
      } else if (dtype == DType::F16) {
        static_cast<uint16_t*>(data)[i] = f32_to_f16(v);
      } else {
        static_cast<float*>(data)[i] = v;
      }
    }
    view.data = data;
    store.add(spec.name, view, "memory");
  }
  return std::make_unique<LlamaModel>(config, std::move(store), "memory");
}

int argmax(std::span<const float> row) {
  return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

// KV cache types of the sessions of one step.
enum class KvMix { AllF32, AllF16, Alternating };

KvType kv_type_of(KvMix mix, size_t session) {
  if (mix == KvMix::AllF32) return KvType::F32;
  if (mix == KvMix::AllF16) return KvType::F16;
  return session % 2 == 0 ? KvType::F16 : KvType::F32;
}

// `count` sequences at different positions (prompt lengths 1, 7, 20, then 1 + 5i mod 37)
// decoded together for 6 steps, against one-token evals of twins (same KV type each).
void check_batch_equals_single(const LlamaConfig& config, DType dtype, int count = 3,
                               int threads = 2, KvMix kv = KvMix::AllF32) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " sessions=" << count
                                    << " threads=" << threads << " kv=" << static_cast<int>(kv));
  const auto model = random_model(config, dtype, 11);
  ThreadPool pool(threads);
  const int vocab = config.vocab_size;
  std::vector<std::vector<int>> prompts = {
      {5}, {1, 2, 3, 4, 5, 6, 7}, {9,  8,  7,  6,  5,  4,  3,  2,  1,  0,
                                   10, 20, 30, 40, 50, 60, 70, 80, 90, 99}};
  prompts.resize(static_cast<size_t>(std::min(count, 3)));
  for (int i = 3; i < count; ++i) {
    std::vector<int> prompt(static_cast<size_t>(1 + (5 * i) % 37));
    for (size_t j = 0; j < prompt.size(); ++j)
      prompt[j] = static_cast<int>((31 * j + 7 * static_cast<size_t>(i)) % 300);
    prompts.push_back(prompt);
  }
  std::vector<std::unique_ptr<Session>> batched, single;
  for (const auto& prompt : prompts) {
    const KvType type = kv_type_of(kv, batched.size());
    batched.push_back(std::make_unique<Session>(*model, 48, pool, Session::kDefaultMaxBatch, type));
    single.push_back(std::make_unique<Session>(*model, 48, pool, Session::kDefaultMaxBatch, type));
    batched.back()->eval(prompt, false);
    single.back()->eval(prompt, false);
  }
  BatchDecoder decoder(*model, std::max(count, 4), 48, pool);
  std::vector<int> next = {17, 42, 299};
  next.resize(static_cast<size_t>(count));
  for (int i = 3; i < count; ++i) next[static_cast<size_t>(i)] = (13 * i) % vocab;
  for (int step = 0; step < 6; ++step) {
    std::vector<Session*> sessions;
    for (auto& s : batched) sessions.push_back(s.get());
    const std::span<const float> logits = decoder.decode(sessions, next);
    ASSERT_EQ(logits.size(), prompts.size() * static_cast<size_t>(vocab));
    std::vector<int> following;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::span<const float> expected =
          single[i]->eval(std::span<const int>(&next[i], 1), false);
      double worst = 0.0;
      for (int v = 0; v < vocab; ++v) {
        worst = std::max(
            worst, std::abs(static_cast<double>(
                                logits[i * static_cast<size_t>(vocab) + static_cast<size_t>(v)]) -
                            static_cast<double>(expected[static_cast<size_t>(v)])));
      }
      EXPECT_LE(worst, kTolerance) << "step " << step << " session " << i;
      following.push_back(argmax(expected));
      EXPECT_TRUE(std::equal(batched[i]->tokens().begin(), batched[i]->tokens().end(),
                             single[i]->tokens().begin(), single[i]->tokens().end()));
    }
    next = following;
  }
}

TEST(BatchDecoder, EqualsSeparateStepsMha) {
  check_batch_equals_single(small_config(4, 4), DType::F32);
}
TEST(BatchDecoder, EqualsSeparateStepsGqa) {
  check_batch_equals_single(small_config(6, 2), DType::F32);
}
TEST(BatchDecoder, EqualsSeparateStepsBf16) {
  check_batch_equals_single(small_config(4, 2), DType::BF16);
}

// Rows through the few-row kernel (matvec_multi.h: 2 ..= 24) and past it (sgemm: 25),
// every weight dtype, odd thread counts; the generic (scalar reference) kernels too.
TEST(BatchDecoder, EqualsSeparateStepsManyRowsEveryDtype) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    check_batch_equals_single(small_config(6, 2), dtype, 8, 3);
    check_batch_equals_single(small_config(4, 4), dtype, 25, 2);
  }
  check_batch_equals_single(small_config(6, 3), DType::BF16, 5, 6);
}

TEST(BatchDecoder, EqualsSeparateStepsGenericKernels) {
  set_force_generic_kernels(true);
  check_batch_equals_single(small_config(6, 2), DType::BF16, 5, 2);
  check_batch_equals_single(small_config(6, 2), DType::BF16, 5, 2, KvMix::Alternating);
  set_force_generic_kernels(false);
}

// F16 caches through attention_rows' F16 kernel, alone and mixed with F32 caches in one
// step (both kernels run), and one F16 session (attention() on its cache).
TEST(BatchDecoder, EqualsSeparateStepsF16Caches) {
  check_batch_equals_single(small_config(6, 2), DType::F32, 3, 2, KvMix::AllF16);
  check_batch_equals_single(small_config(4, 4), DType::BF16, 8, 3, KvMix::AllF16);
  check_batch_equals_single(small_config(6, 2), DType::F32, 7, 2, KvMix::Alternating);
  check_batch_equals_single(small_config(4, 1), DType::F16, 1, 1, KvMix::AllF16);
}

TEST(BatchDecoder, OneSessionEqualsEval) {
  const auto model = random_model(small_config(4, 2), DType::F32, 3);
  ThreadPool pool(1);
  Session a(*model, 16, pool), b(*model, 16, pool);
  a.eval(std::vector<int>{1, 2, 3}, false);
  b.eval(std::vector<int>{1, 2, 3}, false);
  BatchDecoder decoder(*model, 2, 16, pool);
  Session* sessions[] = {&a};
  const int token = 4;
  const std::span<const float> batched = decoder.decode(sessions, std::span<const int>(&token, 1));
  const std::span<const float> expected = b.eval(std::span<const int>(&token, 1), false);
  ASSERT_EQ(batched.size(), expected.size());
  for (size_t v = 0; v < expected.size(); ++v) EXPECT_NEAR(batched[v], expected[v], kTolerance);
  EXPECT_EQ(a.pos(), 4);
}

TEST(BatchDecoder, BadInputsAreErrorsAndLeaveSessionsUnchanged) {
  const auto model = random_model(small_config(4, 2), DType::F32, 5);
  const auto other = random_model(small_config(4, 2), DType::F32, 6);
  ThreadPool pool(1);
  Session a(*model, 4, pool), b(*model, 4, pool), big(*model, 32, pool), foreign(*other, 4, pool);
  a.eval(std::vector<int>{1, 2, 3, 4}, false);  // full
  b.eval(std::vector<int>{1}, false);
  BatchDecoder decoder(*model, 2, 8, pool);
  const std::vector<int> two = {1, 2};
  const std::vector<int> one = {1};
  auto call = [&](std::vector<Session*> sessions, const std::vector<int>& tokens) {
    decoder.decode(sessions, tokens);
  };
  EXPECT_THROW(call({&a}, one), Error);                // full
  EXPECT_THROW(call({&b, &b}, two), Error);            // repeated
  EXPECT_THROW(call({&b}, two), Error);                // count mismatch
  EXPECT_THROW(call({&b, &a, &a}, {1, 2, 3}), Error);  // over max_rows
  EXPECT_THROW(call({&big}, one), Error);              // capacity above max_positions
  EXPECT_THROW(call({&foreign}, one), Error);          // another model
  EXPECT_THROW(call({&b}, {300}), Error);              // outside the vocabulary
  EXPECT_THROW(call({&b}, {-1}), Error);
  EXPECT_THROW(call({}, {}), Error);
  EXPECT_EQ(a.pos(), 4);
  EXPECT_EQ(b.pos(), 1);
  EXPECT_NO_THROW(call({&b}, one));
  EXPECT_EQ(b.pos(), 2);
}

}  // namespace
}  // namespace tulu

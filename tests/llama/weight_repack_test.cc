// Load-time repacking (llama/weight_repack.h) on a whole model: which weights take the
// 16-row layouts (every Q4_0/Q8_0 linear weight with whole groups of 16 rows; not the
// embedding, not a 40-row lm_head), the bytes reported, the store left as read, and the
// forward pass: a prompt batch gives the very logits of the file's layout, one token at a
// time stays within the decode kernels' rounding of it, and --no-repack repacks nothing.
#include "llama/weight_repack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "llama/model.h"
#include "llama/session.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_repack.h"

namespace tulu {
namespace {

LlamaConfig config() {
  LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 40;  // lm_head rows are not whole groups of 16: it keeps the file's layout
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 32;
  c.tie_word_embeddings = false;
  return c;
}

// Every matrix (the embedding too, as in a GGUF file) in `type`, norms F32; seeded.
std::unique_ptr<LlamaModel> quantized_model(DType type, uint32_t seed) {
  const LlamaConfig c = config();
  TensorStore store;
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const ParamSpec& spec : llama_param_specs(c)) {
    TensorView view{spec.shape.size() == 2 ? type : DType::F32, spec.shape, nullptr};
    std::vector<float> values(static_cast<size_t>(view.numel()));
    const float scale =
        spec.shape.size() == 2 ? 1.0f / std::sqrt(static_cast<float>(spec.shape[1])) : 0.1f;
    for (float& v : values) v = (spec.shape.size() == 1 ? 1.0f : 0.0f) + scale * normal(gen);
    void* data = store.allocate(view.nbytes());
    encode_row(values.data(), values.size(), view.dtype, data);
    view.data = data;
    store.add(spec.name, view, "memory");
  }
  return std::make_unique<LlamaModel>(c, std::move(store), "memory");
}

std::vector<float> batch_logits(const LlamaModel& model, const std::vector<int>& ids,
                                ThreadPool& pool) {
  Session session(model, 32, pool);
  const std::span<const float> all = session.eval(ids, /*all_logits=*/true);
  return {all.begin(), all.end()};
}

std::vector<float> step_logits(const LlamaModel& model, const std::vector<int>& ids,
                               ThreadPool& pool) {
  Session session(model, 32, pool);
  std::vector<float> out;
  for (int id : ids) {
    const std::span<const float> row = session.eval(std::span<const int>(&id, 1), false);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

TEST(WeightRepack, LinearWeightsTakeTheLayoutAndLogitsKeepTheirValues) {
  ThreadPool pool(2);
  const std::vector<int> ids = {1, 7, 30, 2, 39, 11, 5, 0, 21, 16, 3, 8};
  for (DType type : {DType::Q4_0, DType::Q8_0}) {
    const bool enabled = weight_repack_enabled();
    set_weight_repack(false);
    const auto plain = quantized_model(type, 5);
    set_weight_repack(true);
    const auto repacked = quantized_model(type, 5);
    EXPECT_EQ(plain->repacked_bytes(), 0u);
    const LayerWeights& layer = repacked->weights().layers[1];
    const DType want = enabled ? interleaved_dtype(type) : type;
    for (const TensorView* v : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj,
                                &layer.gate_proj, &layer.up_proj, &layer.down_proj})
      EXPECT_EQ(v->dtype, want) << dtype_name(type);
    EXPECT_EQ(repacked->weights().lm_head.dtype, type);
    EXPECT_EQ(repacked->weights().embed_tokens.dtype, type);
    EXPECT_EQ(repacked->store().get("model.layers.1.mlp.up_proj.weight").view.dtype, type);
    // Per layer: q, o 64×64; k, v 32×64; gate, up 128×64; down 64×128.
    const uint64_t per_layer = (64 * 64 * 2 + 32 * 64 * 2 + 128 * 64 * 3) / 32 *
                               dtype_block_bytes(type);
    EXPECT_EQ(repacked->repacked_bytes(), enabled ? 2 * per_layer : 0u) << dtype_name(type);
    if (!enabled) continue;
    // The layout is a rearrangement: it decodes to the same values.
    EXPECT_EQ(to_f32(layer.up_proj), to_f32(plain->weights().layers[1].up_proj));

    const std::vector<float> batch = batch_logits(*repacked, ids, pool);
    EXPECT_EQ(batch, batch_logits(*plain, ids, pool)) << dtype_name(type);
    const std::vector<float> steps = step_logits(*repacked, ids, pool);
    const std::vector<float> plain_steps = step_logits(*plain, ids, pool);
    double scale = 0, diff = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(plain_steps[i])));
      diff = std::max(diff, std::fabs(static_cast<double>(steps[i]) - plain_steps[i]));
    }
    // Only fp32 accumulation order differs, which can flip an activation's Q8_0 rounding
    // (tests/py/test_quant_paths.py): a few per cent of the logits' scale at most.
    EXPECT_LE(diff, 0.05 * scale) << dtype_name(type);
    std::printf("[repack] %s: batch identical, one token at a time max |Δ| = %.3g (scale %.3g)\n",
                std::string(dtype_name(type)).c_str(), diff, scale);
  }
  set_weight_repack(true);
}

}  // namespace
}  // namespace tulu

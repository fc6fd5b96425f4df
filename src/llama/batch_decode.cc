// Batched decode step (see batch_decode.h); the per-layer arithmetic is Session's
// forward_chunk with rows = sessions, except RoPE / cache writes / attention per row.
#include "llama/batch_decode.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/rmsnorm.h"

namespace tulu {

namespace {

void append_f32(std::vector<float>& dst, const TensorView& view) {
  const std::vector<float> values = to_f32(view);
  dst.insert(dst.end(), values.begin(), values.end());
}

size_t rows_times(int rows, int64_t cols) {
  return static_cast<size_t>(rows) * static_cast<size_t>(cols);
}

}  // namespace

BatchDecoder::BatchDecoder(const LlamaModel& model, int max_rows, int max_positions,
                           ThreadPool& pool)
    : model_(model),
      pool_(pool),
      max_rows_(max_rows),
      max_positions_(max_positions),
      scratch_(std::max({model.config().hidden_size, model.config().q_dim(),
                         model.config().intermediate_size}),
               pool.num_threads()) {
  const LlamaConfig& c = model.config();
  TULU_CHECK(max_rows >= 1, "batch decode: max_rows must be at least 1, got ", max_rows);
  TULU_CHECK(max_positions >= 1, "batch decode: max_positions must be at least 1, got ",
             max_positions);
  rope_ = make_rope_table(
      c.head_dim, c.rope_theta,
      c.rope_scaling.kind == RopeScaling::Kind::Linear ? c.rope_scaling.factor : 1.0,
      max_positions);
  for (const LayerWeights& layer : model.weights().layers) {
    append_f32(input_norms_, layer.input_layernorm);
    append_f32(post_norms_, layer.post_attention_layernorm);
  }
  append_f32(final_norm_, model.weights().norm);
  residual_.resize(rows_times(max_rows, c.hidden_size));
  normed_.resize(residual_.size());
  projected_.resize(residual_.size());
  queries_.resize(rows_times(max_rows, c.q_dim()));
  attended_.resize(queries_.size());
  keys_.resize(rows_times(max_rows, c.kv_dim()));
  values_.resize(keys_.size());
  gate_.resize(rows_times(max_rows, c.intermediate_size));
  up_.resize(gate_.size());
  scores_.resize(rows_times(c.num_attention_heads, max_positions));
  logits_.resize(rows_times(max_rows, c.vocab_size));
}

std::span<const float> BatchDecoder::decode(std::span<Session* const> sessions,
                                            std::span<const int> tokens) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  const int rows = static_cast<int>(sessions.size());
  TULU_CHECK(rows >= 1 && rows <= max_rows_, "batch decode: ", rows, " sessions, expected 1 to ",
             max_rows_);
  TULU_CHECK(tokens.size() == sessions.size(), "batch decode: ", tokens.size(), " tokens for ",
             rows, " sessions");
  for (int i = 0; i < rows; ++i) {
    const Session* s = sessions[static_cast<size_t>(i)];
    TULU_CHECK(s != nullptr && &s->model_ == &model_, "batch decode: session ", i,
               " is null or belongs to another model");
    TULU_CHECK(s->capacity_ <= max_positions_, "batch decode: session ", i, " holds ", s->capacity_,
               " positions, more than ", max_positions_);
    TULU_CHECK(s->pos() < s->capacity_, "context overflow: session ", i, " is full (", s->capacity_,
               " tokens)");
    const int id = tokens[static_cast<size_t>(i)];
    TULU_CHECK(id >= 0 && id < c.vocab_size, "token id ", id, " (session ", i,
               ") is outside the vocabulary [0, ", c.vocab_size, ")");
    for (int j = 0; j < i; ++j) {
      TULU_CHECK(sessions[static_cast<size_t>(j)] != s, "batch decode: session ", i,
                 " appears twice");
    }
  }

  const int64_t hidden = c.hidden_size, q_dim = c.q_dim(), kv_dim = c.kv_dim(),
                inter = c.intermediate_size;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  const AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim};
  float* x = residual_.data();
  float* xn = normed_.data();

  embedding_lookup(w.embed_tokens, tokens, x);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& layer = w.layers[static_cast<size_t>(l)];
    rmsnorm(x, input_norms_.data() + l * hidden, xn, rows, hidden, eps);
    matmul(xn, rows, layer.q_proj, queries_.data(), pool_, &scratch_);
    matmul(xn, rows, layer.k_proj, keys_.data(), pool_, &scratch_);
    matmul(xn, rows, layer.v_proj, values_.data(), pool_, &scratch_);
    for (int r = 0; r < rows; ++r) {
      Session& s = *sessions[static_cast<size_t>(r)];
      const int pos = s.pos();
      const size_t layer_offset =
          static_cast<size_t>(l) * static_cast<size_t>(s.capacity_) * static_cast<size_t>(kv_dim);
      float* layer_keys = s.k_cache_.data() + layer_offset;
      float* layer_values = s.v_cache_.data() + layer_offset;
      float* q = queries_.data() + r * q_dim;
      float* k = keys_.data() + r * kv_dim;
      rope_apply(q, 1, q_dim, c.num_attention_heads, pos, rope_);
      rope_apply(k, 1, kv_dim, c.num_key_value_heads, pos, rope_);
      const size_t row = static_cast<size_t>(pos) * static_cast<size_t>(kv_dim);
      std::memcpy(layer_keys + row, k, static_cast<size_t>(kv_dim) * sizeof(float));
      std::memcpy(layer_values + row, values_.data() + r * kv_dim,
                  static_cast<size_t>(kv_dim) * sizeof(float));
      attention(q, 1, pos, layer_keys, layer_values, shape, attended_.data() + r * q_dim,
                scores_.data(), pool_);
    }
    matmul(attended_.data(), rows, layer.o_proj, projected_.data(), pool_, &scratch_);
    add_inplace(x, projected_.data(), rows_times(rows, hidden));
    rmsnorm(x, post_norms_.data() + l * hidden, xn, rows, hidden, eps);
    matmul(xn, rows, layer.gate_proj, gate_.data(), pool_, &scratch_);
    matmul(xn, rows, layer.up_proj, up_.data(), pool_, &scratch_);
    silu_mul(gate_.data(), up_.data(), rows_times(rows, inter));
    matmul(gate_.data(), rows, layer.down_proj, projected_.data(), pool_, &scratch_);
    add_inplace(x, projected_.data(), rows_times(rows, hidden));
  }
  rmsnorm(x, final_norm_.data(), xn, rows, hidden, eps);
  matmul(xn, rows, w.lm_head, logits_.data(), pool_, &scratch_);
  for (int r = 0; r < rows; ++r) {
    sessions[static_cast<size_t>(r)]->tokens_.push_back(tokens[static_cast<size_t>(r)]);
  }
  return {logits_.data(), rows_times(rows, c.vocab_size)};
}

}  // namespace tulu

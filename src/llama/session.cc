// The Llama forward pass with a KV cache (Hugging Face LlamaForCausalLM semantics, fp32
// compute): embedding → L × [RMSNorm → q/k/v → RoPE → causal GQA attention → o_proj →
// residual → RMSNorm → gate/up → SiLU·mul → down → residual] → RMSNorm → lm_head.
#include "llama/session.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/attention_gemm.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"

namespace tulu {

namespace {

// Batches of at least this many tokens run attention as two GEMMs per head
// (attention_gemm.h); shorter ones (decode steps) use the dot-product kernel. Measured
// with tulu bench on the 110M model, pp512: attention went from 22% of the time to a few.
constexpr int kGemmAttentionMinRows = 16;

}  // namespace

// Workspaces, sized once from the config, max_batch and the cache capacity.
struct Session::Buffers {
  RopeTable rope;                  // cos/sin [capacity, head_dim / 2]
  std::vector<float> input_norms;  // [layers, hidden] input_layernorm weights as fp32
  std::vector<float> post_norms;   // [layers, hidden] post_attention_layernorm weights as fp32
  std::vector<float> final_norm;   // [hidden]
  std::vector<float> residual;     // [max_batch, hidden] the residual stream
  std::vector<float> normed;       // [max_batch, hidden] RMSNorm output
  std::vector<float> queries;      // [max_batch, q_dim] (keys/values go straight to the cache)
  std::vector<float> attended;     // [max_batch, q_dim] attention output before o_proj
  std::vector<float> projected;    // [max_batch, hidden] o_proj / down_proj output
  std::vector<float> gate;         // [max_batch, intermediate]
  std::vector<float> up;           // [max_batch, intermediate]
  std::vector<float> scores;       // [heads, capacity] attention probabilities
  std::vector<float> score_matrices;  // per thread [max_batch, capacity], prompt attention
  MatmulScratch matmul_scratch;    // BF16/F16 weight blocks widened for sgemm

  Buffers(const LlamaConfig& c, int capacity, int max_batch, int threads)
      : rope(make_rope_table(
            c.head_dim, c.rope_theta,
            c.rope_scaling.kind == RopeScaling::Kind::Linear ? c.rope_scaling.factor : 1.0,
            capacity)),
        matmul_scratch(std::max({c.hidden_size, c.q_dim(), c.intermediate_size}), threads) {
    const auto batch = static_cast<size_t>(max_batch);
    residual.resize(batch * static_cast<size_t>(c.hidden_size));
    normed.resize(residual.size());
    projected.resize(residual.size());
    queries.resize(batch * static_cast<size_t>(c.q_dim()));
    attended.resize(queries.size());
    gate.resize(batch * static_cast<size_t>(c.intermediate_size));
    up.resize(gate.size());
    scores.resize(static_cast<size_t>(c.num_attention_heads) * static_cast<size_t>(capacity));
    if (max_batch >= kGemmAttentionMinRows) {
      score_matrices.resize(static_cast<size_t>(
          attention_gemm_scratch_floats(max_batch, capacity - max_batch, threads)));
    }
  }
};

namespace {

void append_f32(std::vector<float>& dst, const TensorView& view) {
  const std::vector<float> values = to_f32(view);
  dst.insert(dst.end(), values.begin(), values.end());
}

}  // namespace

Session::Session(const LlamaModel& model, int max_seq_len, ThreadPool& pool, int max_batch)
    : model_(model), pool_(pool) {
  const LlamaConfig& c = model.config();
  TULU_CHECK(max_batch >= 1, "session: max_batch must be at least 1, got ", max_batch);
  capacity_ = max_seq_len > 0 ? max_seq_len : c.max_position_embeddings;
  max_batch_ = std::min(max_batch, capacity_);
  const size_t cache_floats = static_cast<size_t>(c.num_hidden_layers) *
                              static_cast<size_t>(capacity_) * static_cast<size_t>(c.kv_dim());
  k_cache_.resize(cache_floats);
  v_cache_.resize(cache_floats);
  logits_.resize(static_cast<size_t>(max_batch_) * static_cast<size_t>(c.vocab_size));
  tokens_.reserve(static_cast<size_t>(capacity_));
  buffers_ = std::make_shared<Buffers>(c, capacity_, max_batch_, pool.num_threads());
  const LlamaWeights& w = model.weights();
  for (const LayerWeights& layer : w.layers) {
    append_f32(buffers_->input_norms, layer.input_layernorm);
    append_f32(buffers_->post_norms, layer.post_attention_layernorm);
  }
  append_f32(buffers_->final_norm, w.norm);
}

std::span<const float> Session::eval(std::span<const int> tokens, bool all_logits) {
  const LlamaConfig& c = model_.config();
  TULU_CHECK(!tokens.empty(), "eval: no tokens to evaluate");
  for (size_t i = 0; i < tokens.size(); ++i) {
    TULU_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab_size, "token id ", tokens[i],
               " (input position ", i, ") is outside the vocabulary [0, ", c.vocab_size, ")");
  }
  const int count = static_cast<int>(tokens.size());
  TULU_CHECK(tokens.size() <= static_cast<size_t>(capacity_ - pos()), "context overflow: ", pos(),
             " cached + ", tokens.size(), " new tokens exceed the KV cache capacity of ", capacity_,
             " tokens");

  const auto vocab = static_cast<size_t>(c.vocab_size);
  const size_t out_rows = all_logits ? tokens.size() : 1;
  if (logits_.size() < out_rows * vocab) logits_.resize(out_rows * vocab);
  for (int start = 0; start < count; start += max_batch_) {
    const int n = std::min(max_batch_, count - start);
    const bool last_chunk = start + n == count;
    if (all_logits) {
      forward_chunk(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(n)), pos(),
                    logits_.data() + static_cast<size_t>(start) * vocab, /*all_rows=*/true);
    } else {
      // Only the final row's logits are wanted: earlier chunks skip lm_head entirely.
      forward_chunk(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(n)), pos(),
                    last_chunk ? logits_.data() : nullptr, /*all_rows=*/false);
    }
    tokens_.insert(tokens_.end(), tokens.begin() + start, tokens.begin() + start + n);
  }
  return {logits_.data(), out_rows * vocab};
}

void Session::forward_chunk(std::span<const int> tokens, int first, float* logits, bool all_rows) {
  const LlamaConfig& c = model_.config();
  const LlamaWeights& w = model_.weights();
  Buffers& b = *buffers_;
  const auto rows = static_cast<int64_t>(tokens.size());
  const int64_t hidden = c.hidden_size, q_dim = c.q_dim(), kv_dim = c.kv_dim(),
                inter = c.intermediate_size;
  const auto eps = static_cast<float>(c.rms_norm_eps);  // HF adds eps to a float32 tensor
  const AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim};
  float* x = b.residual.data();
  float* xn = b.normed.data();
  MatmulScratch* scratch = &b.matmul_scratch;

  embedding_lookup(w.embed_tokens, tokens, x);
  if (trace_) trace_("embed", rows, hidden, x);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& layer = w.layers[static_cast<size_t>(l)];
    const size_t layer_offset =
        static_cast<size_t>(l) * static_cast<size_t>(capacity_) * static_cast<size_t>(kv_dim);
    float* layer_keys = k_cache_.data() + layer_offset;
    float* layer_values = v_cache_.data() + layer_offset;
    // The new tokens' keys and values are written straight into their cache rows.
    float* new_keys = layer_keys + static_cast<size_t>(first) * static_cast<size_t>(kv_dim);
    float* new_values = layer_values + static_cast<size_t>(first) * static_cast<size_t>(kv_dim);

    // Self-attention block.
    rmsnorm(x, b.input_norms.data() + l * hidden, xn, rows, hidden, eps);
    matmul(xn, rows, layer.q_proj, b.queries.data(), pool_, scratch);
    matmul(xn, rows, layer.k_proj, new_keys, pool_, scratch);
    matmul(xn, rows, layer.v_proj, new_values, pool_, scratch);
    rope_apply(b.queries.data(), rows, q_dim, c.num_attention_heads, first, b.rope);
    rope_apply(new_keys, rows, kv_dim, c.num_key_value_heads, first, b.rope);
    if (rows >= kGemmAttentionMinRows) {
      attention_gemm(b.queries.data(), rows, first, layer_keys, layer_values, shape,
                     b.attended.data(), b.score_matrices.data(), pool_);
    } else {
      attention(b.queries.data(), rows, first, layer_keys, layer_values, shape,
                b.attended.data(), b.scores.data(), pool_);
    }
    matmul(b.attended.data(), rows, layer.o_proj, b.projected.data(), pool_, scratch);
    add_inplace(x, b.projected.data(), static_cast<size_t>(rows * hidden));
    if (trace_) trace_(str_cat("layers.", l, ".attention_residual"), rows, hidden, x);

    // MLP block (SwiGLU).
    rmsnorm(x, b.post_norms.data() + l * hidden, xn, rows, hidden, eps);
    matmul(xn, rows, layer.gate_proj, b.gate.data(), pool_, scratch);
    matmul(xn, rows, layer.up_proj, b.up.data(), pool_, scratch);
    silu_mul(b.gate.data(), b.up.data(), static_cast<size_t>(rows * inter));
    matmul(b.gate.data(), rows, layer.down_proj, b.projected.data(), pool_, scratch);
    add_inplace(x, b.projected.data(), static_cast<size_t>(rows * hidden));
    if (trace_) trace_(str_cat("layers.", l, ".output"), rows, hidden, x);
  }
  if (logits == nullptr) return;
  // Final norm and lm_head, for every row or only the last one.
  const int64_t first_row = all_rows ? 0 : rows - 1;
  const int64_t out_rows = rows - first_row;
  rmsnorm(x + first_row * hidden, b.final_norm.data(), xn, out_rows, hidden, eps);
  if (trace_) trace_("norm", out_rows, hidden, xn);
  matmul(xn, out_rows, w.lm_head, logits, pool_, scratch);
}

void Session::rewind(int n) {
  TULU_CHECK(n >= 0 && n <= pos(), "rewind: position ", n, " is outside [0, ", pos(),
             "] (cached positions)");
  tokens_.resize(static_cast<size_t>(n));
}

}  // namespace tulu

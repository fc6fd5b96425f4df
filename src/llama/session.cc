// The Llama forward pass with a KV cache (Hugging Face LlamaForCausalLM semantics, fp32
// compute): embedding → L × [RMSNorm → q/k/v → RoPE → causal GQA attention → o_proj →
// residual → RMSNorm → gate/up → SiLU·mul → down → residual] → RMSNorm → lm_head.
#include "llama/session.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/attention.h"
#include "kernels/attention_gemm.h"
#include "kernels/attention_rows.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "tensor/half.h"

namespace tulu {

namespace {

// Batches of at least this many tokens run attention as two GEMMs per head
// (attention_gemm.h); shorter ones (decode steps) use the dot-product kernel. Measured
// with tulu bench on the 110M model, pp512: attention went from 22% of the time to a few.
constexpr int kGemmAttentionMinRows = 16;

}  // namespace

// Workspaces, sized once from the config, the most rows per pass and the positions.
struct Session::Buffers {
  RopeTable rope;                  // cos/sin [max_positions, head_dim / 2]
  std::vector<float> input_norms;  // [layers, hidden] input_layernorm weights as fp32
  std::vector<float> post_norms;   // [layers, hidden] post_attention_layernorm weights as fp32
  std::vector<float> final_norm;   // [hidden]
  std::vector<float> residual;     // [max_rows, hidden] the residual stream
  std::vector<float> normed;       // [max_rows, hidden] RMSNorm output
  std::vector<float> queries;      // [max_rows, q_dim]
  std::vector<float> keys;         // [max_rows, kv_dim] new keys of multi-session passes
  std::vector<float> values;       // [max_rows, kv_dim] (one session: straight to its cache)
  std::vector<float> attended;     // [max_rows, q_dim] attention output before o_proj
  std::vector<float> projected;    // [max_rows, hidden] o_proj / down_proj output
  std::vector<float> gate;         // [max_rows, intermediate]
  std::vector<float> up;           // [max_rows, intermediate]
  // Attention probabilities: [heads, max_positions] for one session (attention.h), or
  // [max_rows, heads, max_positions] for batch rows (attention_rows.h).
  std::vector<float> scores;
  std::vector<float> score_matrices;         // per thread [max_rows, positions], prompt attention
  std::vector<AttentionRow> attention_rows;  // capacity max_rows, refilled per layer
  std::vector<AttentionRowF16> attention_rows_f16;  // the rows of sessions with F16 caches
  MatmulScratch matmul_scratch;                     // BF16/F16 weight blocks widened for sgemm
  int max_rows = 0;
  int max_positions = 0;

  Buffers(const LlamaConfig& c, int max_rows_in, int max_positions_in, int threads, bool batch_rows,
          KvType kv_type)
      : rope(make_rope_table(
            c.head_dim, c.rope_theta,
            c.rope_scaling.kind == RopeScaling::Kind::Linear ? c.rope_scaling.factor : 1.0,
            max_positions_in)),
        matmul_scratch(std::max({c.hidden_size, c.q_dim(), c.intermediate_size}), threads),
        max_rows(max_rows_in),
        max_positions(max_positions_in) {
    const auto rows = static_cast<size_t>(max_rows);
    residual.resize(rows * static_cast<size_t>(c.hidden_size));
    normed.resize(residual.size());
    projected.resize(residual.size());
    queries.resize(rows * static_cast<size_t>(c.q_dim()));
    attended.resize(queries.size());
    keys.resize(rows * static_cast<size_t>(c.kv_dim()));
    values.resize(keys.size());
    gate.resize(rows * static_cast<size_t>(c.intermediate_size));
    up.resize(gate.size());
    scores.resize((batch_rows ? rows : 1) * static_cast<size_t>(c.num_attention_heads) *
                  static_cast<size_t>(max_positions));
    if (max_rows >= kGemmAttentionMinRows) {
      score_matrices.resize(static_cast<size_t>(
          kv_type == KvType::F16
              ? attention_gemm_f16_scratch_floats(max_rows, max_positions - max_rows, c.kv_dim(),
                                                  threads)
              : attention_gemm_scratch_floats(max_rows, max_positions - max_rows, threads)));
    }
    attention_rows.reserve(rows);
    attention_rows_f16.reserve(rows);
  }
};

namespace {

void append_f32(std::vector<float>& dst, const TensorView& view) {
  const std::vector<float> values = to_f32(view);
  dst.insert(dst.end(), values.begin(), values.end());
}

}  // namespace

std::string_view kv_type_name(KvType type) {
  return type == KvType::F16 ? "f16" : "f32";
}

std::optional<KvType> kv_type_from_name(std::string_view name) {
  if (name == "f32") return KvType::F32;
  if (name == "f16") return KvType::F16;
  return std::nullopt;
}

uint64_t kv_cache_bytes(const LlamaConfig& config, int capacity, KvType type) {
  const uint64_t element = type == KvType::F16 ? sizeof(Half) : sizeof(float);
  return 2 * element * static_cast<uint64_t>(config.num_hidden_layers) *
         static_cast<uint64_t>(std::max(capacity, 0)) * static_cast<uint64_t>(config.kv_dim());
}

Session::Session(const LlamaModel& model, int max_seq_len, ThreadPool& pool, int max_batch,
                 KvType kv_type)
    : model_(model), pool_(pool), kv_type_(kv_type) {
  const LlamaConfig& c = model.config();
  TULU_CHECK(max_batch >= 1, "session: max_batch must be at least 1, got ", max_batch);
  capacity_ = max_seq_len > 0 ? max_seq_len : c.max_position_embeddings;
  max_batch_ = std::min(max_batch, capacity_);
  const size_t cache_floats = static_cast<size_t>(c.num_hidden_layers) *
                              static_cast<size_t>(capacity_) * static_cast<size_t>(c.kv_dim());
  if (kv_type_ == KvType::F16) {
    k_cache_f16_.resize(cache_floats);
    v_cache_f16_.resize(cache_floats);
  } else {
    k_cache_.resize(cache_floats);
    v_cache_.resize(cache_floats);
  }
  logits_.resize(static_cast<size_t>(max_batch_) * static_cast<size_t>(c.vocab_size));
  tokens_.reserve(static_cast<size_t>(capacity_));
  buffers_ = make_buffers(model, max_batch_, capacity_, pool.num_threads(), /*batch_rows=*/false,
                          kv_type_);
}

uint64_t Session::kv_cache_bytes() const {
  return tulu::kv_cache_bytes(model_.config(), capacity_, kv_type_);
}

std::shared_ptr<Session::Buffers> Session::make_buffers(const LlamaModel& model, int max_rows,
                                                        int max_positions, int threads,
                                                        bool batch_rows, KvType kv_type) {
  auto b = std::make_shared<Buffers>(model.config(), max_rows, max_positions, threads, batch_rows,
                                     kv_type);
  const LlamaWeights& w = model.weights();
  for (const LayerWeights& layer : w.layers) {
    append_f32(b->input_norms, layer.input_layernorm);
    append_f32(b->post_norms, layer.post_attention_layernorm);
  }
  append_f32(b->final_norm, w.norm);
  return b;
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
  const RowRun run{this, first, static_cast<int>(tokens.size())};
  forward(model_, *buffers_, {&run, 1}, tokens, all_rows ? 0 : run.count - 1, logits, pool_,
          &trace_);
}

void Session::forward(const LlamaModel& model, Buffers& b, std::span<const RowRun> runs,
                      std::span<const int> tokens, int64_t logits_first_row, float* logits,
                      ThreadPool& pool, const ActivationTrace* trace) {
  // This model's activation precision for BF16 prompt batches (matmul runs on this thread).
  const Bf16ActivationsScope precision(model.bf16_activations());
  const LlamaConfig& c = model.config();
  const LlamaWeights& w = model.weights();
  const auto rows = static_cast<int64_t>(tokens.size());
  const int64_t hidden = c.hidden_size, q_dim = c.q_dim(), kv_dim = c.kv_dim(),
                inter = c.intermediate_size;
  const auto eps = static_cast<float>(c.rms_norm_eps);  // HF adds eps to a float32 tensor
  const AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim};
  const bool tracing = trace != nullptr && *trace;
  float* x = b.residual.data();
  float* xn = b.normed.data();
  MatmulScratch* scratch = &b.matmul_scratch;
  // One session with an F32 cache: its new keys/values are computed straight into its
  // cache rows; otherwise into b.keys / b.values, then stored to each session's rows after
  // RoPE (rounded to f16 for an F16 cache).
  const bool direct = runs.size() == 1 && runs[0].session->kv_type_ == KvType::F32;
  const auto cache_offset = [&](const RowRun& run, int l, int position) {
    return (static_cast<size_t>(l) * static_cast<size_t>(run.session->capacity_) +
            static_cast<size_t>(position)) *
           static_cast<size_t>(kv_dim);
  };

  embedding_lookup(w.embed_tokens, tokens, x);
  if (tracing) (*trace)("embed", rows, hidden, x);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& layer = w.layers[static_cast<size_t>(l)];
    float* new_keys =
        direct ? runs[0].session->k_cache_.data() + cache_offset(runs[0], l, runs[0].first)
               : b.keys.data();
    float* new_values =
        direct ? runs[0].session->v_cache_.data() + cache_offset(runs[0], l, runs[0].first)
               : b.values.data();

    // Self-attention block.
    rmsnorm(x, b.input_norms.data() + l * hidden, xn, rows, hidden, eps);
    const MatmulOutput qkv[] = {
        {&layer.q_proj, b.queries.data()}, {&layer.k_proj, new_keys}, {&layer.v_proj, new_values}};
    matmul_group(xn, rows, qkv, pool, scratch);
    int64_t row = 0;
    for (const RowRun& run : runs) {
      rope_apply(b.queries.data() + row * q_dim, run.count, q_dim, c.num_attention_heads, run.first,
                 b.rope);
      rope_apply(new_keys + row * kv_dim, run.count, kv_dim, c.num_key_value_heads, run.first,
                 b.rope);
      if (!direct) {
        Session& s = *run.session;
        const size_t offset = cache_offset(run, l, run.first);
        const auto count = static_cast<size_t>(run.count * kv_dim);
        const float* keys = new_keys + row * kv_dim;
        const float* values = new_values + row * kv_dim;
        if (s.kv_type_ == KvType::F16) {
          Half* key_dst = s.k_cache_f16_.data() + offset;
          Half* value_dst = s.v_cache_f16_.data() + offset;
          for (size_t i = 0; i < count; ++i) {
            key_dst[i] = Half{f32_to_f16(keys[i])};
            value_dst[i] = Half{f32_to_f16(values[i])};
          }
        } else {
          std::memcpy(s.k_cache_.data() + offset, keys, count * sizeof(float));
          std::memcpy(s.v_cache_.data() + offset, values, count * sizeof(float));
        }
      }
      row += run.count;
    }
    if (runs.size() == 1) {
      const Session& s = *runs[0].session;
      const size_t layer_offset = cache_offset(runs[0], l, 0);
      const bool gemm = rows >= kGemmAttentionMinRows;
      // Keys/values as stored (float or Half): the kernels have an overload for each.
      const auto attend = [&](const auto* layer_keys, const auto* layer_values) {
        if (gemm) {
          attention_gemm(b.queries.data(), rows, runs[0].first, layer_keys, layer_values, shape,
                         b.attended.data(), b.score_matrices.data(), pool);
        } else {
          attention(b.queries.data(), rows, runs[0].first, layer_keys, layer_values, shape,
                    b.attended.data(), b.scores.data(), pool);
        }
      };
      if (s.kv_type_ == KvType::F16)
        attend(s.k_cache_f16_.data() + layer_offset, s.v_cache_f16_.data() + layer_offset);
      else
        attend(s.k_cache_.data() + layer_offset, s.v_cache_.data() + layer_offset);
    } else {
      // Every (row, head) pair of every session at once (attention_rows.h): one call for
      // the rows over F32 caches, one for those over F16 caches (each uses the whole score
      // scratch; the calls run one after the other).
      b.attention_rows.clear();
      b.attention_rows_f16.clear();
      row = 0;
      for (const RowRun& run : runs) {
        const Session& s = *run.session;
        const size_t layer_offset = cache_offset(run, l, 0);
        for (int i = 0; i < run.count; ++i, ++row) {
          float* query = b.queries.data() + row * q_dim;
          float* out = b.attended.data() + row * q_dim;
          if (s.kv_type_ == KvType::F16) {
            b.attention_rows_f16.push_back({query, s.k_cache_f16_.data() + layer_offset,
                                            s.v_cache_f16_.data() + layer_offset, run.first + i,
                                            out});
          } else {
            b.attention_rows.push_back({query, s.k_cache_.data() + layer_offset,
                                        s.v_cache_.data() + layer_offset, run.first + i, out});
          }
        }
      }
      if (!b.attention_rows.empty())
        attention_rows(b.attention_rows, shape, b.scores.data(), b.max_positions, pool);
      if (!b.attention_rows_f16.empty())
        attention_rows(b.attention_rows_f16, shape, b.scores.data(), b.max_positions, pool);
    }
    matmul(b.attended.data(), rows, layer.o_proj, b.projected.data(), pool, scratch);
    add_inplace(x, b.projected.data(), static_cast<size_t>(rows * hidden));
    if (tracing) (*trace)(str_cat("layers.", l, ".attention_residual"), rows, hidden, x);

    // MLP block (SwiGLU).
    rmsnorm(x, b.post_norms.data() + l * hidden, xn, rows, hidden, eps);
    const MatmulOutput gate_up[] = {{&layer.gate_proj, b.gate.data()}, {&layer.up_proj, b.up.data()}};
    matmul_group(xn, rows, gate_up, pool, scratch);
    silu_mul(b.gate.data(), b.up.data(), static_cast<size_t>(rows * inter));
    matmul(b.gate.data(), rows, layer.down_proj, b.projected.data(), pool, scratch);
    add_inplace(x, b.projected.data(), static_cast<size_t>(rows * hidden));
    if (tracing) (*trace)(str_cat("layers.", l, ".output"), rows, hidden, x);
  }
  if (logits == nullptr) return;
  // Final norm and lm_head for rows [logits_first_row, rows).
  const int64_t out_rows = rows - logits_first_row;
  rmsnorm(x + logits_first_row * hidden, b.final_norm.data(), xn, out_rows, hidden, eps);
  if (tracing) (*trace)("norm", out_rows, hidden, xn);
  matmul(xn, out_rows, w.lm_head, logits, pool, scratch);
}

void Session::rewind(int n) {
  TULU_CHECK(n >= 0 && n <= pos(), "rewind: position ", n, " is outside [0, ", pos(),
             "] (cached positions)");
  tokens_.resize(static_cast<size_t>(n));
}

}  // namespace tulu

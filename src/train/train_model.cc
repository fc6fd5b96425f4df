// Training forward/backward of the Llama model, one explicit step per operation (see
// train_model.h for the math and the memory contract).
#include "train/train_model.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/attention_train.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/linear_backward.h"
#include "kernels/rmsnorm.h"
#include "kernels/rmsnorm_backward.h"
#include "kernels/rope.h"
#include "kernels/rope_backward.h"

namespace tulu {

namespace {

// Rows of logits formed at a time by the loss head: bounds the [rows, vocab] buffer
// (1024 × 32000 floats = 131 MB) while keeping the lm_head GEMMs large: each chunk rewrites
// the whole lm_head gradient, so fewer, larger chunks save memory traffic.
constexpr int64_t kHeadChunkRows = 1024;

// forward_logprobs keeps all logits for its backward up to this size; beyond it the backward
// forms them again chunk by chunk.
constexpr size_t kKeptLogitsBudgetBytes = size_t{1} << 30;

// Offsets of one layer's parameters in the flat buffer.
struct LayerOffsets {
  size_t input_norm, q, k, v, o, post_norm, gate, up, down;
};

// Activations of one layer that its backward reads (rows = packed tokens of the batch).
struct LayerActivations {
  std::vector<float> normed_in;   // [rows, hidden] input_layernorm output
  std::vector<float> q, k, v;     // [rows, q_dim], [rows, kv_dim] ×2 (q, k after RoPE)
  std::vector<float> attended;    // [rows, q_dim] attention output before o_proj
  std::vector<float> lse;         // [heads, rows]: per sequence, [heads, T] at heads · start
  std::vector<float> mid;         // [rows, hidden] residual after the attention block
  std::vector<float> normed_mid;  // [rows, hidden] post_attention_layernorm output
  std::vector<float> gate, up;    // [rows, intermediate] before SiLU·mul

  void resize(const LlamaConfig& c, size_t rows) {
    const auto h = static_cast<size_t>(c.hidden_size), qd = static_cast<size_t>(c.q_dim()),
               kvd = static_cast<size_t>(c.kv_dim()),
               inter = static_cast<size_t>(c.intermediate_size);
    normed_in.resize(rows * h);
    q.resize(rows * qd);
    k.resize(rows * kvd);
    v.resize(rows * kvd);
    attended.resize(rows * qd);
    lse.resize(rows * static_cast<size_t>(c.num_attention_heads));
    mid.resize(rows * h);
    normed_mid.resize(rows * h);
    gate.resize(rows * inter);
    up.resize(rows * inter);
  }
};

}  // namespace

int64_t count_target_tokens(const TrainSequence& sequence) {
  int64_t n = 0;
  for (size_t t = 1; t < sequence.labels.size(); ++t) n += sequence.labels[t] != kIgnoreIndex;
  return n;
}

struct TrainModel::Impl {
  const LlamaConfig& config;
  ThreadPool& pool;
  bool checkpoint_activations;
  AttentionShape shape;
  float eps;
  size_t embed_offset, norm_offset, lm_head_offset;
  std::vector<LayerOffsets> layer_offsets;
  RopeTable rope;

  // The batch being processed: packed ids, per-row targets, sequence boundaries.
  std::vector<int> ids;
  std::vector<int> targets;
  std::vector<int64_t> starts;  // first row of each sequence, plus the total at the end
  int64_t rows = 0;
  // The loss head runs only over the rows with a counted target (ignored rows have zero
  // loss and gradient; in chat data most rows are masked prompt tokens, and the [rows, vocab]
  // head dominates a small model's cost). head_rows lists them in order, head_targets their
  // targets, head_starts the first head row of each sequence plus the total.
  std::vector<int64_t> head_rows;
  std::vector<int> head_targets;
  std::vector<int64_t> head_starts;
  int64_t head_count = 0;

  std::vector<float> residuals;           // [(layers + 1), rows, hidden] layer inputs + final
  std::vector<LayerActivations> slots;    // one per layer, or one with checkpointing
  std::vector<float> final_normed;        // [rows, hidden]
  std::vector<float> head_in;             // [head_count, hidden] final_normed's head rows
  std::vector<float> logits;              // [kHeadChunkRows, vocab]
  std::vector<float> kept_logits;         // [head_count, vocab] when logits_kept
  bool logits_kept = false;               // forward_logprobs kept every head row's logits
  bool pending_backward = false;          // forward_logprobs(…, true) awaits its backward
  std::vector<float> scratch_hidden;      // [rows, hidden]
  std::vector<float> scratch_inter;       // [rows, intermediate]
  std::vector<float> attention_scratch;
  // Backward buffers.
  std::vector<float> d_residual, d_normed;  // [rows, hidden]
  std::vector<float> d_head_in;             // [head_count, hidden]
  std::vector<float> d_attended, d_q;       // [rows, q_dim]
  std::vector<float> d_k, d_v;              // [rows, kv_dim]
  std::vector<float> d_gate, d_up;          // [rows, intermediate]

  Impl(const LlamaConfig& c, const ParamLayout& layout, ThreadPool& p, bool checkpoint)
      : config(c),
        pool(p),
        checkpoint_activations(checkpoint),
        shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim},
        eps(static_cast<float>(c.rms_norm_eps)) {
    embed_offset = layout.at("model.embed_tokens.weight").offset;
    norm_offset = layout.at("model.norm.weight").offset;
    lm_head_offset =
        c.tie_word_embeddings ? embed_offset : layout.at("lm_head.weight").offset;
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const std::string prefix = str_cat("model.layers.", l, ".");
      auto offset = [&](const char* name) { return layout.at(prefix + name).offset; };
      layer_offsets.push_back({offset("input_layernorm.weight"), offset("self_attn.q_proj.weight"),
                               offset("self_attn.k_proj.weight"), offset("self_attn.v_proj.weight"),
                               offset("self_attn.o_proj.weight"),
                               offset("post_attention_layernorm.weight"),
                               offset("mlp.gate_proj.weight"), offset("mlp.up_proj.weight"),
                               offset("mlp.down_proj.weight")});
    }
  }

  // Validates and packs the batch; sizes every buffer for it.
  void prepare(std::span<const TrainSequence> batch, bool training) {
    TULU_CHECK(!batch.empty(), "training batch is empty");
    ids.clear();
    targets.clear();
    starts.clear();
    int64_t longest = 0;
    for (size_t s = 0; s < batch.size(); ++s) {
      const TrainSequence& seq = batch[s];
      TULU_CHECK(!seq.input_ids.empty(), "training sequence ", s, " is empty");
      TULU_CHECK(seq.labels.size() == seq.input_ids.size(), "training sequence ", s, " has ",
                 seq.input_ids.size(), " input ids but ", seq.labels.size(), " labels");
      starts.push_back(static_cast<int64_t>(ids.size()));
      const auto length = static_cast<int64_t>(seq.input_ids.size());
      longest = std::max(longest, length);
      for (size_t t = 0; t < seq.input_ids.size(); ++t) {
        const int id = seq.input_ids[t];
        const int label = seq.labels[t];
        TULU_CHECK(id >= 0 && id < config.vocab_size, "training sequence ", s, " position ", t,
                   ": token id ", id, " is outside the vocabulary [0, ", config.vocab_size, ")");
        TULU_CHECK(label == kIgnoreIndex || (label >= 0 && label < config.vocab_size),
                   "training sequence ", s, " position ", t, ": label ", label,
                   " is neither -100 nor a token id in [0, ", config.vocab_size, ")");
        ids.push_back(id);
        // Row t predicts the next token: the label of position t + 1.
        targets.push_back(t + 1 < seq.labels.size() ? seq.labels[t + 1] : kIgnoreIndex);
      }
    }
    rows = static_cast<int64_t>(ids.size());
    starts.push_back(rows);
    head_rows.clear();
    head_targets.clear();
    head_starts.clear();
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      head_starts.push_back(static_cast<int64_t>(head_rows.size()));
      for (int64_t r = starts[s]; r < starts[s + 1]; ++r) {
        if (targets[static_cast<size_t>(r)] == kIgnoreIndex) continue;
        head_rows.push_back(r);
        head_targets.push_back(targets[static_cast<size_t>(r)]);
      }
    }
    head_count = static_cast<int64_t>(head_rows.size());
    head_starts.push_back(head_count);
    if (rope.positions < longest) {
      const double factor =
          config.rope_scaling.kind == RopeScaling::Kind::Linear ? config.rope_scaling.factor : 1.0;
      rope = make_rope_table(config.head_dim, config.rope_theta, factor,
                             static_cast<int>(std::max<int64_t>(longest, 64)));
    }
    const auto n = static_cast<size_t>(rows);
    const auto h = static_cast<size_t>(config.hidden_size);
    const auto layers = static_cast<size_t>(config.num_hidden_layers);
    const size_t slot_count = training && !checkpoint_activations ? layers : 1;
    residuals.resize((layers + 1) * n * h);
    slots.resize(slot_count);
    for (LayerActivations& slot : slots) slot.resize(config, n);
    final_normed.resize(n * h);
    head_in.resize(static_cast<size_t>(head_count) * h);
    logits.resize(static_cast<size_t>(std::min(kHeadChunkRows, head_count)) *
                  static_cast<size_t>(config.vocab_size));
    scratch_hidden.resize(n * h);
    scratch_inter.resize(n * static_cast<size_t>(config.intermediate_size));
    attention_scratch.resize(static_cast<size_t>(
        attention_train_packed_scratch_floats(starts, shape, pool.num_threads())));
    if (training) {
      d_residual.resize(n * h);
      d_normed.resize(n * h);
      d_head_in.resize(head_in.size());
      d_attended.resize(n * static_cast<size_t>(config.q_dim()));
      d_q.resize(d_attended.size());
      d_k.resize(n * static_cast<size_t>(config.kv_dim()));
      d_v.resize(d_k.size());
      d_gate.resize(scratch_inter.size());
      d_up.resize(scratch_inter.size());
    }
  }

  float* residual(int layer) {
    return residuals.data() + static_cast<size_t>(layer) * static_cast<size_t>(rows) *
                                  static_cast<size_t>(config.hidden_size);
  }
  LayerActivations& slot_for(int layer) {
    return slots.size() == 1 ? slots[0] : slots[static_cast<size_t>(layer)];
  }

  // Layer `l`: residual(l) → residual(l + 1), filling the layer's activations.
  void forward_layer(int l, const float* params) {
    const LayerOffsets& o = layer_offsets[static_cast<size_t>(l)];
    LayerActivations& a = slot_for(l);
    const int64_t h = config.hidden_size, qd = config.q_dim(), kvd = config.kv_dim(),
                  inter = config.intermediate_size;
    const float* x = residual(l);
    rmsnorm(x, params + o.input_norm, a.normed_in.data(), rows, h, eps);
    linear_forward(a.normed_in.data(), rows, params + o.q, qd, h, a.q.data(), pool);
    linear_forward(a.normed_in.data(), rows, params + o.k, kvd, h, a.k.data(), pool);
    linear_forward(a.normed_in.data(), rows, params + o.v, kvd, h, a.v.data(), pool);
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      const int64_t first = starts[s], length = starts[s + 1] - starts[s];
      rope_apply(a.q.data() + first * qd, length, qd, shape.heads, 0, rope);
      rope_apply(a.k.data() + first * kvd, length, kvd, shape.kv_heads, 0, rope);
    }
    // All sequences' (sequence, head) units in one dispatch.
    attention_train_forward_packed(a.q.data(), a.k.data(), a.v.data(), starts, shape,
                                   a.attended.data(), a.lse.data(), attention_scratch.data(), pool);
    linear_forward(a.attended.data(), rows, params + o.o, h, qd, scratch_hidden.data(), pool);
    const auto n = static_cast<size_t>(rows * h);
    std::memcpy(a.mid.data(), x, n * sizeof(float));
    add_inplace(a.mid.data(), scratch_hidden.data(), n);
    rmsnorm(a.mid.data(), params + o.post_norm, a.normed_mid.data(), rows, h, eps);
    linear_forward(a.normed_mid.data(), rows, params + o.gate, inter, h, a.gate.data(), pool);
    linear_forward(a.normed_mid.data(), rows, params + o.up, inter, h, a.up.data(), pool);
    silu_mul_to(a.gate.data(), a.up.data(), scratch_inter.data(),
                static_cast<size_t>(rows * inter), pool);
    float* out = residual(l + 1);
    linear_forward(scratch_inter.data(), rows, params + o.down, h, inter, out, pool);
    add_inplace(out, a.mid.data(), n);
  }

  // Backward of layer l: d_residual holds ∂L/∂residual(l + 1) on entry and ∂L/∂residual(l)
  // on exit. The layer's activations must be those of its forward (recomputed when
  // checkpointing).
  void backward_layer(int l, const float* params, float* grads) {
    const LayerOffsets& o = layer_offsets[static_cast<size_t>(l)];
    LayerActivations& a = slot_for(l);
    const int64_t h = config.hidden_size, qd = config.q_dim(), kvd = config.kv_dim(),
                  inter = config.intermediate_size;
    float* dx = d_residual.data();
    // MLP: out = mid + down(silu(gate) · up).
    silu_mul_to(a.gate.data(), a.up.data(), scratch_inter.data(),
                static_cast<size_t>(rows * inter), pool);
    linear_backward_weight(dx, scratch_inter.data(), rows, h, inter, grads + o.down, pool);
    linear_backward_input(dx, rows, params + o.down, h, inter, scratch_inter.data(), false, pool);
    silu_mul_backward(a.gate.data(), a.up.data(), scratch_inter.data(), d_gate.data(), d_up.data(),
                      static_cast<size_t>(rows * inter), pool);
    linear_backward_weight(d_gate.data(), a.normed_mid.data(), rows, inter, h, grads + o.gate, pool);
    linear_backward_weight(d_up.data(), a.normed_mid.data(), rows, inter, h, grads + o.up, pool);
    linear_backward_input(d_gate.data(), rows, params + o.gate, inter, h, d_normed.data(), false,
                          pool);
    linear_backward_input(d_up.data(), rows, params + o.up, inter, h, d_normed.data(), true, pool);
    rmsnorm_backward(a.mid.data(), params + o.post_norm, d_normed.data(), rows, h, eps, dx,
                     grads + o.post_norm, pool);
    // Attention: mid = x + o_proj(attention(rope(q), rope(k), v)).
    linear_backward_weight(dx, a.attended.data(), rows, h, qd, grads + o.o, pool);
    linear_backward_input(dx, rows, params + o.o, h, qd, d_attended.data(), false, pool);
    attention_train_backward_packed(a.q.data(), a.k.data(), a.v.data(), a.attended.data(),
                                    a.lse.data(), d_attended.data(), starts, shape, d_q.data(),
                                    d_k.data(), d_v.data(), attention_scratch.data(), pool);
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      const int64_t first = starts[s], length = starts[s + 1] - starts[s];
      rope_apply_inverse(d_q.data() + first * qd, length, qd, shape.heads, 0, rope);
      rope_apply_inverse(d_k.data() + first * kvd, length, kvd, shape.kv_heads, 0, rope);
    }
    linear_backward_weight(d_q.data(), a.normed_in.data(), rows, qd, h, grads + o.q, pool);
    linear_backward_weight(d_k.data(), a.normed_in.data(), rows, kvd, h, grads + o.k, pool);
    linear_backward_weight(d_v.data(), a.normed_in.data(), rows, kvd, h, grads + o.v, pool);
    linear_backward_input(d_q.data(), rows, params + o.q, qd, h, d_normed.data(), false, pool);
    linear_backward_input(d_k.data(), rows, params + o.k, kvd, h, d_normed.data(), true, pool);
    linear_backward_input(d_v.data(), rows, params + o.v, kvd, h, d_normed.data(), true, pool);
    rmsnorm_backward(residual(l), params + o.input_norm, d_normed.data(), rows, h, eps, dx,
                     grads + o.input_norm, pool);
  }

  // Embedding and every layer; the final residual lands in residual(layers).
  void forward_body(const float* params) {
    embedding_lookup_f32(params);
    for (int l = 0; l < config.num_hidden_layers; ++l) forward_layer(l, params);
    rmsnorm(residual(config.num_hidden_layers), params + norm_offset, final_normed.data(), rows,
            config.hidden_size, eps);
    gather_head_rows();
  }

  void embedding_lookup_f32(const float* params) {
    const auto h = static_cast<size_t>(config.hidden_size);
    float* x = residual(0);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(x + static_cast<size_t>(r) * h,
                  params + embed_offset + static_cast<size_t>(ids[static_cast<size_t>(r)]) * h,
                  h * sizeof(float));
    }
  }

  // lm_head and the loss over the final normalised rows, in chunks of kHeadChunkRows. With
  // grads: the head's weight gradient is accumulated and ∂L/∂final_normed written to
  // d_normed.
  LossStats head(const float* params, float* grads, float loss_scale) {
    LossStats stats;
    for_each_head_chunk(params, [&](int64_t first, int64_t n, float* chunk_logits) {
      const CrossEntropyStats ce = cross_entropy(chunk_logits, head_targets.data() + first, n,
                                                 config.vocab_size, loss_scale, grads != nullptr,
                                                 pool);
      stats.loss_sum += ce.loss_sum;
      stats.tokens += ce.tokens;
      stats.correct += ce.correct;
      if (grads != nullptr) head_backward(params, grads, first, n, chunk_logits);
    });
    if (grads != nullptr) scatter_d_normed();
    return stats;
  }

  // final_normed's head rows → head_in.
  void gather_head_rows() {
    const auto h = static_cast<size_t>(config.hidden_size);
    for (size_t i = 0; i < head_rows.size(); ++i) {
      std::memcpy(head_in.data() + i * h,
                  final_normed.data() + static_cast<size_t>(head_rows[i]) * h, h * sizeof(float));
    }
  }

  // d_head_in → d_normed (zero on the ignored rows).
  void scatter_d_normed() {
    const auto h = static_cast<size_t>(config.hidden_size);
    std::fill(d_normed.begin(), d_normed.end(), 0.0f);
    for (size_t i = 0; i < head_rows.size(); ++i) {
      std::memcpy(d_normed.data() + static_cast<size_t>(head_rows[i]) * h,
                  d_head_in.data() + i * h, h * sizeof(float));
    }
  }

  // Calls fn(first_head_row, n, logits [n, vocab]) for consecutive chunks of the head rows,
  // the logits formed by the lm_head GEMM (or taken from kept_logits when they were kept).
  template <typename Fn>
  void for_each_head_chunk(const float* params, Fn fn) {
    const int64_t h = config.hidden_size, vocab = config.vocab_size;
    for (int64_t first = 0; first < head_count; first += kHeadChunkRows) {
      const int64_t n = std::min(kHeadChunkRows, head_count - first);
      float* chunk = logits.data();
      if (logits_kept) {
        chunk = kept_logits.data() + first * vocab;
      } else {
        linear_forward(head_in.data() + first * h, n, params + lm_head_offset, vocab, h, chunk,
                       pool);
      }
      fn(first, n, chunk);
    }
  }

  // dlogits [n, vocab] of head rows [first, first + n) → the lm_head weight gradient and
  // d_head_in.
  void head_backward(const float* params, float* grads, int64_t first, int64_t n,
                     const float* dlogits) {
    const int64_t h = config.hidden_size, vocab = config.vocab_size;
    linear_backward_weight(dlogits, head_in.data() + first * h, n, vocab, h,
                           grads + lm_head_offset, pool);
    linear_backward_input(dlogits, n, params + lm_head_offset, vocab, h,
                          d_head_in.data() + first * h, false, pool);
  }

  // The sequence segments of head rows [first, first + n): fn(sequence, segment_first, count).
  template <typename Fn>
  void for_each_segment(int64_t first, int64_t n, Fn fn) const {
    for (size_t s = 0; s + 1 < head_starts.size(); ++s) {
      const int64_t begin = std::max(first, head_starts[s]),
                    end = std::min(first + n, head_starts[s + 1]);
      if (begin < end) fn(s, begin, end - begin);
    }
  }

  // Per-sequence Σ log p(target) (and Σ of the kept rows' mean logit), no gradient.
  std::vector<SequenceLogProb> head_logprobs(const float* params) {
    std::vector<SequenceLogProb> out(starts.size() - 1);
    const int64_t vocab = config.vocab_size;
    for_each_head_chunk(params, [&](int64_t first, int64_t n, float* chunk) {
      for_each_segment(first, n, [&](size_t s, int64_t begin, int64_t count) {
        float* seg = chunk + (begin - first) * vocab;
        const CrossEntropyStats ce =
            cross_entropy(seg, head_targets.data() + begin, count, vocab, 1.0f, false, pool);
        out[s].logp_sum -= ce.loss_sum;
        out[s].tokens += ce.tokens;
        out[s].correct += ce.correct;
        for (int64_t r = 0; r < count; ++r) {
          double sum = 0;
          for (int64_t v = 0; v < vocab; ++v) sum += seg[r * vocab + v];
          out[s].logits_sum += sum / static_cast<double>(vocab);
        }
      });
    });
    return out;
  }

  // Backward of Σ_s weight[s] · logp_sum[s] through the head (∂ log p / ∂ logits =
  // onehot − softmax: the cross-entropy gradient with scale −weight).
  void head_weighted_backward(const float* params, float* grads, std::span<const double> weights) {
    const int64_t vocab = config.vocab_size;
    for_each_head_chunk(params, [&](int64_t first, int64_t n, float* chunk) {
      for_each_segment(first, n, [&](size_t s, int64_t begin, int64_t count) {
        cross_entropy(chunk + (begin - first) * vocab, head_targets.data() + begin, count,
                      vocab, static_cast<float>(-weights[s]), true, pool);
      });
      head_backward(params, grads, first, n, chunk);
    });
    scatter_d_normed();
  }

  // Everything below the head: d_normed holds ∂L/∂final_normed on entry.
  void backward_body(const float* params, float* grads) {
    const int layers = config.num_hidden_layers;
    const int64_t h = config.hidden_size;
    std::fill(d_residual.begin(), d_residual.end(), 0.0f);
    rmsnorm_backward(residual(layers), params + norm_offset, d_normed.data(), rows, h, eps,
                     d_residual.data(), grads + norm_offset, pool);
    for (int l = layers - 1; l >= 0; --l) {
      // Checkpointing: the one activation slot holds the last layer the forward computed;
      // every other layer is recomputed from its saved input (residual(l + 1) is rewritten
      // with the same values, bit for bit).
      if (checkpoint_activations && l != layers - 1) forward_layer(l, params);
      backward_layer(l, params, grads);
    }
    embedding_backward(ids, d_residual.data(), h, grads + embed_offset);
  }
};

TrainModel::TrainModel(const LlamaConfig& config, const ParamLayout& layout, ThreadPool& pool,
                       bool checkpoint_activations)
    : impl_(std::make_unique<Impl>(config, layout, pool, checkpoint_activations)) {}

TrainModel::~TrainModel() = default;

LossStats TrainModel::forward_backward(std::span<const TrainSequence> batch, const float* params,
                                       float* grads, float loss_scale) {
  Impl& m = *impl_;
  m.prepare(batch, /*training=*/true);
  m.logits_kept = false;
  m.forward_body(params);
  const LossStats stats = m.head(params, grads, loss_scale);
  m.backward_body(params, grads);
  m.pending_backward = false;
  return stats;
}

std::vector<SequenceLogProb> TrainModel::forward_logprobs(std::span<const TrainSequence> batch,
                                                          const float* params,
                                                          bool keep_for_backward) {
  Impl& m = *impl_;
  m.prepare(batch, keep_for_backward);
  m.forward_body(params);
  // Keep the logits for the backward when they fit the budget: then the backward costs what
  // an SFT backward costs (no second lm_head GEMM).
  const auto logit_floats =
      static_cast<size_t>(m.head_count) * static_cast<size_t>(m.config.vocab_size);
  m.logits_kept = false;
  if (keep_for_backward && logit_floats * sizeof(float) <= kKeptLogitsBudgetBytes) {
    m.kept_logits.resize(logit_floats);
    const int64_t h = m.config.hidden_size;
    linear_forward(m.head_in.data(), m.head_count, params + m.lm_head_offset, m.config.vocab_size,
                   h, m.kept_logits.data(), m.pool);
    m.logits_kept = true;
  }
  std::vector<SequenceLogProb> out = m.head_logprobs(params);
  m.pending_backward = keep_for_backward;
  return out;
}

void TrainModel::backward_logprobs(std::span<const double> weights, const float* params,
                                   float* grads) {
  Impl& m = *impl_;
  TULU_CHECK(m.pending_backward, "backward_logprobs: no forward_logprobs(…, keep_for_backward = "
             "true) to differentiate");
  TULU_CHECK(weights.size() + 1 == m.starts.size(), "backward_logprobs: ", weights.size(),
             " weights for ", m.starts.size() - 1, " sequences");
  m.head_weighted_backward(params, grads, weights);
  m.logits_kept = false;
  m.backward_body(params, grads);
  m.pending_backward = false;
}

LossStats TrainModel::evaluate(std::span<const TrainSequence> batch, const float* params) {
  Impl& m = *impl_;
  m.prepare(batch, /*training=*/false);
  m.logits_kept = false;
  m.pending_backward = false;
  m.forward_body(params);
  return m.head(params, nullptr, 1.0f);
}

}  // namespace tulu

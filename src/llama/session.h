// Inference state for one sequence: KV cache, activations and workspaces, all allocated
// once at construction from the config and max_seq_len (never inside eval). Not
// thread-safe; the model it refers to must outlive it. Kernels use the given pool.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/attention.h"
#include "llama/model.h"

namespace tulu {

// Element type of a session's KV cache. F32: keys/values as computed (exact). F16: each
// key (after RoPE) and value rounded to IEEE half, nearest even, as torch's .half() and
// llama.cpp's default f16 cache; half the memory, attention math still fp32 (the result
// equals the F32 path run on keys/values pre-rounded to f16, up to fp32 rounding).
enum class KvType { F32, F16 };

// "f32" / "f16" (llama-bench's type_k / type_v spelling).
std::string_view kv_type_name(KvType type);
// The type named "f32" or "f16"; nullopt for anything else.
std::optional<KvType> kv_type_from_name(std::string_view name);
// Bytes of keys plus values for `capacity` positions of every layer.
uint64_t kv_cache_bytes(const LlamaConfig& config, int capacity, KvType type);

class Session {
 public:
  // Tokens evaluated together at most; longer inputs to eval run in chunks of this size
  // (it bounds the activation workspaces: max_batch × (3·hidden + 2·q_dim + 2·intermediate)
  // floats, plus [max_batch, vocab] logits).
  static constexpr int kDefaultMaxBatch = 128;

  // max_seq_len: capacity of the KV cache in tokens (≤ 0 = the model's
  // max_position_embeddings). max_batch ≥ 1 (tests use small values to exercise chunking).
  // kv_type: the cache's element type (F32 = exact). Throws tulu::Error for a max_batch < 1.
  Session(const LlamaModel& model, int max_seq_len, ThreadPool& pool,
          int max_batch = kDefaultMaxBatch, KvType kv_type = KvType::F32);

  // Runs tokens at positions [pos(), pos() + tokens.size()) through the model as one
  // batch (matrix–matrix products), appending their keys/values to the cache.
  // Returns logits, row-major [tokens.size(), vocab] when all_logits, else [1, vocab]
  // for the last token. The returned span is valid until the next eval/reset.
  // Inputs longer than max_batch() are evaluated in consecutive chunks (same result up to
  // fp32 rounding). The logits buffer holds [max_batch, vocab] from construction; only an
  // all_logits request for more rows than that enlarges it (it is the output, sized by it).
  // Throws tulu::Error if tokens is empty, a token id is outside [0, vocab) or the cache
  // would overflow; the session is unchanged then.
  std::span<const float> eval(std::span<const int> tokens, bool all_logits);

  int pos() const { return static_cast<int>(tokens_.size()); }
  // The ids whose keys/values are cached, in order (for prefix reuse).
  std::span<const int> tokens() const { return tokens_; }
  int capacity() const { return capacity_; }
  int max_batch() const { return max_batch_; }
  KvType kv_type() const { return kv_type_; }
  // Bytes the KV cache holds (keys and values, every layer, capacity() positions).
  uint64_t kv_cache_bytes() const;
  // Debugging: when set, called with named intermediate activations of every evaluated
  // chunk, in order: "embed", then per layer l "layers.<l>.attention_residual" (the
  // residual stream after the attention block) and "layers.<l>.output", then "norm" (the
  // final RMSNorm output of the rows whose logits are computed). data is [rows, cols]
  // row-major, valid only during the call. Used to find the first layer that diverges
  // from a reference (tulu logits --dump-activations). Empty function = off.
  using ActivationTrace =
      std::function<void(const std::string& name, int64_t rows, int64_t cols, const float* data)>;
  void set_activation_trace(ActivationTrace trace) { trace_ = std::move(trace); }

  // Forgets cached positions >= n; throws tulu::Error unless 0 ≤ n ≤ pos(). reset() = rewind(0).
  void rewind(int n);
  void reset() { rewind(0); }

 private:
  // Decodes one token for several sessions in one step, writing their caches and tokens
  // (llama/batch_decode.h); it runs the same layer stack, forward(), over its rows.
  friend class BatchDecoder;
  // Workspaces of forward() (activations, RoPE table, fp32 norms, attention scratch),
  // laid out in session.cc.
  struct Buffers;
  // Consecutive rows of one forward pass that belong to one session: its tokens at
  // positions [first, first + count), whose keys/values go to that session's cache.
  struct RowRun {
    Session* session = nullptr;
    int first = 0;
    int count = 0;
  };
  // Workspaces for up to max_rows rows per pass and positions < max_positions. batch_rows:
  // sized for runs of several sessions at once (BatchDecoder: per-row attention scratch).
  // kv_type: of the one session whose prompt chunks use them (sizes the prompt-attention
  // scratch, which widens an F16 cache range to fp32).
  static std::shared_ptr<Buffers> make_buffers(const LlamaModel& model, int max_rows,
                                               int max_positions, int threads, bool batch_rows,
                                               KvType kv_type);
  // The layer stack (embedding → layers → final norm → lm_head) over tokens, row i of which
  // belongs to the run covering it (runs in row order, counts summing to tokens.size() ≤
  // max_rows, every run's session of `model` with capacity ≤ max_positions and room for its
  // rows). Appends keys/values to the sessions' caches (not their token lists). Writes the
  // logits of rows [logits_first_row, rows) to `logits` ([rows − first, vocab]) unless
  // logits is null. trace: activation trace (see set_activation_trace) or null.
  static void forward(const LlamaModel& model, Buffers& b, std::span<const RowRun> runs,
                      std::span<const int> tokens, int64_t logits_first_row, float* logits,
                      ThreadPool& pool, const ActivationTrace* trace);
  // Runs tokens at positions [first, first + n), n ≤ max_batch, through the model; writes
  // logits of every row to `logits` ([n, vocab]) when all_rows, else of the last row only.
  void forward_chunk(std::span<const int> tokens, int first, float* logits, bool all_rows);
  const LlamaModel& model_;
  ThreadPool& pool_;
  int capacity_ = 0;
  int max_batch_ = 0;
  KvType kv_type_ = KvType::F32;
  std::vector<int> tokens_;  // cached ids, size = pos()
  // [layers, capacity, kv_dim] each; the F32 pair or the F16 pair is allocated, by kv_type_.
  std::vector<float> k_cache_, v_cache_;
  std::vector<Half> k_cache_f16_, v_cache_f16_;
  std::vector<float> logits_;  // [max batch, vocab]
  std::shared_ptr<Buffers> buffers_;
  ActivationTrace trace_;
};

}  // namespace tulu

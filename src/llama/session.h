// Inference state for one sequence: KV cache, activations and workspaces, all allocated
// once at construction from the config and max_seq_len (never inside eval). Not
// thread-safe; the model it refers to must outlive it. Kernels use the given pool.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "llama/model.h"

namespace tulu {

class Session {
 public:
  // max_seq_len: capacity of the KV cache in tokens (≤ 0 = the model's
  // max_position_embeddings).
  Session(const LlamaModel& model, int max_seq_len, ThreadPool& pool);

  // Runs tokens at positions [pos(), pos() + tokens.size()) through the model as one
  // batch (matrix–matrix products), appending their keys/values to the cache.
  // Returns logits, row-major [tokens.size(), vocab] when all_logits, else [1, vocab]
  // for the last token. The returned span is valid until the next eval/reset.
  // Throws tulu::Error if a token id is outside [0, vocab) or the cache would overflow.
  std::span<const float> eval(std::span<const int> tokens, bool all_logits);

  int pos() const { return static_cast<int>(tokens_.size()); }
  // The ids whose keys/values are cached, in order (for prefix reuse).
  std::span<const int> tokens() const { return tokens_; }
  int capacity() const { return capacity_; }
  // Forgets cached positions >= n (n ≤ pos()); reset() = rewind(0).
  void rewind(int n);
  void reset() { rewind(0); }

 private:
  // Implementation in session.cc; fields are laid out there.
  struct Buffers;
  const LlamaModel& model_;
  ThreadPool& pool_;
  int capacity_ = 0;
  std::vector<int> tokens_;     // cached ids, size = pos()
  std::vector<float> k_cache_;  // [layers, capacity, kv_dim]
  std::vector<float> v_cache_;  // [layers, capacity, kv_dim]
  std::vector<float> logits_;   // [max batch, vocab]
  std::shared_ptr<Buffers> buffers_;
};

}  // namespace tulu

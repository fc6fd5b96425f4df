// Batched decode step (see batch_decode.h): checks, then Session::forward with one row
// (one RowRun) per session.
#include "llama/batch_decode.h"

#include "core/error.h"

namespace tulu {

BatchDecoder::BatchDecoder(const LlamaModel& model, int max_rows, int max_positions,
                           ThreadPool& pool)
    : model_(model), pool_(pool), max_rows_(max_rows), max_positions_(max_positions) {
  TULU_CHECK(max_rows >= 1, "batch decode: max_rows must be at least 1, got ", max_rows);
  TULU_CHECK(max_positions >= 1, "batch decode: max_positions must be at least 1, got ",
             max_positions);
  buffers_ = Session::make_buffers(model, max_rows, max_positions, pool.num_threads(),
                                   /*batch_rows=*/true,
                                   /*kv_type: prompt attention only, never run here=*/KvType::F32);
  runs_.reserve(static_cast<size_t>(max_rows));
  logits_.resize(static_cast<size_t>(max_rows) * static_cast<size_t>(model.config().vocab_size));
}

std::span<const float> BatchDecoder::decode(std::span<Session* const> sessions,
                                            std::span<const int> tokens) {
  const LlamaConfig& c = model_.config();
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

  runs_.clear();
  for (Session* s : sessions) runs_.push_back({s, s->pos(), 1});
  Session::forward(model_, *buffers_, runs_, tokens, 0, logits_.data(), pool_, nullptr);
  for (int r = 0; r < rows; ++r) {
    sessions[static_cast<size_t>(r)]->tokens_.push_back(tokens[static_cast<size_t>(r)]);
  }
  return {logits_.data(), static_cast<size_t>(rows) * static_cast<size_t>(c.vocab_size)};
}

}  // namespace tulu

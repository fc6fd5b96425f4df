#include "train/sft_prefix_tokens.h"

#include <algorithm>

namespace tulu {

PrefixTokenCounter::PrefixTokenCounter(const Tokenizer& tokenizer, std::string_view text,
                                       std::vector<size_t> anchors)
    : tokenizer_(tokenizer),
      text_(text),
      eos_(tokenizer.id_to_piece(tokenizer.eos_id())),
      anchors_(std::move(anchors)) {
  ids_ = tokenizer_.encode("", /*add_bos=*/true);
  usable_ = ids_.size() == 1 && ids_[0] == tokenizer_.bos_id() &&
            std::is_sorted(anchors_.begin(), anchors_.end()) &&
            std::all_of(anchors_.begin(), anchors_.end(), [&](size_t a) {
              return a >= eos_.size() && a <= text_.size() &&
                     text_.substr(a - eos_.size(), eos_.size()) == eos_;
            });
}

int64_t PrefixTokenCounter::count(size_t bytes) {
  const auto plain = [&] {
    return static_cast<int64_t>(tokenizer_.encode(text_.substr(0, bytes), true).size());
  };
  if (!usable_ || bytes < position_) return plain();
  // The ids text[position_:end] adds after text[:position_] (position_ > 0), or nullopt
  // when the tokenizer did not start the piece with EOS (the split assumption fails).
  const auto segment = [&](size_t end, std::vector<int>& out) {
    scratch_.assign(eos_);
    scratch_.append(text_.substr(position_, end - position_));
    out = tokenizer_.encode(scratch_, /*add_bos=*/false);
    if (out.empty() || out.front() != tokenizer_.eos_id()) return false;
    out.erase(out.begin());
    return true;
  };
  std::vector<int> piece;
  while (next_anchor_ < anchors_.size() && anchors_[next_anchor_] <= bytes) {
    const size_t anchor = anchors_[next_anchor_++];
    if (position_ == 0) {
      ids_ = tokenizer_.encode(text_.substr(0, anchor), true);
    } else {
      if (!segment(anchor, piece)) {
        usable_ = false;
        failed_ = true;
        return plain();
      }
      ids_.insert(ids_.end(), piece.begin(), piece.end());
    }
    position_ = anchor;
  }
  if (bytes == position_) return static_cast<int64_t>(ids_.size());
  if (position_ == 0) return plain();
  if (!segment(bytes, piece)) {
    usable_ = false;
    failed_ = true;
    return plain();
  }
  return static_cast<int64_t>(ids_.size() + piece.size());
}

bool PrefixTokenCounter::verify(std::span<const int> full_ids) const {
  if (failed_) return false;
  if (position_ == 0) return true;  // no anchor reached: every count was a plain encode
  return full_ids.size() >= ids_.size() && std::equal(ids_.begin(), ids_.end(), full_ids.begin());
}

}  // namespace tulu

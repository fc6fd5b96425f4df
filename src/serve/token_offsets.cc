// Token offsets for TGI's /tokenize (see token_offsets.h).
//
// How: the input is split, as the tokenizer does, into runs of model tokens separated by
// special tokens written in the text. Each token's piece is matched against the input from
// a cursor: a "▁" of the piece matches a space or a literal "▁" of the input, <0xNN> that
// byte, anything else itself. The only text a piece has that the input lacks is a
// segment's dummy-prefix "▁": at a run's start it is recognised by where the run ends
// (exactly where the next special token's literal, or the input, begins); inside a run
// (a segment split by a non-special added token) a "▁" where the input has no space is one.
#include "serve/token_offsets.h"

#include <cctype>
#include <optional>

namespace tulu {

namespace {

constexpr std::string_view kMetaspace = "\xe2\x96\x81";  // ▁

// A piece as matched against the input: "▁" stays "▁" (it matches a space or a "▁"),
// a byte-fallback piece <0xNN> is that byte.
std::string match_form(const Tokenizer& tokenizer, int id) {
  std::string piece = tokenizer.id_to_piece(id);
  if (piece.size() == 6 && piece.starts_with("<0x") && piece[5] == '>' &&
      std::isxdigit(static_cast<unsigned char>(piece[3])) &&
      std::isxdigit(static_cast<unsigned char>(piece[4]))) {
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  }
  return piece;
}

// The length of the input at pos that a "▁" of a piece stands for: 1 for a space, 3 for
// a literal "▁", 0 for neither.
size_t space_at(std::string_view input, size_t pos) {
  if (pos < input.size() && input[pos] == ' ') return 1;
  if (input.substr(pos).starts_with(kMetaspace)) return kMetaspace.size();
  return 0;
}

// Matches `form` (a match_form piece) at input[pos]; the input length it covers, or
// nullopt.
std::optional<size_t> match_at(std::string_view input, size_t pos, std::string_view form) {
  const size_t begin = pos;
  while (!form.empty()) {
    if (form.starts_with(kMetaspace)) {
      const size_t n = space_at(input, pos);
      if (n == 0) return std::nullopt;
      pos += n;
      form.remove_prefix(kMetaspace.size());
    } else {
      if (pos >= input.size() || input[pos] != form[0]) return std::nullopt;
      ++pos;
      form.remove_prefix(1);
    }
  }
  return pos - begin;
}

bool is_continuation(unsigned char byte) {
  return (byte & 0xC0) == 0x80;
}

// The start of the UTF-8 character holding input[pos].
size_t char_start(std::string_view input, size_t pos) {
  while (pos > 0 && is_continuation(static_cast<unsigned char>(input[pos]))) --pos;
  return pos;
}

// One past the end of the UTF-8 character holding input[pos].
size_t char_end(std::string_view input, size_t pos) {
  ++pos;
  while (pos < input.size() && is_continuation(static_cast<unsigned char>(input[pos]))) ++pos;
  return pos;
}

struct Run {
  size_t begin = 0, end = 0;  // token indices [begin, end)
};

// Aligns tokens [run.begin, run.end) from `cursor`; leading_dummy: the first surface
// starts with a dummy-prefix space. Returns the cursor after the run, or nullopt when a
// surface does not match the input. Writes spans[i].start / stop.
std::optional<size_t> align_run(std::string_view input, const std::vector<std::string>& surfaces,
                                const Run& run, size_t cursor, bool leading_dummy,
                                std::vector<TokenSpan>& spans) {
  for (size_t i = run.begin; i < run.end; ++i) {
    std::string_view form = surfaces[i];
    if (form.empty()) return std::nullopt;
    const bool dummy = form.starts_with(kMetaspace) &&
                       (i == run.begin ? leading_dummy : space_at(input, cursor) == 0);
    if (dummy) {
      form.remove_prefix(kMetaspace.size());
      // Nothing of the input left for the prefix to stand for.
      if (cursor >= input.size()) return std::nullopt;
    }
    const std::optional<size_t> covered = match_at(input, cursor, form);
    if (!covered) return std::nullopt;
    TokenSpan& span = spans[i];
    if (*covered == 0) {
      // A lone dummy prefix: Hugging Face aligns it to the character that follows.
      span.start = cursor;
      span.stop = char_end(input, cursor);
    } else {
      // Whole characters: byte-fallback tokens cover the character their byte is in.
      span.start = char_start(input, cursor);
      span.stop = char_end(input, cursor + *covered - 1);
    }
    cursor += *covered;
  }
  return cursor;
}

// The cursor after the run must be where the next special token's literal starts (or the
// input's end when none follows).
bool run_ends_well(std::string_view input, size_t after, const std::string* next_literal) {
  if (next_literal == nullptr) return after == input.size();
  return after <= input.size() && input.substr(after).starts_with(*next_literal);
}

// Offsets of ids = encode(input, add_special=false); false when they do not align.
bool align(const Tokenizer& tokenizer, std::string_view input, const std::vector<int>& ids,
           std::vector<TokenSpan>& spans) {
  std::vector<std::string> surfaces;
  surfaces.reserve(ids.size());
  for (const int id : ids) surfaces.push_back(match_form(tokenizer, id));
  size_t cursor = 0;
  size_t i = 0;
  while (i < ids.size()) {
    if (tokenizer.is_special(ids[i])) {
      // A special token written in the text: its literal.
      const std::string& literal = surfaces[i];
      if (literal.empty() || !input.substr(cursor).starts_with(literal)) return false;
      spans[i].start = cursor;
      spans[i].stop = cursor + literal.size();
      cursor += literal.size();
      ++i;
      continue;
    }
    Run run{i, i};
    while (run.end < ids.size() && !tokenizer.is_special(ids[run.end])) ++run.end;
    const std::string* next_literal = run.end < ids.size() ? &surfaces[run.end] : nullptr;
    std::optional<size_t> after;
    if (surfaces[i].starts_with(kMetaspace)) {
      after = align_run(input, surfaces, run, cursor, /*leading_dummy=*/true, spans);
      if (after && !run_ends_well(input, *after, next_literal)) after.reset();
    }
    if (!after) {
      after = align_run(input, surfaces, run, cursor, /*leading_dummy=*/false, spans);
      if (after && !run_ends_well(input, *after, next_literal)) after.reset();
    }
    if (!after) return false;
    cursor = *after;
    i = run.end;
  }
  return cursor == input.size();
}

}  // namespace

std::vector<TokenSpan> tokenize_with_offsets(const Tokenizer& tokenizer, std::string_view input,
                                             bool add_special) {
  const std::vector<int> ids = tokenizer.encode(input, add_special);
  std::vector<TokenSpan> spans(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) spans[i].id = ids[i];
  // The tokens add_special_tokens adds (BOS before, EOS after: what it gives for an empty
  // text, split before the first EOS) cover nothing; align the rest, which are the plain
  // encoding.
  const std::vector<int> plain = add_special ? tokenizer.encode(input, false) : ids;
  std::optional<size_t> offset;
  if (!add_special) {
    offset = 0;
  } else {
    const std::vector<int> added = tokenizer.encode("", true);
    size_t prefix = 0;
    while (prefix < added.size() && added[prefix] != tokenizer.eos_id()) ++prefix;
    std::vector<int> expected(added.begin(), added.begin() + static_cast<std::ptrdiff_t>(prefix));
    expected.insert(expected.end(), plain.begin(), plain.end());
    expected.insert(expected.end(), added.begin() + static_cast<std::ptrdiff_t>(prefix),
                    added.end());
    if (expected == ids) offset = prefix;
  }
  std::vector<TokenSpan> aligned(plain.size());
  if (!offset || !align(tokenizer, input, plain, aligned)) {
    return spans;  // TGI's answer without offsets: start = stop = 0, empty text
  }
  for (size_t i = 0; i < plain.size(); ++i) {
    TokenSpan& span = spans[*offset + i];
    span.start = aligned[i].start;
    span.stop = aligned[i].stop;
    span.text = std::string(input.substr(span.start, span.stop - span.start));
  }
  return spans;
}

}  // namespace tulu

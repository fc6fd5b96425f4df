// SFT rows → (input_ids, labels), transcribed from open-instruct's finetune.py (late 2023,
// the Tulu 2 release): encode_with_messages_format, encode_with_prompt_completion_format,
// and the filter that drops rows without a target. See sft_data.h for the contract.
#include "train/sft_data.h"

#include <algorithm>
#include <string_view>

#include "core/error.h"
#include "core/thread_pool.h"
#include "train/jsonl_rows.h"
#include "train/sft_prefix_tokens.h"
#include "train/tulu_messages.h"

namespace tulu {

namespace {

constexpr int kIgnoreIndex = -100;
constexpr std::string_view kAssistantTag = "<|assistant|>\n";

// Appends the parts in order (no operator+ chains: GCC 12 warns about them spuriously).
template <typename... Parts>
void append(std::string& text, const Parts&... parts) {
  (text.append(std::string_view(parts)), ...);
}

// open-instruct's tokenizer(text, max_length=N, truncation=True): BOS + text, first N ids.
std::vector<int> encode_truncated(const Tokenizer& tokenizer, std::string_view text,
                                  int64_t max_seq_length, bool* truncated) {
  std::vector<int> ids = tokenizer.encode(text, /*add_bos=*/true);
  const bool cut = static_cast<int64_t>(ids.size()) > max_seq_length;
  if (cut) ids.resize(static_cast<size_t>(max_seq_length));
  if (truncated != nullptr) *truncated = cut;
  return ids;
}

// Length of open-instruct's truncated tokenization of `text` (its input_ids.shape[1]).
int64_t truncated_length(const Tokenizer& tokenizer, std::string_view text,
                         int64_t max_seq_length) {
  const auto length = static_cast<int64_t>(tokenizer.encode(text, /*add_bos=*/true).size());
  return std::min(length, max_seq_length);
}

void mask(std::vector<int>& labels, int64_t begin, int64_t end) {
  end = std::min(end, static_cast<int64_t>(labels.size()));
  for (int64_t k = begin; k < end; ++k) labels[static_cast<size_t>(k)] = kIgnoreIndex;
}

// encode_with_messages_format. `text` is _concat_messages over all messages; prefix_end[k]
// is the byte length of _concat_messages(messages[:k]), so every prefix open-instruct
// tokenizes is a prefix of `text` (the "<|assistant|>\n" added before an assistant turn
// is the start of that turn's own rendering).
void encode_messages(const std::vector<Message>& messages, const Tokenizer& tokenizer,
                     int64_t max_seq_length, SftExample& out, bool* truncated) {
  const std::string eos = tokenizer.id_to_piece(tokenizer.eos_id());
  std::string text;
  std::vector<size_t> prefix_end{0};
  std::vector<size_t> after_eos;  // just after each "</s>" written here
  for (const Message& m : messages) {
    const size_t end = append_tulu_message(text, m, eos);
    if (m.role == Role::Assistant) after_eos.push_back(end);
    prefix_end.push_back(text.size());
  }
  const std::vector<int> full = tokenizer.encode(utf8::python_strip(text), /*add_bos=*/true);

  // The masked spans [start, end): open-instruct's loop, with each prefix's token count
  // (truncated at max_seq_length) from `count`.
  const size_t n = messages.size();
  const auto spans = [&](const auto& count) {
    std::vector<std::pair<int64_t, int64_t>> result;
    int64_t previous_end = -1;
    size_t previous_end_bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      if (messages[i].role == Role::Assistant) continue;
      int64_t start = 0;
      if (i > 0) {
        // Often the previous span's end: the same prefix, not encoded twice.
        start = previous_end >= 0 && previous_end_bytes == prefix_end[i]
                    ? previous_end
                    : std::min(count(prefix_end[i]), max_seq_length);
      }
      size_t end_bytes = prefix_end[i + 1];
      // The next assistant turn's "<|assistant|>\n" is masked with this message.
      if (i + 1 < n && messages[i + 1].role == Role::Assistant) end_bytes += kAssistantTag.size();
      const int64_t end = std::min(count(end_bytes), max_seq_length);
      result.emplace_back(start, end);
      previous_end = end;
      previous_end_bytes = end_bytes;
      if (end >= max_seq_length) break;
    }
    return result;
  };
  PrefixTokenCounter counter(tokenizer, text, after_eos);
  auto masked = spans([&](size_t bytes) { return counter.count(bytes); });
  if (!counter.verify(full)) {  // the tokenizer does not split as assumed: encode each prefix
    masked = spans([&](size_t bytes) {
      return static_cast<int64_t>(
          tokenizer.encode(std::string_view(text).substr(0, bytes), true).size());
    });
  }

  const bool cut = static_cast<int64_t>(full.size()) > max_seq_length;
  if (truncated != nullptr) *truncated = cut;
  out.input_ids.assign(
      full.begin(), cut ? full.begin() + static_cast<std::ptrdiff_t>(max_seq_length) : full.end());
  out.labels = out.input_ids;
  for (const auto& [start, end] : masked) mask(out.labels, start, end);
}

// encode_with_prompt_completion_format.
void encode_prompt_completion(std::string_view prompt, std::string_view completion,
                              const Tokenizer& tokenizer, int64_t max_seq_length, SftExample& out,
                              bool* truncated) {
  const auto is_joint_space = [](char c) { return c == ' ' || c == '\n' || c == '\t'; };
  const bool spaced = (!prompt.empty() && is_joint_space(prompt.back())) ||
                      (!completion.empty() && is_joint_space(completion.front()));
  std::string text;
  append(text, prompt, spaced ? "" : " ", completion, tokenizer.id_to_piece(tokenizer.eos_id()));
  out.input_ids = encode_truncated(tokenizer, text, max_seq_length, truncated);
  out.labels = out.input_ids;
  mask(out.labels, 0, truncated_length(tokenizer, prompt, max_seq_length));
}

// Pre-training text: BOS + text + EOS, every token a target.
void encode_text(std::string_view text, const Tokenizer& tokenizer, int64_t max_seq_length,
                 SftExample& out, bool* truncated) {
  out.input_ids = tokenizer.encode(text, /*add_bos=*/true);
  out.input_ids.push_back(tokenizer.eos_id());
  const bool cut = static_cast<int64_t>(out.input_ids.size()) > max_seq_length;
  if (cut) out.input_ids.resize(static_cast<size_t>(max_seq_length));
  if (truncated != nullptr) *truncated = cut;
  out.labels = out.input_ids;
}

}  // namespace

bool encode_sft_row(const Json& row, const Tokenizer& tokenizer, int64_t max_seq_length,
                    const std::string& where, SftExample& out, bool* truncated) {
  TULU_CHECK(max_seq_length >= 1, "max_seq_length must be at least 1, got ", max_seq_length);
  TULU_CHECK(row.is_object(), where, ": expected a JSON object, got ", json_preview(row));
  if (const Json* messages = find_field(row, "messages")) {
    encode_messages(parse_messages(*messages, where), tokenizer, max_seq_length, out, truncated);
  } else if (find_field(row, "prompt") != nullptr || find_field(row, "completion") != nullptr) {
    const Json* prompt = find_field(row, "prompt");
    const Json* completion = find_field(row, "completion");
    TULU_CHECK(prompt != nullptr, where,
               ": field prompt: missing (a row with a completion needs a prompt)");
    TULU_CHECK(completion != nullptr, where,
               ": field completion: missing (a row with a prompt needs a completion)");
    encode_prompt_completion(string_field(*prompt, where, "prompt"),
                             string_field(*completion, where, "completion"), tokenizer,
                             max_seq_length, out, truncated);
  } else if (const Json* text = find_field(row, "text")) {
    encode_text(string_field(*text, where, "text"), tokenizer, max_seq_length, out, truncated);
  } else {
    fail(where, ": the row has none of the fields messages, prompt/completion, text");
  }
  return std::any_of(out.labels.begin(), out.labels.end(),
                     [](int label) { return label != kIgnoreIndex; });
}

SftDataset load_sft_jsonl(const std::string& path, const Tokenizer& tokenizer,
                          const SftDataOptions& options) {
  TULU_CHECK(options.max_seq_length >= 1, "max_seq_length must be at least 1, got ",
             options.max_seq_length);
  ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());
  SftDataset dataset;
  const JsonlReadCounts counts = read_jsonl_rows<SftExample>(
      path, pool, options.skip_bad_rows,
      [&](const Json& row, const std::string& where, int64_t line, SftExample& out,
          bool& truncated) {
        out.line = line;
        return encode_sft_row(row, tokenizer, options.max_seq_length, where, out, &truncated);
      },
      [&](SftExample&& example) { dataset.examples.push_back(std::move(example)); });
  dataset.rows_read = counts.rows_read;
  dataset.dropped_no_labels = counts.dropped;
  dataset.truncated = counts.truncated;
  dataset.bad_rows = counts.bad_rows;
  dataset.first_bad_row = counts.first_bad_row;
  TULU_CHECK(!dataset.examples.empty(), path, ": no usable row: ", dataset.rows_read, " read, ",
             dataset.dropped_no_labels,
             " without a target token after truncation at max_seq_length ", options.max_seq_length,
             ", ", dataset.bad_rows, " bad",
             dataset.bad_rows > 0 ? str_cat(" (first: ", dataset.first_bad_row, ")") : "");
  return dataset;
}

}  // namespace tulu

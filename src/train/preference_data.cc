// DPO preference rows → prompt / chosen / rejected token ids. The split follows TRL's
// build_tokenized_answer and open-instruct's SFT mask: the completion is the full
// tokenization minus as many leading tokens as the prompt alone has. See preference_data.h.
#include "train/preference_data.h"

#include <algorithm>
#include <string_view>

#include "core/error.h"
#include "core/thread_pool.h"
#include "train/jsonl_rows.h"
#include "train/tulu_messages.h"

namespace tulu {

namespace {

constexpr std::string_view kAssistantTag = "<|assistant|>\n";

bool same_message(const Message& a, const Message& b) {
  return a.role == b.role && a.content == b.content;
}

// The prompt messages and the two final replies of one row.
struct ParsedPair {
  std::vector<Message> prompt;
  std::string_view chosen;
  std::string_view rejected;
};

ParsedPair parse_conversations(const Json& row, const Json& chosen, const Json& rejected,
                               const std::string& where) {
  std::vector<Message> chosen_messages = parse_messages(chosen, where, "chosen");
  const std::vector<Message> rejected_messages = parse_messages(rejected, where, "rejected");
  const size_t last = chosen_messages.size() - 1;
  TULU_CHECK(chosen_messages.back().role == Role::Assistant, where, ": field chosen[", last,
             "].role: the last message must be the assistant's reply");
  TULU_CHECK(rejected_messages.back().role == Role::Assistant, where, ": field rejected[",
             rejected_messages.size() - 1,
             "].role: the last message must be the assistant's reply");
  TULU_CHECK(chosen_messages.size() == rejected_messages.size(), where,
             ": fields chosen and rejected: the prompt messages must be the same, but chosen has ",
             chosen_messages.size(), " messages and rejected ", rejected_messages.size());
  for (size_t i = 0; i < last; ++i) {
    TULU_CHECK(same_message(chosen_messages[i], rejected_messages[i]), where, ": field rejected[",
               i, "]: differs from chosen[", i, "] (the prompt messages must be the same)");
  }
  ParsedPair parsed;
  parsed.chosen = chosen_messages.back().content;
  parsed.rejected = rejected_messages.back().content;
  chosen_messages.pop_back();
  parsed.prompt = std::move(chosen_messages);
  if (parsed.prompt.empty()) {
    // ultrafeedback-style rows that keep the prompt only in "prompt".
    const Json* prompt = find_field(row, "prompt");
    TULU_CHECK(prompt != nullptr, where,
               ": field chosen: no message before the final assistant reply and no prompt field");
    parsed.prompt.push_back({Role::User, string_field(*prompt, where, "prompt")});
  }
  return parsed;
}

ParsedPair parse_row(const Json& row, const std::string& where) {
  TULU_CHECK(row.is_object(), where, ": expected a JSON object, got ", json_preview(row));
  const Json* chosen = find_field(row, "chosen");
  const Json* rejected = find_field(row, "rejected");
  TULU_CHECK(chosen != nullptr, where, ": field chosen: missing");
  TULU_CHECK(rejected != nullptr, where, ": field rejected: missing");
  if (chosen->is_array()) {
    if (!rejected->is_array()) {
      field_error(where, "rejected", "an array of messages (as chosen)", *rejected);
    }
    return parse_conversations(row, *chosen, *rejected, where);
  }
  if (!chosen->is_string()) {
    field_error(where, "chosen", "an array of messages or a string", *chosen);
  }
  ParsedPair parsed;
  parsed.chosen = string_field(*chosen, where, "chosen");
  parsed.rejected = string_field(*rejected, where, "rejected");
  const Json* prompt = find_field(row, "prompt");
  TULU_CHECK(prompt != nullptr, where, ": field prompt: missing (string chosen/rejected need it)");
  parsed.prompt.push_back({Role::User, string_field(*prompt, where, "prompt")});
  return parsed;
}

// The completion of one side: its full text's tokens after the prompt's first
// `prompt_tokens` (when the full tokenization does not begin with the prompt's tokens —
// a merge across the boundary, which the Tulu format's "\n" before stripped content makes
// impossible for the Llama tokenizers — this is still open-instruct's mask: the first
// len(tokenize(prompt)) tokens are the prompt's).
std::vector<int> completion_ids(const Tokenizer& tokenizer, const std::string& prompt_text,
                                std::string_view reply, std::string_view eos,
                                size_t prompt_tokens) {
  std::string text = prompt_text;
  text.append(utf8::python_strip(reply)).append(eos);
  const std::vector<int> full = tokenizer.encode(text, /*add_bos=*/true);
  if (full.size() <= prompt_tokens) return {};
  return {full.begin() + static_cast<std::ptrdiff_t>(prompt_tokens), full.end()};
}

void check_options(const PreferenceDataOptions& options) {
  TULU_CHECK(options.max_length >= 1, "max_length must be at least 1, got ", options.max_length);
  TULU_CHECK(options.max_prompt_length == -1 || options.max_prompt_length >= 1,
             "max_prompt_length must be -1 (no separate limit) or at least 1, got ",
             options.max_prompt_length);
}

}  // namespace

bool encode_preference_row(const Json& row, const Tokenizer& tokenizer,
                           const PreferenceDataOptions& options, const std::string& where,
                           PreferencePair& out, bool* truncated) {
  check_options(options);
  const ParsedPair parsed = parse_row(row, where);
  const std::string eos = tokenizer.id_to_piece(tokenizer.eos_id());
  std::string prompt_text;
  for (const Message& m : parsed.prompt) append_tulu_message(prompt_text, m, eos);
  prompt_text.append(kAssistantTag);

  out.prompt_ids = tokenizer.encode(prompt_text, /*add_bos=*/true);
  const size_t prompt_tokens = out.prompt_ids.size();
  out.chosen_ids = completion_ids(tokenizer, prompt_text, parsed.chosen, eos, prompt_tokens);
  out.rejected_ids = completion_ids(tokenizer, prompt_text, parsed.rejected, eos, prompt_tokens);

  // Truncation, TRL's order with truncation_mode "keep_end": the prompt first (its end kept,
  // BOS kept in front), then the completions (their start kept).
  bool cut = false;
  const auto longer = [&] {
    return static_cast<int64_t>(std::max(out.chosen_ids.size(), out.rejected_ids.size()));
  };
  const auto prompt_length = [&] { return static_cast<int64_t>(out.prompt_ids.size()); };
  if (prompt_length() + longer() > options.max_length && options.max_prompt_length != -1 &&
      prompt_length() > options.max_prompt_length) {
    const bool has_bos = !out.prompt_ids.empty() && out.prompt_ids[0] == tokenizer.bos_id();
    const auto keep = static_cast<size_t>(options.max_prompt_length - (has_bos ? 1 : 0));
    out.prompt_ids.erase(out.prompt_ids.begin() + (has_bos ? 1 : 0),
                         out.prompt_ids.end() - static_cast<std::ptrdiff_t>(keep));
    cut = true;
  }
  if (prompt_length() + longer() > options.max_length) {
    const auto room =
        static_cast<size_t>(std::max<int64_t>(0, options.max_length - prompt_length()));
    if (out.chosen_ids.size() > room) out.chosen_ids.resize(room);
    if (out.rejected_ids.size() > room) out.rejected_ids.resize(room);
    cut = true;
  }
  if (truncated != nullptr) *truncated = cut;
  return !out.chosen_ids.empty() && !out.rejected_ids.empty();
}

PreferenceDataset load_preference_jsonl(const std::string& path, const Tokenizer& tokenizer,
                                        const PreferenceDataOptions& options) {
  check_options(options);
  ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());
  PreferenceDataset dataset;
  const JsonlReadCounts counts = read_jsonl_rows<PreferencePair>(
      path, pool, options.skip_bad_rows,
      [&](const Json& row, const std::string& where, int64_t line, PreferencePair& out,
          bool& truncated) {
        out.line = line;
        return encode_preference_row(row, tokenizer, options, where, out, &truncated);
      },
      [&](PreferencePair&& pair) { dataset.pairs.push_back(std::move(pair)); });
  dataset.rows_read = counts.rows_read;
  dataset.dropped_empty = counts.dropped;
  dataset.truncated = counts.truncated;
  dataset.bad_rows = counts.bad_rows;
  dataset.first_bad_row = counts.first_bad_row;
  TULU_CHECK(!dataset.pairs.empty(), path, ": no usable pair: ", dataset.rows_read, " read, ",
             dataset.dropped_empty, " with an empty completion after truncation at max_length ",
             options.max_length, ", ", dataset.bad_rows, " bad",
             dataset.bad_rows > 0 ? str_cat(" (first: ", dataset.first_bad_row, ")") : "");
  return dataset;
}

}  // namespace tulu

// SFT data encoding on the real Llama 2 tokenizer: where the masks fall (checked through
// independent tokenizations and decodes, not by re-running the same code), truncation and
// dropping, the prompt/completion joint, text rows, and every kind of bad row with its
// file:line:field message. The token-for-token comparison with a transcription of
// open-instruct is tests/py/test_sft_data_reference.py.
#include "train/sft_data.h"

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "jsonl_file_fixture.h"

namespace tulu {
namespace {

using ::testing::HasSubstr;

using testing_util::encode;
using testing_util::llama;

struct Encoded {
  SftExample example;
  bool kept = false;
  bool truncated = false;
};

Encoded encode_row(const std::string& json, int64_t max_seq_length = 8192) {
  Encoded e;
  e.kept =
      encode_sft_row(Json::parse(json), llama(), max_seq_length, "row", e.example, &e.truncated);
  EXPECT_EQ(e.example.input_ids.size(), e.example.labels.size());
  return e;
}

// The [begin, end) runs of positions whose label is not −100.
std::vector<std::pair<size_t, size_t>> target_spans(const SftExample& example) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = 0; i < example.labels.size(); ++i) {
    if (example.labels[i] == -100) continue;
    EXPECT_EQ(example.labels[i], example.input_ids[i]) << "position " << i;
    if (spans.empty() || spans.back().second != i) spans.emplace_back(i, i);
    spans.back().second = i + 1;
  }
  return spans;
}

std::string decode_span(const SftExample& example, std::pair<size_t, size_t> span) {
  const std::vector<int> ids(example.input_ids.begin() + static_cast<std::ptrdiff_t>(span.first),
                             example.input_ids.begin() + static_cast<std::ptrdiff_t>(span.second));
  return llama().decode(ids, false);
}

TEST(SftData, SingleTurnMasksEverythingButTheAnswerAndEos) {
  const Encoded e = encode_row(
      R"({"messages": [{"role": "user", "content": "What is 2+2?"},
                       {"role": "assistant", "content": "It is 4."}], "id": "x"})");
  ASSERT_TRUE(e.kept);
  EXPECT_FALSE(e.truncated);
  EXPECT_EQ(e.example.input_ids, encode("<|user|>\nWhat is 2+2?\n<|assistant|>\nIt is 4.</s>"));
  const auto spans = target_spans(e.example);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].first, encode("<|user|>\nWhat is 2+2?\n<|assistant|>\n").size());
  EXPECT_EQ(spans[0].second, e.example.input_ids.size());
  EXPECT_EQ(e.example.input_ids.back(), llama().eos_id());
  EXPECT_EQ(decode_span(e.example, spans[0]), "It is 4.</s>");
}

TEST(SftData, MultiTurnWithSystemStripsContentAndMasksEachPrompt) {
  const Encoded e = encode_row(R"({"messages": [
      {"role": "system", "content": "  Be brief. \n"},
      {"role": "user", "content": "\tHi\n\n"},
      {"role": "assistant", "content": " Hello! "},
      {"role": "user", "content": "Bye"},
      {"role": "assistant", "content": "Goodbye.\n"}]})");
  ASSERT_TRUE(e.kept);
  const std::string turn1 = "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n";
  const std::string turn2 = "Hello!</s>\n<|user|>\nBye\n<|assistant|>\n";
  EXPECT_EQ(e.example.input_ids, encode(turn1 + turn2 + "Goodbye.</s>"));
  const auto spans = target_spans(e.example);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].first, encode(turn1).size());
  // As in open-instruct, the next user message's mask starts after the rendered
  // "...</s>\n", so the newline after a non-final answer's EOS is a target too.
  EXPECT_EQ(spans[0].second, encode(turn1 + "Hello!</s>\n").size());
  EXPECT_EQ(e.example.input_ids[spans[0].second - 3], llama().eos_id());
  EXPECT_EQ(spans[1].first, encode(turn1 + turn2).size());
  EXPECT_EQ(spans[1].second, e.example.input_ids.size());
  EXPECT_EQ(decode_span(e.example, {spans[0].first, spans[0].second - 3}), "Hello!");
  EXPECT_EQ(decode_span(e.example, spans[1]), "Goodbye.</s>");
}

TEST(SftData, TrailingUserTurnIsMaskedAndEmptyAnswerKeepsItsEos) {
  const Encoded e = encode_row(R"({"messages": [
      {"role": "user", "content": "a"}, {"role": "assistant", "content": "   "},
      {"role": "user", "content": "b"}]})");
  ASSERT_TRUE(e.kept);
  EXPECT_EQ(e.example.input_ids, encode("<|user|>\na\n<|assistant|>\n</s>\n<|user|>\nb"));
  const auto spans = target_spans(e.example);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].first, encode("<|user|>\na\n<|assistant|>\n").size());
  EXPECT_EQ(spans[0].second, encode("<|user|>\na\n<|assistant|>\n</s>\n").size());
  EXPECT_EQ(e.example.input_ids[spans[0].first], llama().eos_id());
}

TEST(SftData, AssistantFirstIsNotMaskedAtAll) {
  // open-instruct masks only non-assistant messages: a leading assistant turn (tag
  // included) is all target, BOS too.
  const Encoded e = encode_row(R"({"messages": [{"role": "assistant", "content": "x"}]})");
  ASSERT_TRUE(e.kept);
  EXPECT_EQ(e.example.labels, e.example.input_ids);
}

TEST(SftData, UserOnlyRowsAreDropped) {
  const Encoded e = encode_row(R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_FALSE(e.kept);
}

TEST(SftData, TruncationInsideTheAnswerKeepsAPartialTarget) {
  const std::string row = R"({"messages": [{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "one two three four five six seven"}]})";
  const size_t prompt = encode("<|user|>\nHi\n<|assistant|>\n").size();
  const Encoded full = encode_row(row);
  const Encoded cut = encode_row(row, static_cast<int64_t>(prompt) + 3);
  ASSERT_TRUE(cut.kept);
  EXPECT_TRUE(cut.truncated);
  EXPECT_FALSE(full.truncated);
  ASSERT_EQ(cut.example.input_ids.size(), prompt + 3);
  EXPECT_TRUE(std::equal(cut.example.input_ids.begin(), cut.example.input_ids.end(),
                         full.example.input_ids.begin()));
  const auto spans = target_spans(cut.example);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0], std::make_pair(prompt, prompt + 3));
  // Cut at the prompt's end or inside it: no target left, the row is dropped.
  EXPECT_FALSE(encode_row(row, static_cast<int64_t>(prompt)).kept);
  EXPECT_FALSE(encode_row(row, 4).kept);
  EXPECT_TRUE(encode_row(row, 4).truncated);
}

TEST(SftData, PromptCompletionJointAndMask) {
  const Encoded joined = encode_row(R"({"prompt": "Q: 2+2?", "completion": "4"})");
  ASSERT_TRUE(joined.kept);
  EXPECT_EQ(joined.example.input_ids, encode("Q: 2+2? 4</s>"));
  const auto spans = target_spans(joined.example);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].first, encode("Q: 2+2?").size());
  EXPECT_EQ(spans[0].second, joined.example.input_ids.size());
  // Whitespace on either side of the joint: no space added; nothing is stripped.
  EXPECT_EQ(encode_row(R"({"prompt": "Q:\n", "completion": "A "})").example.input_ids,
            encode("Q:\nA </s>"));
  EXPECT_EQ(encode_row(R"({"prompt": "Q:", "completion": "\tA"})").example.input_ids,
            encode("Q:\tA</s>"));
  // A prompt that fills max_seq_length leaves no target.
  EXPECT_FALSE(encode_row(R"({"prompt": "a b c d e f g h", "completion": "i"})", 5).kept);
}

TEST(SftData, TextRowsAreAllTarget) {
  const Encoded e = encode_row(R"({"text": "Plain text, no chat."})");
  ASSERT_TRUE(e.kept);
  std::vector<int> want = encode("Plain text, no chat.");
  want.push_back(llama().eos_id());
  EXPECT_EQ(e.example.input_ids, want);
  EXPECT_EQ(e.example.labels, want);
  const Encoded cut = encode_row(R"({"text": "Plain text, no chat."})", 3);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(cut.example.input_ids, std::vector<int>(want.begin(), want.begin() + 3));
}

TEST(SftData, MessagesWinOverOtherFieldsAndNullCountsAsAbsent) {
  const Encoded e = encode_row(
      R"({"text": "ignored", "messages": [{"role": "user", "content": "a"},
          {"role": "assistant", "content": "b"}]})");
  EXPECT_EQ(e.example.input_ids, encode("<|user|>\na\n<|assistant|>\nb</s>"));
  const Encoded t = encode_row(R"({"messages": null, "text": "t"})");
  EXPECT_EQ(t.example.labels, t.example.input_ids);
}

std::string row_error(const std::string& json) {
  SftExample out;
  try {
    encode_sft_row(Json::parse(json), llama(), 64, "f.jsonl:3", out, nullptr);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SftData, BadRowsNameTheField) {
  EXPECT_EQ(row_error(R"([1, 2])"), "f.jsonl:3: expected a JSON object, got [1,2]");
  EXPECT_EQ(row_error(R"({"id": 1})"),
            "f.jsonl:3: the row has none of the fields messages, prompt/completion, text");
  EXPECT_THAT(row_error(R"({"messages": {}})"),
              HasSubstr("f.jsonl:3: field messages: expected an array"));
  EXPECT_THAT(row_error(R"({"messages": []})"),
              HasSubstr("f.jsonl:3: field messages: expected at least one message"));
  EXPECT_THAT(row_error(R"({"messages": ["hi"]})"),
              HasSubstr("f.jsonl:3: field messages[0]: expected an object"));
  const std::string two_ok =
      R"({"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, )";
  EXPECT_EQ(row_error(R"({"messages": [)" + two_ok + R"({"role": 5, "content": "c"}]})"),
            "f.jsonl:3: field messages[2].role: expected a string, got 5");
  EXPECT_EQ(row_error(R"({"messages": [)" + two_ok + R"({"role": "bot", "content": "c"}]})"),
            "f.jsonl:3: field messages[2].role: expected \"system\", \"user\" or "
            "\"assistant\", got \"bot\"");
  EXPECT_EQ(row_error(R"({"messages": [)" + two_ok + R"({"content": "c"}]})"),
            "f.jsonl:3: field messages[2].role: missing");
  EXPECT_EQ(row_error(R"({"messages": [{"role": "user", "content": ["a"]}]})"),
            "f.jsonl:3: field messages[0].content: expected a string, got [\"a\"]");
  EXPECT_EQ(row_error(R"({"messages": [{"role": "user"}]})"),
            "f.jsonl:3: field messages[0].content: missing");
  EXPECT_THAT(row_error(R"({"prompt": "p"})"), HasSubstr("f.jsonl:3: field completion: missing"));
  EXPECT_THAT(row_error(R"({"completion": "c"})"), HasSubstr("f.jsonl:3: field prompt: missing"));
  EXPECT_EQ(row_error(R"({"prompt": 1, "completion": "c"})"),
            "f.jsonl:3: field prompt: expected a string, got 1");
  EXPECT_EQ(row_error(R"({"text": false})"), "f.jsonl:3: field text: expected a string, got false");
  // Long and deep values are cut short in the message (and never recursed into deeply).
  EXPECT_EQ(row_error(R"({"text": {"a": [1, [2, [3, [4]]]]}})"),
            "f.jsonl:3: field text: expected a string, got {\"a\":[1,[2,[...]]]}");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(row_error(R"({"text": )" + deep + "}"),
            "f.jsonl:3: field text: expected a string, got [[[[...]]]]");
  const std::string long_value = R"({"text": [")" + std::string(54, 'x') + "\xC3\xA9\xC3\xA9\"]}";
  EXPECT_EQ(row_error(long_value), "f.jsonl:3: field text: expected a string, got [\"" +
                                       std::string(54, 'x') + "...");  // not inside the é
}

class SftFile : public testing_util::JsonlFileTest {
 protected:
  SftFile() : JsonlFileTest("sft_data") {}
  std::string load_error(const std::string& path, SftDataOptions options = {}) {
    return error_of([&] { load_sft_jsonl(path, llama(), options); });
  }
};

const std::string kGood =
    R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})";

TEST_F(SftFile, CountsAndLineNumbers) {
  const std::string long_words(200, 'w');
  const std::string path =
      write("d.jsonl", kGood + "\n\n   \r\n" + R"({"messages": [{"role": "user", "content": ")" +
                           long_words + R"("}]})" + "\n" + R"({"text": ")" + long_words + R"("})" +
                           "\r\n" + R"({"prompt": "p", "completion": "c"})");  // no final newline
  SftDataOptions options;
  options.max_seq_length = static_cast<int64_t>(encode("<|user|>\na\n<|assistant|>\nb</s>").size());
  const SftDataset d = load_sft_jsonl(path, llama(), options);
  EXPECT_EQ(d.rows_read, 4);
  EXPECT_EQ(d.dropped_no_labels, 1);
  EXPECT_EQ(d.truncated, 2);  // the user-only row and the text row exceed max_seq_length
  EXPECT_EQ(d.bad_rows, 0);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[0].line, 1);
  EXPECT_EQ(d.examples[1].line, 5);
  EXPECT_EQ(d.examples[2].line, 6);
  EXPECT_EQ(static_cast<int64_t>(d.examples[1].input_ids.size()), options.max_seq_length);
}

TEST_F(SftFile, BadLinesAreErrorsOrCountedWithSkip) {
  const std::string path =
      write("bad.jsonl", kGood + "\n" + R"({"messages": [{"role": "user", "content": 7}]})" + "\n" +
                             "{not json\n" + "\"just a string\"\n" + "{\"text\": \"caf\xC3\"}\n" +
                             "{\"text\": \"ok\"} trailing\n" + kGood + "\n");
  EXPECT_EQ(load_error(path), path + ":2: field messages[0].content: expected a string, got 7");
  SftDataOptions skip;
  skip.skip_bad_rows = true;
  const SftDataset d = load_sft_jsonl(path, llama(), skip);
  EXPECT_EQ(d.rows_read, 7);
  EXPECT_EQ(d.bad_rows, 5);
  EXPECT_EQ(d.first_bad_row, path + ":2: field messages[0].content: expected a string, got 7");
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[1].line, 7);

  // Each bad kind alone names its line.
  EXPECT_THAT(load_error(write("j.jsonl", kGood + "\n{not json\n")),
              HasSubstr("j.jsonl:2: invalid JSON"));
  EXPECT_THAT(load_error(write("u.jsonl", "\n" + kGood + "\n{\"text\": \"caf\xC3\"}\n")),
              HasSubstr("u.jsonl:3: invalid UTF-8 at byte 14"));
  EXPECT_THAT(load_error(write("u2.jsonl", "{\"text\": \"\xED\xA0\x80\"}\n")),
              HasSubstr("u2.jsonl:1: invalid UTF-8"));
  EXPECT_THAT(load_error(write("s.jsonl", "{\"text\": \"\\ud800\"}\n")),
              HasSubstr("s.jsonl:1: invalid JSON"));
  EXPECT_THAT(load_error(write("o.jsonl", "\"just a string\"\n")),
              HasSubstr("o.jsonl:1: expected a JSON object"));
}

TEST_F(SftFile, EmptyOrUselessFilesAreErrors) {
  EXPECT_THAT(load_error(write("empty.jsonl", "")), HasSubstr("empty.jsonl: no rows"));
  EXPECT_THAT(load_error(write("blank.jsonl", "\n \n\t\n")), HasSubstr("blank.jsonl: no rows"));
  const std::string prompts = write("p.jsonl", R"({"messages": [{"role": "user", "content": "x"}]})"
                                               "\n");
  EXPECT_THAT(load_error(prompts), HasSubstr("p.jsonl: no usable row: 1 read, 1 without a target"));
  SftDataOptions skip;
  skip.skip_bad_rows = true;
  EXPECT_THAT(load_error(write("allbad.jsonl", "1\n2\n"), skip),
              HasSubstr("no usable row: 2 read, 0 without a target token after truncation at "
                        "max_seq_length 8192, 2 bad (first: "));
  EXPECT_THAT(load_error((dir_ / "missing.jsonl").string()),
              HasSubstr("missing.jsonl: cannot open"));
  SftDataOptions zero;
  zero.max_seq_length = 0;
  EXPECT_THAT(load_error(write("z.jsonl", kGood), zero), HasSubstr("max_seq_length"));
}

TEST_F(SftFile, ThreadCountDoesNotChangeTheResult) {
  // Enough rows for several chunks and a mix of kept, dropped, truncated and bad rows.
  std::string content;
  for (int i = 0; i < 5000; ++i) {
    switch (i % 5) {
      case 0:
        content += kGood;
        break;
      case 1:
        content += R"({"text": "row )" + std::to_string(i) + R"( with some words"})";
        break;
      case 2:
        content += R"({"messages": [{"role": "user", "content": "q"}]})";
        break;
      case 3:
        content += R"({"prompt": "p )" + std::to_string(i) + R"(", "completion": "c"})";
        break;
      default:
        content += i % 1000 == 4 ? "bad" : kGood;
        break;
    }
    content += "\n";
  }
  const std::string path = write("many.jsonl", content);
  SftDataOptions one;
  one.threads = 1;
  one.skip_bad_rows = true;
  one.max_seq_length = 40;
  SftDataOptions three = one;
  three.threads = 3;
  const SftDataset a = load_sft_jsonl(path, llama(), one);
  const SftDataset b = load_sft_jsonl(path, llama(), three);
  EXPECT_EQ(a.rows_read, 5000);
  EXPECT_EQ(a.bad_rows, 5);
  EXPECT_EQ(a.dropped_no_labels, 1000);
  EXPECT_THAT(a.first_bad_row, HasSubstr(":5: invalid JSON"));
  EXPECT_EQ(a.rows_read, b.rows_read);
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_EQ(a.bad_rows, b.bad_rows);
  EXPECT_EQ(a.first_bad_row, b.first_bad_row);
  ASSERT_EQ(a.examples.size(), b.examples.size());
  for (size_t i = 0; i < a.examples.size(); ++i) {
    EXPECT_EQ(a.examples[i].line, b.examples[i].line);
    EXPECT_EQ(a.examples[i].input_ids, b.examples[i].input_ids);
    EXPECT_EQ(a.examples[i].labels, b.examples[i].labels);
  }
}

}  // namespace
}  // namespace tulu

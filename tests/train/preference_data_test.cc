// DPO preference data on the real Llama 2 tokenizer: the prompt / completion split checked
// through independent tokenizations and decodes, both row forms giving the same ids, the
// truncation rule (prompt end kept behind BOS, completion starts kept, empty → dropped),
// file handling, and bad rows with their file:line:field messages. The token-for-token
// comparison with a TRL / open-instruct transcription is tests/py/test_dpo_data_reference.py.
#include "train/preference_data.h"

#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "jsonl_file_fixture.h"

namespace tulu {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using testing_util::encode;
using testing_util::llama;

std::string decode(const std::vector<int>& ids) {
  return llama().decode(ids, false);
}

std::vector<int> concat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Encoded {
  PreferencePair pair;
  bool kept = false;
  bool truncated = false;
};

Encoded encode_row(const std::string& json, PreferenceDataOptions options = {}) {
  Encoded e;
  e.kept = encode_preference_row(Json::parse(json), llama(), options, "row", e.pair, &e.truncated);
  return e;
}

std::string row_error(const std::string& json) {
  try {
    encode_row(json);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string kUltra =
    R"({"prompt": "What is 2+2?", "prompt_id": "abc", "score_chosen": 9.5, "score_rejected": 1,
        "messages": [{"role": "user", "content": "ignored"}],
        "chosen": [{"role": "user", "content": " What is 2+2? "},
                   {"role": "assistant", "content": "\n2 + 2 = 4. "}],
        "rejected": [{"role": "user", "content": " What is 2+2? "},
                     {"role": "assistant", "content": "Five."}]})";

TEST(PreferenceRow, SplitsPromptAndCompletionsAsTheFullTokenization) {
  const Encoded e = encode_row(kUltra);
  ASSERT_TRUE(e.kept);
  EXPECT_FALSE(e.truncated);
  const std::string prompt = "<|user|>\nWhat is 2+2?\n<|assistant|>\n";
  EXPECT_EQ(e.pair.prompt_ids, encode(prompt));
  EXPECT_EQ(e.pair.prompt_ids.front(), llama().bos_id());
  EXPECT_EQ(concat(e.pair.prompt_ids, e.pair.chosen_ids), encode(prompt + "2 + 2 = 4.</s>"));
  EXPECT_EQ(concat(e.pair.prompt_ids, e.pair.rejected_ids), encode(prompt + "Five.</s>"));
  EXPECT_EQ(e.pair.chosen_ids.back(), llama().eos_id());
  EXPECT_EQ(e.pair.rejected_ids.back(), llama().eos_id());
  EXPECT_EQ(decode(e.pair.chosen_ids), "2 + 2 = 4.</s>");
  EXPECT_EQ(decode(e.pair.rejected_ids), "Five.</s>");
}

TEST(PreferenceRow, PlainAndReplyOnlyRowsAreOneUserTurn) {
  const Encoded ultra = encode_row(kUltra);
  const Encoded plain =
      encode_row(R"({"prompt": " What is 2+2? ", "chosen": "\n2 + 2 = 4. ", "rejected": "Five."})");
  const Encoded reply_only = encode_row(
      R"({"prompt": "What is 2+2?", "chosen": [{"role": "assistant", "content": "2 + 2 = 4."}],
          "rejected": [{"role": "assistant", "content": "Five."}]})");
  for (const Encoded* e : {&plain, &reply_only}) {
    ASSERT_TRUE(e->kept);
    EXPECT_EQ(e->pair.prompt_ids, ultra.pair.prompt_ids);
    EXPECT_EQ(e->pair.chosen_ids, ultra.pair.chosen_ids);
    EXPECT_EQ(e->pair.rejected_ids, ultra.pair.rejected_ids);
  }
}

TEST(PreferenceRow, MultiTurnPromptWithSystemTurn) {
  const Encoded e = encode_row(
      R"({"chosen": [{"role": "system", "content": "Be terse."},
                     {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello."},
                     {"role": "user", "content": "Cat in German?"},
                     {"role": "assistant", "content": "Katze"}],
          "rejected": [{"role": "system", "content": "Be terse."},
                       {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello."},
                       {"role": "user", "content": "Cat in German?"},
                       {"role": "assistant", "content": "Hund"}]})");
  ASSERT_TRUE(e.kept);
  EXPECT_EQ(decode(e.pair.prompt_ids),
            "<s> <|system|>\nBe terse.\n<|user|>\nHi\n<|assistant|>\nHello.</s> \n<|user|>\n"
            "Cat in German?\n<|assistant|>\n");
  EXPECT_EQ(decode(e.pair.chosen_ids), "Katze</s>");
  EXPECT_EQ(decode(e.pair.rejected_ids), "Hund</s>");
}

TEST(PreferenceRow, IdenticalAndEmptyRepliesAreKept) {
  const Encoded same = encode_row(R"({"prompt": "p", "chosen": "ok", "rejected": "ok"})");
  ASSERT_TRUE(same.kept);
  EXPECT_EQ(same.pair.chosen_ids, same.pair.rejected_ids);
  const Encoded empty = encode_row(R"({"prompt": "p", "chosen": "", "rejected": "  \n"})");
  ASSERT_TRUE(empty.kept);
  EXPECT_THAT(empty.pair.chosen_ids, ElementsAre(llama().eos_id()));
  EXPECT_THAT(empty.pair.rejected_ids, ElementsAre(llama().eos_id()));
}

TEST(PreferenceRow, TruncationKeepsPromptEndAndCompletionStart) {
  const std::string row =
      R"({"prompt": "one two three four five six seven eight", "chosen": "alpha beta gamma delta",
          "rejected": "x"})";
  const Encoded full = encode_row(row);
  const auto prompt_length = static_cast<int64_t>(full.pair.prompt_ids.size());
  const auto chosen_length = static_cast<int64_t>(full.pair.chosen_ids.size());
  ASSERT_GT(prompt_length, 12);
  ASSERT_GT(chosen_length, 4);

  PreferenceDataOptions fits;
  fits.max_length = prompt_length + chosen_length;
  fits.max_prompt_length = 4;  // not applied: nothing is too long
  const Encoded untouched = encode_row(row, fits);
  EXPECT_FALSE(untouched.truncated);
  EXPECT_EQ(untouched.pair.prompt_ids, full.pair.prompt_ids);

  // Prompt cut to 6 (BOS + its last 5 tokens); the completions then fit.
  PreferenceDataOptions prompt_cut;
  prompt_cut.max_length = 6 + chosen_length;
  prompt_cut.max_prompt_length = 6;
  const Encoded a = encode_row(row, prompt_cut);
  ASSERT_TRUE(a.kept);
  EXPECT_TRUE(a.truncated);
  std::vector<int> want{llama().bos_id()};
  want.insert(want.end(), full.pair.prompt_ids.end() - 5, full.pair.prompt_ids.end());
  EXPECT_EQ(a.pair.prompt_ids, want);
  EXPECT_EQ(a.pair.chosen_ids, full.pair.chosen_ids);
  EXPECT_EQ(a.pair.rejected_ids, full.pair.rejected_ids);

  // Then the completions: cut to max_length − prompt length, their start kept; the short
  // rejected untouched.
  PreferenceDataOptions both = prompt_cut;
  both.max_length = 6 + 2;
  const Encoded b = encode_row(row, both);
  ASSERT_TRUE(b.kept);
  EXPECT_EQ(b.pair.prompt_ids, want);
  EXPECT_EQ(b.pair.chosen_ids,
            std::vector<int>(full.pair.chosen_ids.begin(), full.pair.chosen_ids.begin() + 2));
  EXPECT_EQ(b.pair.rejected_ids, full.pair.rejected_ids);

  // Without a prompt limit only the completions are cut; no room at all → dropped.
  PreferenceDataOptions no_prompt_limit;
  no_prompt_limit.max_length = prompt_length + 1;
  const Encoded c = encode_row(row, no_prompt_limit);
  ASSERT_TRUE(c.kept);
  EXPECT_EQ(c.pair.prompt_ids, full.pair.prompt_ids);
  EXPECT_EQ(c.pair.chosen_ids.size(), 1U);
  no_prompt_limit.max_length = prompt_length;
  const Encoded d = encode_row(row, no_prompt_limit);
  EXPECT_FALSE(d.kept);
  EXPECT_TRUE(d.truncated);

  // max_prompt_length 1 keeps only BOS.
  PreferenceDataOptions bos_only;
  bos_only.max_length = 3;
  bos_only.max_prompt_length = 1;
  const Encoded f = encode_row(row, bos_only);
  ASSERT_TRUE(f.kept);
  EXPECT_THAT(f.pair.prompt_ids, ElementsAre(llama().bos_id()));
  EXPECT_EQ(f.pair.chosen_ids.size(), 2U);
}

TEST(PreferenceRow, BadRowsNameTheField) {
  EXPECT_EQ(row_error(R"({"prompt": "p", "rejected": "r"})"), "row: field chosen: missing");
  EXPECT_EQ(row_error(R"({"prompt": "p", "chosen": "c", "rejected": 4})"),
            "row: field rejected: expected a string, got 4");
  EXPECT_EQ(row_error(R"({"chosen": "c", "rejected": "r"})"),
            "row: field prompt: missing (string chosen/rejected need it)");
  EXPECT_EQ(
      row_error(
          R"({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
             "rejected": [{"role": "user", "content": "A"},
                          {"role": "assistant", "content": "c"}]})"),
      "row: field rejected[0]: differs from chosen[0] (the prompt messages must be the same)");
  EXPECT_EQ(
      row_error(
          R"({"chosen": [{"role": "assistant", "content": "b"}, {"role": "user", "content": "a"}],
                    "rejected": [{"role": "assistant", "content": "c"}]})"),
      "row: field chosen[1].role: the last message must be the assistant's reply");
  EXPECT_THAT(row_error(R"({"chosen": [{"role": "assistant", "content": "b"}],
                            "rejected": [{"role": "assistant", "content": "c"}]})"),
              HasSubstr("row: field chosen: no message before the final assistant reply"));
  EXPECT_THAT(
      row_error(R"({"chosen": [{"role": "bot", "content": "b"}], "rejected": []})"),
      HasSubstr("row: field chosen[0].role: expected \"system\", \"user\" or \"assistant\""));
  PreferenceDataOptions zero;
  zero.max_prompt_length = 0;
  EXPECT_THROW(encode_row(kUltra, zero), Error);
}

class PreferenceFile : public testing_util::JsonlFileTest {
 protected:
  PreferenceFile() : JsonlFileTest("preference_data") {}
  std::string load_error(const std::string& path, PreferenceDataOptions options = {}) {
    return error_of([&] { load_preference_jsonl(path, llama(), options); });
  }
};

const std::string kGood = R"({"prompt": "p", "chosen": "good", "rejected": "bad"})";
const std::string kLong =
    R"({"prompt": "p", "chosen": "a much longer answer than fits", "rejected": "bad"})";

TEST_F(PreferenceFile, CountsLineNumbersAndSkipping) {
  const std::string path = write(
      "d.jsonl", kGood + "\n\n  \r\n" + kLong + "\n{\"prompt\": 1}\n" + kGood);  // no final \n
  PreferenceDataOptions options;
  const Encoded good = encode_row(kGood);
  options.max_length = static_cast<int64_t>(good.pair.prompt_ids.size() + 3);
  EXPECT_EQ(load_error(path, options), path + ":5: field chosen: missing");
  options.skip_bad_rows = true;
  const PreferenceDataset d = load_preference_jsonl(path, llama(), options);
  EXPECT_EQ(d.rows_read, 4);
  EXPECT_EQ(d.bad_rows, 1);
  EXPECT_EQ(d.first_bad_row, path + ":5: field chosen: missing");
  EXPECT_EQ(d.truncated, 1);
  EXPECT_EQ(d.dropped_empty, 0);
  ASSERT_EQ(d.pairs.size(), 3U);
  EXPECT_EQ(d.pairs[0].line, 1);
  EXPECT_EQ(d.pairs[1].line, 4);
  EXPECT_EQ(d.pairs[2].line, 6);
  EXPECT_EQ(d.pairs[1].chosen_ids.size(), 3U);
  EXPECT_EQ(d.pairs[2].chosen_ids, good.pair.chosen_ids);

  options.max_length = static_cast<int64_t>(good.pair.prompt_ids.size());
  EXPECT_THAT(load_error(path, options),
              HasSubstr("no usable pair: 4 read, 3 with an empty completion after truncation at "
                        "max_length"));
}

TEST_F(PreferenceFile, ThreadCountDoesNotChangeTheResult) {
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += R"({"prompt": "question )" + std::to_string(i) + R"(", "chosen": ")" +
            std::string(static_cast<size_t>(i % 17), 'y') + R"(", "rejected": "no )" +
            std::to_string(i * 7) + "\"}\n";
  }
  const std::string path = write("many.jsonl", text);
  PreferenceDataOptions one;
  one.threads = 1;
  one.max_length = 20;
  PreferenceDataOptions three = one;
  three.threads = 3;
  const PreferenceDataset a = load_preference_jsonl(path, llama(), one);
  const PreferenceDataset b = load_preference_jsonl(path, llama(), three);
  ASSERT_EQ(a.pairs.size(), b.pairs.size());
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_GT(a.truncated, 0);
  for (size_t i = 0; i < a.pairs.size(); ++i) {
    EXPECT_EQ(a.pairs[i].line, b.pairs[i].line);
    EXPECT_EQ(a.pairs[i].prompt_ids, b.pairs[i].prompt_ids);
    EXPECT_EQ(a.pairs[i].chosen_ids, b.pairs[i].chosen_ids);
    EXPECT_EQ(a.pairs[i].rejected_ids, b.pairs[i].rejected_ids);
  }
}

TEST_F(PreferenceFile, FileErrors) {
  EXPECT_THAT(load_error(write("empty.jsonl", "")), HasSubstr("empty.jsonl: no rows"));
  EXPECT_THAT(load_error((dir_ / "missing.jsonl").string()), HasSubstr("cannot open"));
  EXPECT_THAT(load_error(dir_.string()), HasSubstr("is a directory"));
  EXPECT_THAT(load_error(write("u.jsonl", kGood + "\n{\"prompt\": \"caf\xC3\"}\n")),
              HasSubstr("u.jsonl:2: invalid UTF-8"));
  EXPECT_THAT(load_error(write("j.jsonl", "{oops\n")), HasSubstr("j.jsonl:1: invalid JSON"));
  PreferenceDataOptions zero;
  zero.max_length = 0;
  EXPECT_THAT(load_error(write("z.jsonl", kGood), zero), HasSubstr("max_length"));
}

}  // namespace
}  // namespace tulu

// Broken tokenizer files give tulu::Error naming the file (and field), never a crash:
// truncations of the real files at many offsets, garbage bytes, and tokenizer.json
// variants with unsupported or inconsistent fields.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace tulu {
namespace {

const std::string kLlamaDir = std::string(TULU_SOURCE_DIR) + "/data/llama2-tokenizer";

class BadFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tulu_bad_tokenizer_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Loading must throw tulu::Error whose message names the file.
  template <typename Load>
  void expect_error(Load load, const std::string& path, const std::string& also = "") {
    try {
      load(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      if (!also.empty()) {
        EXPECT_NE(message.find(also), std::string::npos) << message;
      }
    }
  }

  std::filesystem::path dir_;
};

TEST_F(BadFiles, TruncatedTokenizerModel) {
  const std::string bytes = read_text_file(kLlamaDir + "/tokenizer.model");
  std::mt19937 rng(1);
  std::vector<size_t> cuts{
      0, 1, 2, 5, 100, 1000, bytes.size() / 2, bytes.size() - 100, bytes.size() - 1};
  for (int i = 0; i < 20; ++i) cuts.push_back(rng() % bytes.size());
  for (size_t cut : cuts) {
    const std::string path = write("cut.model", bytes.substr(0, cut));
    expect_error([](const std::string& p) { Tokenizer::load_sentencepiece(p); }, path);
  }
}

TEST_F(BadFiles, GarbageTokenizerModel) {
  std::mt19937 rng(2);
  for (int i = 0; i < 20; ++i) {
    std::string garbage(1 + rng() % 5000, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    const std::string path = write("garbage.model", garbage);
    expect_error([](const std::string& p) { Tokenizer::load_sentencepiece(p); }, path);
  }
  expect_error([](const std::string& p) { Tokenizer::load_sentencepiece(p); },
               write("json.model", read_text_file(kLlamaDir + "/tokenizer_config.json")));
}

TEST_F(BadFiles, TruncatedAndGarbageTokenizerJson) {
  const std::string text = read_text_file(kLlamaDir + "/tokenizer.json");
  for (size_t cut : {size_t{0}, size_t{1}, size_t{100}, text.size() / 3, text.size() - 2}) {
    expect_error([](const std::string& p) { Tokenizer::load_json(p); },
                 write("cut.json", text.substr(0, cut)));
  }
  expect_error([](const std::string& p) { Tokenizer::load_json(p); },
               write("g.json", "\x01\x02garbage"));
  expect_error([](const std::string& p) { Tokenizer::load_json(p); },
               write("array.json", "[1, 2]"));
  expect_error([](const std::string& p) { Tokenizer::load_json(p); },
               (dir_ / "missing.json").string());
}

TEST_F(BadFiles, UnsupportedOrInconsistentTokenizerJson) {
  const Json original = read_json_file(kLlamaDir + "/tokenizer.json");
  struct Variant {
    const char* what;
    std::function<void(Json&)> edit;
    const char* field;  // must appear in the message
  };
  const std::vector<Variant> variants{
      {"unigram model", [](Json& j) { j["model"]["type"] = "Unigram"; }, "model.type"},
      {"byte-level pre-tokenizer",
       [](Json& j) {
         j["pre_tokenizer"] = {{"type", "ByteLevel"}};
       },
       "pre_tokenizer"},
      {"NFKC normalizer",
       [](Json& j) {
         j["normalizer"] = {{"type", "NFKC"}};
       },
       "normalizer"},
      {"regex replace",
       [](Json& j) {
         j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", " +"}};
       },
       "normalizer.normalizers[1].pattern"},
      {"other decoder",
       [](Json& j) {
         j["decoder"] = {{"type", "ByteLevel"}};
       },
       "decoder"},
      {"no decoder", [](Json& j) { j.erase("decoder"); }, "decoder"},
      {"merge of unknown piece", [](Json& j) { j["model"]["merges"][5] = "\xE2\x96\x81 zzzqqq"; },
       "model.merges[5]"},
      {"bad merge string", [](Json& j) { j["model"]["merges"][7] = "nospace"; }, "model.merges[7]"},
      {"duplicate id", [](Json& j) { j["model"]["vocab"]["\xE2\x96\x81t"] = 5; }, "model.vocab"},
      {"string id", [](Json& j) { j["model"]["vocab"]["a"] = "x"; }, "model.vocab"},
      {"vocab not object", [](Json& j) { j["model"]["vocab"] = 3; }, "model.vocab"},
      {"dropout", [](Json& j) { j["model"]["dropout"] = 0.1; }, "model.dropout"},
      {"added token gap",
       [](Json& j) {
         j["added_tokens"].push_back({{"id", 32005}, {"content", "<pad>"}, {"special", true}});
       },
       "added_tokens"},
      {"added token mismatch", [](Json& j) { j["added_tokens"][1]["content"] = "<bos>"; },
       "added token id 1"},
      {"single_word added token", [](Json& j) { j["added_tokens"][0]["single_word"] = true; },
       "added_tokens[0]"},
      {"unknown post-processor",
       [](Json& j) {
         j["post_processor"] = {{"type", "RobertaProcessing"}};
       },
       "post_processor.type"},
      {"unk not in vocab", [](Json& j) { j["model"]["unk_token"] = "<nope>"; }, "model.unk_token"},
  };
  for (const Variant& v : variants) {
    Json edited = original;
    v.edit(edited);
    const std::string path = write("variant.json", edited.dump());
    SCOPED_TRACE(v.what);
    expect_error([](const std::string& p) { Tokenizer::load_json(p); }, path, v.field);
  }
}

TEST_F(BadFiles, LegacyFalseIsRefusedForTokenizerModel) {
  Json config = read_json_file(kLlamaDir + "/tokenizer_config.json");
  config["legacy"] = false;
  write("tokenizer_config.json", config.dump());
  std::filesystem::copy_file(kLlamaDir + "/tokenizer.model", dir_ / "tokenizer.model");
  expect_error([](const std::string& p) { Tokenizer::load_dir(p); }, dir_.string(), "legacy");
  // With a tokenizer.json the file decides, as in Hugging Face.
  std::filesystem::copy_file(kLlamaDir + "/tokenizer.json", dir_ / "tokenizer.json");
  EXPECT_EQ(Tokenizer::load_dir(dir_.string())->encode("Hi", true).front(), 1);
}

TEST_F(BadFiles, BadTokenizerConfig) {
  std::filesystem::copy_file(kLlamaDir + "/tokenizer.model", dir_ / "tokenizer.model");
  for (const std::string config :
       {"{\"add_bos_token\": \"yes\"}", "{\"bos_token\": \"<nope>\"}", "not json",
        "{\"added_tokens_decoder\": {\"x\": {\"content\": \"a\"}}}",
        "{\"added_tokens_decoder\": {\"32007\": {\"content\": \"<pad>\"}}}"}) {
    write("tokenizer_config.json", config);
    SCOPED_TRACE(config);
    try {
      Tokenizer::load_dir(dir_.string());
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tulu

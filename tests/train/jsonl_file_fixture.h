// Shared by the JSONL data loaders' tests (sft_data, preference_data): the Llama 2 tokenizer
// they encode with, and a GoogleTest fixture for their file tests (a fresh directory per
// test, removed after it, files written into it, and the message a loader throws).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace tulu::testing_util {

// data/llama2-tokenizer, loaded once (thread-safe static).
inline const Tokenizer& llama() {
  static const std::unique_ptr<Tokenizer> tokenizer =
      Tokenizer::load_dir(std::string(TULU_SOURCE_DIR) + "/data/llama2-tokenizer");
  return *tokenizer;
}

// text encoded by llama() with BOS.
inline std::vector<int> encode(const std::string& text) {
  return llama().encode(text, true);
}

class JsonlFileTest : public ::testing::Test {
 protected:
  // tag names the directory: <gtest TempDir>/tulu_<tag>_<pid>.
  explicit JsonlFileTest(std::string tag) : tag_(std::move(tag)) {}
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tulu_" + tag_ + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Writes content (bytes as given) to dir_/name; returns the path.
  std::string write(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  // The message of the tulu::Error that load throws, or "(no error)".
  static std::string error_of(const std::function<void()>& load) {
    try {
      load();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::filesystem::path dir_;

 private:
  std::string tag_;
};

}  // namespace tulu::testing_util

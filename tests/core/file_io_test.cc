#include "core/file_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "core/error.h"
#include "core/mapped_file.h"

namespace tulu {
namespace {

std::string temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("tulu_file_io_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(FileIo, AtomicWriteThenReadAndMap) {
  const std::string path = join_path(temp_dir(), "a.txt");
  write_file_atomic(path, std::string_view("hello world"));
  EXPECT_EQ(read_text_file(path), "hello world");
  auto mapped = MappedFile::open(path);
  ASSERT_EQ(mapped->size(), 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(mapped->data()), 11), "hello world");
}

TEST(FileIo, FailedWriterLeavesOldFileAndNoTemporary) {
  const std::string dir = temp_dir();
  const std::string path = join_path(dir, "b.txt");
  write_file_atomic(path, std::string_view("old"));
  EXPECT_THROW(write_file_atomic(path, [](std::ostream& out) {
                 out << "partial";
                 throw std::runtime_error("crash in the middle");
               }),
               std::runtime_error);
  EXPECT_EQ(read_text_file(path), "old");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST(FileIo, ErrorsNameThePath) {
  try {
    read_text_file("/nonexistent/dir/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/config.json"), std::string::npos);
  }
  EXPECT_THROW(MappedFile::open("/nonexistent.safetensors"), Error);
  EXPECT_THROW(MappedFile::open(temp_dir()), Error);  // a directory
  EXPECT_THROW(write_file_atomic("/nonexistent/dir/x", std::string_view("x")), Error);
}

TEST(FileIo, EmptyFileMaps) {
  const std::string path = join_path(temp_dir(), "empty");
  write_file_atomic(path, std::string_view(""));
  auto mapped = MappedFile::open(path);
  EXPECT_EQ(mapped->size(), 0u);
}

}  // namespace
}  // namespace tulu

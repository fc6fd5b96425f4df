// Whole-file reads and atomic writes. A file written with write_file_atomic is either
// complete or absent: data goes to "<path>.tmp.<pid>", is fsync'ed, then renamed over path.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace tulu {

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Throws tulu::Error naming the path on any failure.
std::string read_text_file(const std::string& path);

// Calls write(out) to produce the content; throws tulu::Error if the writer throws or any
// write/fsync/rename fails (the temporary file is removed).
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_file_atomic(const std::string& path, std::string_view content);

}  // namespace tulu

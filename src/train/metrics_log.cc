#include "train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu {

namespace {

std::FILE* open_or_throw(const std::string& path, const char* mode) {
  std::FILE* file = std::fopen(path.c_str(), mode);
  TULU_CHECK(file != nullptr, "cannot open '", path, "' for writing: ", std::strerror(errno));
  return file;
}

}  // namespace

MetricsLog::MetricsLog(std::string path, std::FILE* file, int64_t kept_rows)
    : path_(std::move(path)), file_(file), kept_rows_(kept_rows) {}

MetricsLog::MetricsLog(MetricsLog&& other) noexcept
    : path_(std::move(other.path_)), file_(other.file_), kept_rows_(other.kept_rows_) {
  other.file_ = nullptr;
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

MetricsLog MetricsLog::create(const std::string& path) {
  return MetricsLog(path, open_or_throw(path, "w"), 0);
}

MetricsLog MetricsLog::resume(const std::string& path, int64_t keep_through_step) {
  int64_t kept = 0;
  if (file_exists(path)) {
    const std::string text = read_text_file(path);
    std::string kept_text;
    size_t begin = 0;
    int64_t line_number = 0;
    while (begin < text.size()) {
      const size_t end = text.find('\n', begin);
      ++line_number;
      // A line without its newline is the partial write of a killed run: dropped.
      if (end == std::string::npos) break;
      const std::string line = text.substr(begin, end - begin);
      begin = end + 1;
      if (line.empty()) continue;
      const std::string where = str_cat(path, ":", line_number);
      const Json row = parse_json(line, where);
      TULU_CHECK(row.is_object(), where, ": expected a JSON object");
      const int64_t step = json_int(row, "step", where);
      if (step > keep_through_step) continue;
      kept_text += line;
      kept_text += '\n';
      ++kept;
    }
    write_file_atomic(path, kept_text);
  }
  return MetricsLog(path, open_or_throw(path, "a"), kept);
}

void MetricsLog::write(const Json& row) {
  const std::string line = row.dump() + "\n";
  const bool ok =
      std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0;
  TULU_CHECK(ok, "cannot write '", path_, "': ", std::strerror(errno));
}

}  // namespace tulu

// Reading a JSON Lines data file (SFT rows, preference pairs) in parallel with the outcome in
// line order: lines are read in chunks, each non-blank line is checked for UTF-8, parsed and
// encoded on the pool, and the results are taken in file order — so the dataset, the counts
// and the first error do not depend on the thread count.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/thread_pool.h"
#include "tokenizer/utf8.h"

namespace tulu {

struct JsonlReadCounts {
  int64_t rows_read = 0;  // non-blank lines
  int64_t truncated = 0;  // rows the encoder reported as cut (kept or dropped)
  int64_t dropped = 0;    // rows the encoder did not keep
  int64_t bad_rows = 0;   // malformed rows skipped (skip_bad_rows only)
  std::string first_bad_row;
};

// encode(row, where, line, out, truncated) runs on worker threads (it must be thread-safe);
// `where` is "path:line"; it returns whether the row is kept, sets `truncated` when it cut
// anything, and throws tulu::Error for a malformed row. keep(out) is called on the calling
// thread for each kept row, in file order. A malformed row (bad UTF-8, bad JSON, an encoder
// error) throws its error unless skip_bad_rows, which counts it instead. Errors naming the
// path: a directory, an unreadable file, a read error.
template <typename Row>
JsonlReadCounts read_jsonl_rows(
    const std::string& path, ThreadPool& pool, bool skip_bad_rows,
    const std::function<bool(const Json& row, const std::string& where, int64_t line, Row& out,
                             bool& truncated)>& encode,
    const std::function<void(Row&& out)>& keep) {
  TULU_CHECK(!is_directory(path), path, ": is a directory, not a JSONL file");
  std::ifstream in(path, std::ios::binary);
  TULU_CHECK(in.is_open(), path, ": cannot open the data file");

  struct LineResult {
    int64_t line = 0;
    Row row{};
    bool kept = false;
    bool truncated = false;
    std::string error;  // non-empty: the row is bad
  };
  constexpr size_t kChunk = 2048;
  JsonlReadCounts counts;
  std::vector<std::string> texts;
  std::vector<LineResult> results;
  int64_t line_number = 0;
  bool at_end = false;
  while (!at_end) {
    texts.clear();
    results.clear();
    std::string line;
    while (texts.size() < kChunk) {
      if (!std::getline(in, line)) {
        at_end = true;
        break;
      }
      ++line_number;
      if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
      texts.push_back(std::move(line));
      results.emplace_back().line = line_number;
    }
    TULU_CHECK(!in.bad(), path, ": read error after line ", line_number);
    pool.parallel_for(texts.size(), 16, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        LineResult& result = results[i];
        const std::string where = str_cat(path, ":", result.line);
        try {
          const size_t bad = utf8::first_invalid_offset(texts[i]);
          TULU_CHECK(bad == texts[i].size(), where, ": invalid UTF-8 at byte ", bad + 1);
          const Json row = parse_json(texts[i], where);
          result.kept = encode(row, where, result.line, result.row, result.truncated);
        } catch (const Error& e) {
          result.error = e.what();
        }
      }
    });
    for (LineResult& result : results) {
      ++counts.rows_read;
      if (!result.error.empty()) {
        if (!skip_bad_rows) throw Error(result.error);
        if (counts.bad_rows++ == 0) counts.first_bad_row = result.error;
        continue;
      }
      counts.truncated += result.truncated ? 1 : 0;
      if (!result.kept) {
        ++counts.dropped;
        continue;
      }
      keep(std::move(result.row));
    }
  }
  TULU_CHECK(counts.rows_read > 0, path, ": no rows (the file is empty)");
  return counts;
}

}  // namespace tulu

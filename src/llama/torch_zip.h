// A minimal, read-only zip reader for torch.save archives over a memory map: the central
// directory (ZIP64 included: a 70B shard is ~10 GB) mapped to byte ranges in the file.
// Only stored (uncompressed) entries can be read in place, which is what torch.save writes;
// compressed or encrypted entries are refused with an error naming the entry.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/mapped_file.h"

namespace tulu {

struct ZipEntry {
  uint64_t data_offset = 0;  // where the entry's bytes start in the file
  uint64_t size = 0;         // bytes (stored: compressed size == uncompressed size)
};

class ZipArchive {
 public:
  // Parses and validates the central directory and every local header; throws tulu::Error
  // naming the file (and entry) on any inconsistency.
  explicit ZipArchive(std::shared_ptr<MappedFile> file);

  const std::map<std::string, ZipEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // Throws tulu::Error naming the file and entry when absent.
  const ZipEntry& entry(const std::string& name) const;
  // The entry's bytes, a view into the map.
  std::string_view bytes(const ZipEntry& e) const;
  const std::shared_ptr<MappedFile>& file() const { return file_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace tulu

// A file of repacked weights kept between runs (llama/weight_repack.h), so that the next
// load of the same model maps its 16-row layouts ready-made from the page cache instead of
// copying them into fresh memory.
//
// Why: the copy itself is cheap, but fresh anonymous memory is not on every machine. On the
// virtual machines we measure on, memory the guest frees goes back to the host within
// seconds (free page reporting), and touching it again costs about 2.7 s per GB per core:
// a 1.1B Q4_0 model loaded in 0.2 s back to back and in 0.8–1.6 s after a pause, Q8_0 in up
// to 2.5 s. A file in the page cache stays resident, and one written in 2 MiB pieces sits in
// 2 MiB folios, which a 2 MiB-aligned mapping maps as huge pages: decode reads it as fast
// as the huge-page copy.
//
// Where: one file per model path, `<file name>.<hash of its path>.r16`, in TULU_CACHE_DIR,
// else $XDG_CACHE_HOME/tulu, else $HOME/.cache/tulu. It is as large as the repacked weights.
// Off with `--no-repack-cache` (set_repack_cache) or TULU_REPACK_CACHE=0; never used when
// the weights are read into memory (--no-mmap), which makes its own copy anyway.
//
// Layout (little-endian): "TULUR16\0", u64 key length, the key (text: format version, the
// source's path, size, mtime, inode and device, then one line per tensor: type, rows,
// columns, output offset, and its offset in the source or a digest of a copy's bytes), zeros
// up to a 2 MiB boundary, then the repacked tensors back to back. A file whose size, magic
// or key differ is stale and is rebuilt. Files are written under a temporary name, synced
// and renamed: a reader sees a whole file or none. (A writer killed midway leaves its
// temporary file behind, `<name>.tmp.XXXXXX`; the cache directory can be deleted any time.)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/mapped_file.h"
#include "tensor/tensor.h"

namespace tulu {

// Process-wide switch (default on; set it before loading a model).
void set_repack_cache(bool on);
// The cache directory, or "" when caching is off (the switch, TULU_REPACK_CACHE=0, or no
// directory to be found: no TULU_CACHE_DIR, XDG_CACHE_HOME or HOME).
std::string repack_cache_dir();

// One weight to repack: a Q4_0/Q8_0 view whose bytes lie in the source file, or a copy
// made from it at load (such a copy is recognised by a digest of its bytes).
struct RepackJob {
  const TensorView* source;
  uint64_t output_offset;  // where its repacked bytes go in the data region
};

struct RepackCacheMapping {
  std::shared_ptr<const void> keep_alive;  // the mapping; unmapped when the last copy goes
  const uint8_t* data = nullptr;           // the data region (2 MiB aligned), read-only
  bool built = false;                      // true when this call wrote the file
  std::string path;
};

// The repacked bytes of `jobs` (output offsets back to back, `total` bytes in all; every
// source from `source`) from the cache file in `dir`, made first when missing or stale
// (repacked with up to the hardware's threads). nullopt, after one line on stderr naming
// the path and the reason, when the file can be neither used nor written (read-only or full
// disk...): the caller then repacks into memory.
std::optional<RepackCacheMapping> map_repack_cache(const std::string& dir, const MappedFile& source,
                                                   std::span<const RepackJob> jobs, uint64_t total);

}  // namespace tulu

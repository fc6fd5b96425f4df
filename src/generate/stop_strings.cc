// Stop-string matching for streamed text (see stop_strings.h).
#include "generate/stop_strings.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace tulu {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stop_strings_(std::move(stop_strings)) {
  for (const std::string& stop : stop_strings_) {
    TULU_CHECK(!stop.empty(), "--stop: a stop string must not be empty");
    longest_ = std::max(longest_, stop.size());
  }
}

std::string StopStringMatcher::push(std::string_view text) {
  if (stopped_) return {};
  pending_.append(text);
  if (stop_strings_.empty()) return std::exchange(pending_, {});

  // Earliest complete stop string. Released text never holds the start of one (it would
  // have been held back), so searching the pending text suffices.
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stop_strings_) stop_at = std::min(stop_at, pending_.find(stop));
  if (stop_at != std::string::npos) {
    stopped_ = true;
    std::string released = pending_.substr(0, stop_at);
    pending_.clear();
    return released;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string. Both are valid
  // UTF-8 and a match starts on a stop string's first (lead) byte, so the cut never splits
  // a character.
  const size_t first_candidate = pending_.size() >= longest_ ? pending_.size() - longest_ + 1 : 0;
  size_t hold_from = pending_.size();
  for (size_t start = first_candidate; start < pending_.size() && hold_from == pending_.size();
       ++start) {
    const std::string_view tail = std::string_view(pending_).substr(start);
    for (const std::string& stop : stop_strings_) {
      if (tail.size() < stop.size() && stop.compare(0, tail.size(), tail) == 0) {
        hold_from = start;
        break;
      }
    }
  }
  std::string released = pending_.substr(0, hold_from);
  pending_.erase(0, hold_from);
  return released;
}

std::string StopStringMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace tulu

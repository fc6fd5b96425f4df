// Stop strings over streamed text: text is released only once it is known not to be (the
// start of) a stop string; when a stop string completes, the text before it is released
// and everything from the stop string on is dropped. A stop string may span any number of
// pushes (tokens).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tulu {

class StopStringMatcher {
 public:
  // Throws tulu::Error for an empty stop string (it would stop before any text).
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  // Appends newly decoded text; returns the text that is now final. After a stop string
  // completed, stopped() is true, the returned text ends just before the stop string, and
  // later pushes return nothing.
  std::string push(std::string_view text);
  // At the end of the stream: releases the held-back text (no stop string completed).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_strings_;
  size_t longest_ = 0;   // length of the longest stop string
  std::string pending_;  // decoded, not yet released: a proper prefix of some stop string
  bool stopped_ = false;
};

}  // namespace tulu

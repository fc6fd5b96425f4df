// Errors: one exception type carrying a message that names the file / field / value at
// fault. Thrown at boundaries (io, text, cli, serve) and caught only there; kernels
// assume validated input.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tulu {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values: str_cat("tensor '", name, "': ", n, " bytes").
template <typename... Parts>
std::string str_cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(str_cat(std::forward<Parts>(parts)...));
}

}  // namespace tulu

// Checks a condition that depends on user input; on failure throws tulu::Error with the
// concatenated message parts.
#define TULU_CHECK(cond, ...)                 \
  do {                                        \
    if (!(cond)) ::tulu::fail(__VA_ARGS__);   \
  } while (0)

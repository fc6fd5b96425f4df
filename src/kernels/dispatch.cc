#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <hwy/highway.h>
#include <hwy/targets.h>

namespace tulu {

namespace {

bool generic_from_environment() {
  const char* value = std::getenv("TULU_FORCE_GENERIC");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

std::atomic<bool>& generic_flag() {
  static std::atomic<bool> flag{generic_from_environment()};
  return flag;
}

}  // namespace

bool force_generic_kernels() {
  return generic_flag().load(std::memory_order_relaxed);
}

void set_force_generic_kernels(bool generic) {
  generic_flag().store(generic, std::memory_order_relaxed);
}

std::string kernel_target_name() {
  if (force_generic_kernels()) return "generic (scalar reference)";
  // The best target that is both compiled in and supported by this CPU.
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  if (targets == 0) return hwy::TargetName(HWY_STATIC_TARGET);
  return hwy::TargetName(targets & ~(targets - 1));
}

}  // namespace tulu

// Which implementation the kernels run: the Highway fast path (best target the CPU
// supports, chosen at run time) or the plain scalar references (foo_ref.h). The generic
// path exists so that one machine can test both and so that a suspected SIMD bug can be
// ruled out in the field: TULU_FORCE_GENERIC=1 in the environment selects it at start-up.
#pragma once

#include <string>

namespace tulu {

// True when the scalar references are forced (environment or set_force_generic).
bool force_generic_kernels();
// Overrides the environment for the rest of the process (tests flip it). Not thread-safe
// with respect to kernels running concurrently.
void set_force_generic_kernels(bool generic);
// "AVX3", "AVX2", ... or "generic (scalar reference)": for `tulu info` and logs.
std::string kernel_target_name();

}  // namespace tulu

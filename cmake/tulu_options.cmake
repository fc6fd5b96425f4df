# Compiler flags shared by every target, carried by an interface library so that the
# flags stay in one place.
add_library(tulu_build_options INTERFACE)
target_compile_options(tulu_build_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough
  # No implicit multiply-add fusion: the same scalar code gives the same bits on every CPU
  # target (SIMD kernels use explicit MulAdd where they want it).
  -ffp-contract=off)
if(TULU_WERROR)
  target_compile_options(tulu_build_options INTERFACE -Werror)
endif()
if(TULU_NATIVE)
  target_compile_options(tulu_build_options INTERFACE -march=native)
endif()
if(TULU_SANITIZE)
  target_compile_options(tulu_build_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(tulu_build_options INTERFACE -fsanitize=address,undefined)
endif()

// Element types of stored weights. Compute is always fp32; F16/BF16 are storage formats, and
// Q8_0, Q4_0, Q4_K, Q6_K are ggml's block-quantized formats (byte-identical to GGUF files):
//
//   type  block  bytes  layout (little-endian; f16 = IEEE half)
//   Q8_0    32    34    f16 d; int8 qs[32];                      x = qs[j]·d
//   Q4_0    32    18    f16 d; uint8 qs[16];   element j < 16 in the low nibble of qs[j],
//                                               element j+16 in its high nibble; x = (q−8)·d
//   Q4_K   256   144    f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]
//   Q6_K   256   210    uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d
//
// Q4_0_R16 and Q8_0_R16 are not file formats: they are Q4_0 / Q8_0 with every 16
// consecutive rows interleaved (tensor/quant_repack.h), made at load for the kernels
// (llama/weight_repack.h). Same bytes per block, but a row is not contiguous: the row-based
// helpers (dequantize_row, dequantize_element) reject them; to_f32 reads them whole.
//
// (tensor/quant_blocks.h has the structs and the exact decoding rules.) A quantized tensor
// is a sequence of blocks along its innermost dimension, so a row of n elements takes
// dtype_row_bytes(dtype, n) bytes and n must be a multiple of dtype_block_elements().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tulu {

enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, Q4_0_R16, Q8_0_R16 };

// True for the block-quantized types (Q8_0, Q4_0, Q4_K, Q6_K and the two R16 layouts).
bool dtype_is_quantized(DType dtype);
// Bytes per element: meaningful for the scalar types (F32, F16, BF16) only; throws
// tulu::Error for a block-quantized type (use dtype_row_bytes / dtype_block_bytes there).
size_t dtype_size(DType dtype);
// Elements per block: 1 for scalar types, 32 for Q8_0/Q4_0, 256 for Q4_K/Q6_K.
size_t dtype_block_elements(DType dtype);
// Bytes per block: dtype_size for scalar types, 34 / 18 / 144 / 210 for the quantized ones.
size_t dtype_block_bytes(DType dtype);
// Bytes of n consecutive elements (a row). Throws tulu::Error if n is not a multiple of the
// block size or the byte count overflows.
size_t dtype_row_bytes(DType dtype, uint64_t n);
// Alignment the kernels need for a tensor's start address: the element size for scalar
// types, 2 (the f16 scales) for the quantized ones, as in ggml's block structs.
size_t dtype_alignment(DType dtype);
// Names as safetensors / GGUF spell them: "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"
// (and "Q4_0_R16", "Q8_0_R16", which no file holds).
std::string_view dtype_name(DType dtype);
// Parses a safetensors dtype name (F32, F16, BF16); false for anything else, including the
// quantized names (safetensors files never hold ggml blocks).
bool parse_dtype(std::string_view name, DType* out);
// Parses any file type name dtype_name() gives, quantized types included (not the R16 layouts);
// false otherwise.
bool parse_any_dtype(std::string_view name, DType* out);

}  // namespace tulu

// tulu dump-tensor: a debugging aid that reads the weight files of a model directory (no
// config needed, no model validation) or a GGUF model, and writes one tensor as a NumPy .npy
// file, or lists every tensor. Tests use it to compare what tulu reads with what PyTorch
// wrote, bit for bit. GGUF tensors are named and laid out as Hugging Face's (q/k rows
// un-permuted), as every other command reads them.
//
//   tulu dump-tensor -m DIR --list                 one JSON line per tensor: name, dtype, shape, file
//   tulu dump-tensor -m DIR --name NAME -o X.npy   stored bits: F32 → <f4, F16 → <f2, BF16 → <u2 (raw)
//   tulu dump-tensor -m DIR --name NAME -o X.npy --f32   values converted to <f4 (exact; the
//                                                  quantized types dequantized as ggml does)
// Block-quantized tensors (Q8_0, Q4_0, Q4_K, Q6_K) have no NumPy dtype for their stored
// blocks: without --f32 they are refused with a message naming the type.
#include <iostream>

#include "command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"
#include "llama/gguf_llama.h"
#include "npy.h"

namespace tulu::cli {

namespace {

struct DumpOptions {
  std::string model_dir, name, output;
  bool list = false, f32 = false;
};

// The NumPy dtype of a scalar type's stored bits (BF16 has none: its raw 16-bit words).
const char* stored_npy_descr(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "<f4";
    case DType::F16:
      return "<f2";
    case DType::BF16:
      return "<u2";
    default:
      return nullptr;  // block-quantized
  }
}

int run_dump(const DumpOptions& o) {
  std::string format;
  TensorStore store;
  if (const std::optional<std::string> gguf = find_gguf_model(o.model_dir)) {
    GgufLlama model = read_gguf_llama(*gguf);
    store = std::move(model.store);
    format = model.format;
  } else {
    store = load_checkpoint_dir(o.model_dir, &format);
  }
  if (o.list) {
    for (const auto& [name, t] : store.tensors()) {
      const Json line = {{"name", name}, {"dtype", dtype_name(t.view.dtype)}, {"shape", t.view.shape}, {"file", t.file}};
      std::cout << line.dump() << "\n";
    }
    return 0;
  }
  TULU_CHECK(!o.name.empty() && !o.output.empty(), "give --name and -o (or --list)");
  TULU_CHECK(store.contains(o.name), o.model_dir, ": no tensor named '", o.name, "' (", format, ", ",
             store.size(), " tensors; --list shows them)");
  const TensorView& view = store.get(o.name).view;
  std::string descr, bytes;
  if (o.f32) {
    const std::vector<float> values = view.numel() > 0 ? to_f32(view) : std::vector<float>{};
    descr = "<f4";
    bytes.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  } else {
    const char* stored = stored_npy_descr(view.dtype);
    TULU_CHECK(stored != nullptr, o.model_dir, ": tensor '", o.name, "' is ", dtype_name(view.dtype),
               " (block-quantized): its stored blocks have no NumPy dtype; pass --f32 for the "
               "dequantized float32 values");
    descr = stored;
    bytes.assign(static_cast<const char*>(view.data), view.nbytes());
  }
  write_file_atomic(o.output, npy_header(descr, view.shape) + bytes);
  std::cout << o.name << ": " << dtype_name(view.dtype) << " " << shape_to_string(view.shape) << " → " << o.output
            << " (" << descr << ")\n";
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<DumpOptions>();
  app.add_option("-m,--model", o->model_dir, "model directory (weight files) or GGUF model")
      ->required();
  app.add_option("--name", o->name, "tensor name (Hugging Face's)");
  app.add_option("-o,--output", o->output, ".npy file to write");
  app.add_flag("--list", o->list, "list every tensor as JSON lines instead");
  app.add_flag("--f32", o->f32, "convert to float32 (exact; quantized types dequantized) instead of the stored bits "
               "(required for quantized tensors)");
  return [o] { return run_dump(*o); };
}

const bool registered = register_command(
    {"dump-tensor", "debugging: write one stored tensor as .npy, or list the tensors", 200, setup});

}  // namespace

}  // namespace tulu::cli

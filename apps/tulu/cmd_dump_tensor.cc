// tulu dump-tensor: a debugging aid that reads the weight files of a model directory (no
// config needed, no model validation) and writes one tensor as a NumPy .npy file, or lists
// every tensor. Tests use it to compare what tulu reads with what PyTorch wrote, bit for bit.
//
//   tulu dump-tensor -m DIR --list                 one JSON line per tensor: name, dtype, shape, file
//   tulu dump-tensor -m DIR --name NAME -o X.npy   stored bits: F32 → <f4, F16 → <f2, BF16 → <u2 (raw)
//   tulu dump-tensor -m DIR --name NAME -o X.npy --f32   values converted to <f4 (exact)
#include <iostream>

#include "command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "llama/checkpoint.h"
#include "npy.h"

namespace tulu::cli {

namespace {

struct DumpOptions {
  std::string model_dir, name, output;
  bool list = false, f32 = false;
};

int run_dump(const DumpOptions& o) {
  std::string format;
  const TensorStore store = load_checkpoint_dir(o.model_dir, &format);
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
    descr = view.dtype == DType::F32 ? "<f4" : view.dtype == DType::F16 ? "<f2" : "<u2";
    bytes.assign(static_cast<const char*>(view.data), view.nbytes());
  }
  write_file_atomic(o.output, npy_header(descr, view.shape) + bytes);
  std::cout << o.name << ": " << dtype_name(view.dtype) << " " << shape_to_string(view.shape) << " → " << o.output
            << " (" << descr << ")\n";
  return 0;
}

RunFunction setup(CLI::App& app) {
  auto o = std::make_shared<DumpOptions>();
  app.add_option("-m,--model", o->model_dir, "model directory (weight files)")->required();
  app.add_option("--name", o->name, "tensor name (Hugging Face's)");
  app.add_option("-o,--output", o->output, ".npy file to write");
  app.add_flag("--list", o->list, "list every tensor as JSON lines instead");
  app.add_flag("--f32", o->f32, "convert to float32 (exact) instead of the stored bits");
  return [o] { return run_dump(*o); };
}

const bool registered = register_command(
    {"dump-tensor", "debugging: write one stored tensor as .npy, or list the tensors", 200, setup});

}  // namespace

}  // namespace tulu::cli

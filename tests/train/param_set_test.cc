// ParamLayout (registry order, contiguous offsets, decay flags) and load_master_weights
// (exact F32/BF16/F16 → fp32, stored dtypes recorded, quantized weights refused).
#include "train/param_set.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tensor/half.h"
#include "train_model_fixture.h"

namespace tulu {
namespace {

using train_test::make_model;
using train_test::small_config;
using train_test::test_value;

TEST(ParamLayout, FollowsTheRegistry) {
  for (bool tie : {false, true}) {
    const LlamaConfig config = small_config(tie);
    const ParamLayout layout(config, DType::BF16);
    const auto specs = llama_param_specs(config);
    ASSERT_EQ(layout.entries().size(), specs.size());
    size_t offset = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
      const ParamEntry& e = layout.entries()[i];
      EXPECT_EQ(e.name, specs[i].name);
      EXPECT_EQ(e.shape, specs[i].shape);
      EXPECT_EQ(e.offset, offset);
      size_t numel = 1;
      for (int64_t d : e.shape) numel *= static_cast<size_t>(d);
      EXPECT_EQ(e.numel, numel);
      EXPECT_EQ(e.stored_dtype, DType::BF16);
      // Every norm weight (input_layernorm, post_attention_layernorm, model.norm) is exempt,
      // including the ones open-instruct's "layer_norm.weight" substring test would miss.
      const bool is_norm = e.name.find("norm") != std::string::npos;
      EXPECT_EQ(e.weight_decay, !is_norm) << e.name;
      EXPECT_EQ(e.weight_decay, e.shape.size() == 2) << e.name;
      offset += numel;
    }
    EXPECT_EQ(layout.total(), offset);
    EXPECT_EQ(static_cast<int64_t>(layout.total()),
              make_model(config, [](size_t, const std::string&) {
                return DType::F32;
              })->parameter_count());
    EXPECT_EQ(layout.entries().back().name, tie ? "model.norm.weight" : "lm_head.weight");
    EXPECT_EQ(&layout.at("model.layers.1.mlp.up_proj.weight"), &layout.entries()[1 + 9 + 5]);
  }
}

TEST(ParamLayout, AtNamesTheMissingParameter) {
  const ParamLayout layout(small_config(/*tie=*/true), DType::F32);
  try {
    layout.at("lm_head.weight");
    ADD_FAILURE() << "tied lm_head found";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'lm_head.weight'"), std::string::npos) << e.what();
  }
}

TEST(LoadMasterWeights, ConvertsEveryDtypeExactly) {
  const DType cycle[] = {DType::BF16, DType::F16, DType::F32};
  for (bool tie : {false, true}) {
    const LlamaConfig config = small_config(tie);
    auto model =
        make_model(config, [&](size_t index, const std::string&) { return cycle[index % 3]; });
    std::vector<float> values = {1.0f, 2.0f};  // resized and overwritten
    const ParamLayout layout = load_master_weights(*model, values);
    ASSERT_EQ(values.size(), layout.total());
    for (size_t index = 0; index < layout.entries().size(); ++index) {
      const ParamEntry& e = layout.entries()[index];
      ASSERT_EQ(e.stored_dtype, cycle[index % 3]) << e.name;
      for (size_t i = 0; i < e.numel; ++i) {
        const float v = test_value(index, i);
        const float want = e.stored_dtype == DType::BF16  ? bf16_to_f32(f32_to_bf16(v))
                           : e.stored_dtype == DType::F16 ? f16_to_f32(f32_to_f16(v))
                                                          : v;
        ASSERT_EQ(values[e.offset + i], want) << e.name << "[" << i << "]";
      }
    }
  }
}

TEST(LoadMasterWeights, RefusesQuantizedWeights) {
  // hidden 32: rows hold whole Q8_0 / Q4_0 blocks.
  const LlamaConfig config = small_config(false, /*hidden=*/32, /*layers=*/1);
  for (DType quant : {DType::Q8_0, DType::Q4_0}) {
    auto model = make_model(config, [&](size_t, const std::string& name) {
      return name == "model.layers.0.mlp.gate_proj.weight" ? quant : DType::F32;
    });
    std::vector<float> values;
    try {
      load_master_weights(*model, values);
      ADD_FAILURE() << "quantized weights accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << message;
      EXPECT_NE(message.find(std::string(dtype_name(quant))), std::string::npos) << message;
      EXPECT_NE(message.find("training needs F32/BF16/F16 weights"), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace tulu

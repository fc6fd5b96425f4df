// config.json / generation_config.json parsing: defaults as transformers' LlamaConfig
// applies them, every field that changes the math, and a clear error for every bad value.
#include "checkpoint_test_util.h"
#include "llama/config.h"

namespace tulu {
namespace {

using testing_util::expect_error;

// The fields of allenai/tulu-2-dpo-70b's config.json that matter (values from TULU2.md).
Json tulu2_70b_config() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
    "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 32000,
    "rms_norm_eps": 1e-05, "max_position_embeddings": 8192, "tie_word_embeddings": false,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "torch_dtype": "bfloat16",
    "rope_scaling": null, "pretraining_tp": 1, "use_cache": true})");
}

LlamaConfig parse(const Json& json) { return parse_llama_config(json, "config.json"); }

TEST(ConfigTest, ReadsEveryFieldOfATulu2Config) {
  const Json json = tulu2_70b_config();
  const LlamaConfig c = parse(json);
  EXPECT_EQ(c.hidden_size, json["hidden_size"]);
  EXPECT_EQ(c.intermediate_size, json["intermediate_size"]);
  EXPECT_EQ(c.num_hidden_layers, json["num_hidden_layers"]);
  EXPECT_EQ(c.num_attention_heads, json["num_attention_heads"]);
  EXPECT_EQ(c.num_key_value_heads, json["num_key_value_heads"]);
  EXPECT_EQ(c.head_dim, 8192 / 64);
  EXPECT_EQ(c.kv_dim(), 8 * (8192 / 64));
  EXPECT_EQ(c.vocab_size, json["vocab_size"]);
  EXPECT_EQ(c.rms_norm_eps, json["rms_norm_eps"].get<double>());
  EXPECT_EQ(c.rope_theta, 10000.0);  // absent → 10000
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::None);
  EXPECT_EQ(c.max_position_embeddings, json["max_position_embeddings"]);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.bos_token_ids, std::vector<int>{1});
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(c.pad_token_id, 0);
}

TEST(ConfigTest, DefaultsFollowTransformers) {
  Json json = tulu2_70b_config();
  for (const char* key : {"num_key_value_heads", "rope_theta", "rope_scaling", "tie_word_embeddings", "bos_token_id",
                          "eos_token_id", "pad_token_id", "hidden_act", "model_type", "torch_dtype"}) {
    json.erase(key);
  }
  const LlamaConfig c = parse(json);
  EXPECT_EQ(c.num_key_value_heads, c.num_attention_heads);  // MHA
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.bos_token_ids.empty());
  EXPECT_FALSE(c.pad_token_id.has_value());
  json["num_key_value_heads"] = nullptr;  // null is absent too
  EXPECT_EQ(parse(json).num_key_value_heads, c.num_attention_heads);
}

TEST(ConfigTest, ExplicitHeadDimAndRopeTheta) {
  Json json = tulu2_70b_config();
  json["head_dim"] = 256;
  json["rope_theta"] = 500000.0;
  const LlamaConfig c = parse(json);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.q_dim(), 64 * 256);
  EXPECT_EQ(c.rope_theta, 500000.0);
}

TEST(ConfigTest, TokenIdsMayBeListsAndMinusOnePadMeansNone) {
  Json json = tulu2_70b_config();
  json["eos_token_id"] = {2, 32000 - 1};
  json["bos_token_id"] = Json::array({1});
  json["pad_token_id"] = -1;
  const LlamaConfig c = parse(json);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2, 31999}));
  EXPECT_EQ(c.bos_token_ids, std::vector<int>{1});
  EXPECT_FALSE(c.pad_token_id.has_value());
}

TEST(ConfigTest, RopeScalingLinearBothSpellingsUnknownKindsRefused) {
  Json json = tulu2_70b_config();
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  EXPECT_EQ(parse(json).rope_scaling.kind, RopeScaling::Kind::Linear);
  EXPECT_EQ(parse(json).rope_scaling.factor, 4.0);
  json["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(parse(json).rope_scaling.factor, 2.0);
  json["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse(json).rope_scaling.kind, RopeScaling::Kind::None);
  for (const char* kind : {"dynamic", "yarn", "llama3", "longrope"}) {
    json["rope_scaling"] = {{"type", kind}, {"factor", 2.0}};
    expect_error([&] { parse(json); }, {"config.json", "rope_scaling", std::string("\"") + kind + "\""});
  }
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 0.5}};
  expect_error([&] { parse(json); }, {"rope_scaling.factor", "0.5"});
  json["rope_scaling"] = {{"type", "linear"}};
  expect_error([&] { parse(json); }, {"rope_scaling", "factor"});
  json["rope_scaling"] = {{"factor", 2.0}};
  expect_error([&] { parse(json); }, {"rope_scaling", "type"});
  json["rope_scaling"] = "linear";
  expect_error([&] { parse(json); }, {"rope_scaling", "object"});
}

TEST(ConfigTest, EveryBadValueIsNamed) {
  struct Case {
    const char* key;
    Json value;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"hidden_size", 0, "hidden_size"},
      {"hidden_size", -4096, "hidden_size"},
      {"hidden_size", "4096", "hidden_size"},
      {"hidden_size", 4096.5, "hidden_size"},
      {"intermediate_size", nullptr, "intermediate_size"},
      {"num_hidden_layers", 0, "num_hidden_layers"},
      {"num_attention_heads", 60, "num_attention_heads"},  // 8192 % 60 != 0, and 60 % 8 != 0
      {"num_key_value_heads", 7, "num_key_value_heads"},
      {"vocab_size", 0, "vocab_size"},
      {"vocab_size", int64_t{1} << 40, "vocab_size"},
      {"rms_norm_eps", 0, "rms_norm_eps"},
      {"rms_norm_eps", -1e-6, "rms_norm_eps"},
      {"rope_theta", 0, "rope_theta"},
      {"max_position_embeddings", 0, "max_position_embeddings"},
      {"tie_word_embeddings", "yes", "tie_word_embeddings"},
      {"hidden_act", "gelu", "hidden_act"},
      {"model_type", "mistral", "model_type"},
      {"attention_bias", true, "attention_bias"},
      {"mlp_bias", true, "mlp_bias"},
      {"torch_dtype", "float64", "torch_dtype"},
      {"eos_token_id", 32000, "eos_token_id"},
      {"eos_token_id", Json::array({2, "x"}), "eos_token_id"},
      {"bos_token_id", -5, "bos_token_id"},
      {"pad_token_id", 40000, "pad_token_id"},
      {"head_dim", 0, "head_dim"},
      {"head_dim", 127, "head_dim"},
      {"head_dim", 1 << 20, "head_dim"},                  // 64 heads × 2^20 overflows the int q_dim
      {"num_hidden_layers", 100000, "implausible"},       // 9 registry entries per layer
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.key) + " = " + c.value.dump());
    Json json = tulu2_70b_config();
    json[c.key] = c.value;
    expect_error([&] { parse(json); }, {"config.json", c.fragment});
  }
  expect_error([&] { parse(Json::array()); }, {"config.json", "object"});
  // Each size is allowed alone, but together they would overflow the counts derived later.
  Json huge = tulu2_70b_config();
  huge["hidden_size"] = 1 << 24;
  huge["intermediate_size"] = 1 << 24;
  expect_error([&] { parse(huge); }, {"config.json", "implausible model size"});
}

TEST(ConfigTest, WrittenJsonParsesBackToTheSameConfig) {
  Json json = tulu2_70b_config();
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  json["head_dim"] = 64;
  json["eos_token_id"] = {2, 7};
  const LlamaConfig a = parse(json);
  const Json written = llama_config_to_json(a);
  EXPECT_EQ(written["architectures"], Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(written["model_type"], "llama");
  const LlamaConfig b = parse(written);
  EXPECT_EQ(b.hidden_size, a.hidden_size);
  EXPECT_EQ(b.intermediate_size, a.intermediate_size);
  EXPECT_EQ(b.num_hidden_layers, a.num_hidden_layers);
  EXPECT_EQ(b.num_attention_heads, a.num_attention_heads);
  EXPECT_EQ(b.num_key_value_heads, a.num_key_value_heads);
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.vocab_size, a.vocab_size);
  EXPECT_EQ(b.rms_norm_eps, a.rms_norm_eps);
  EXPECT_EQ(b.rope_theta, a.rope_theta);
  EXPECT_EQ(b.rope_scaling.kind, a.rope_scaling.kind);
  EXPECT_EQ(b.rope_scaling.factor, a.rope_scaling.factor);
  EXPECT_EQ(b.max_position_embeddings, a.max_position_embeddings);
  EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
  EXPECT_EQ(b.torch_dtype, a.torch_dtype);
  EXPECT_EQ(b.bos_token_ids, a.bos_token_ids);
  EXPECT_EQ(b.eos_token_ids, a.eos_token_ids);
  EXPECT_EQ(b.pad_token_id, a.pad_token_id);
}

TEST(GenerationConfigTest, ReadsTheFieldsAndValidatesThem) {
  // Llama 2's generation_config.json.
  const Json json = Json::parse(R"({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
      "temperature": 0.6, "top_p": 0.9, "max_length": 4096, "do_sample": true,
      "transformers_version": "4.31.0.dev0"})");
  const GenerationConfig g = parse_generation_config(json, "generation_config.json");
  EXPECT_EQ(g.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(g.bos_token_id, 1);
  EXPECT_EQ(g.temperature, 0.6);
  EXPECT_EQ(g.top_p, 0.9);
  EXPECT_EQ(g.do_sample, true);
  EXPECT_FALSE(g.top_k.has_value());

  const GenerationConfig lists =
      parse_generation_config(Json::parse(R"({"eos_token_id": [2, 32001], "top_k": 40, "max_new_tokens": 16})"), "g");
  EXPECT_EQ(lists.eos_token_ids, (std::vector<int>{2, 32001}));
  EXPECT_EQ(lists.top_k, 40);
  EXPECT_EQ(lists.max_new_tokens, 16);

  for (const char* bad : {R"({"temperature": -1})", R"({"top_p": 0})", R"({"top_p": 1.5})", R"({"top_k": -1})",
                          R"({"repetition_penalty": 0})", R"({"max_new_tokens": 0})", R"({"eos_token_id": "x"})",
                          R"({"do_sample": 1})"}) {
    SCOPED_TRACE(bad);
    const Json j = Json::parse(bad);
    expect_error([&] { parse_generation_config(j, "generation_config.json"); },
                 {"generation_config.json", j.begin().key()});
  }
}

}  // namespace
}  // namespace tulu

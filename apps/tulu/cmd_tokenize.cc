// tulu tokenize / tulu detokenize: the tokenizer of a model directory on the command line.
// They need only the tokenizer files (tokenizer.json or tokenizer.model, and
// tokenizer_config.json), no weights; -m may also name a tokenizer.json / tokenizer.model.
//
//   tulu tokenize -m DIR -p TEXT            ids, comma-separated (stdin when no -p)
//   tulu tokenize -m DIR --jsonl            stdin lines {"text": str, "add_bos": bool = true, ...}
//                                           → {"ids": [...], "tokens": [...], ...other fields}
//   tulu detokenize -m DIR --ids 1,2,3      the text (--skip-special drops special tokens)
//   tulu detokenize -m DIR --jsonl          stdin lines {"ids": [...], "skip_special": bool =
//   false}
//                                           → {"text": str, ...other fields}
// A bad line stops the command with an error naming the line number and field (exit 1).
#include <algorithm>
#include <charconv>
#include <iostream>
#include <sstream>

#include "command.h"
#include "model_tokenizer.h"
#include "core/error.h"
#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace tulu::cli {

namespace {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (path.ends_with(".json")) return Tokenizer::load_json(path);
  if (path.ends_with(".model")) return Tokenizer::load_sentencepiece(path);
  return load_model_tokenizer(path);
}

std::string read_all_stdin() {
  std::ostringstream all;
  all << std::cin.rdbuf();
  return all.str();
}

// Calls handle(object, source) for each non-blank stdin line, writing what it returns.
template <typename Handle>
int for_each_jsonl_line(Handle handle) {
  std::string line;
  size_t line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string source = "stdin line " + std::to_string(line_number);
    const Json input = parse_json(line, source);
    TULU_CHECK(input.is_object(), source, ": expected a JSON object, got ", json_preview(input));
    std::cout << handle(input, source).dump() << "\n";
  }
  std::cout.flush();
  return 0;
}

// Copies the fields of `input` that are not in `consumed` into `output`.
void copy_other_fields(const Json& input, std::initializer_list<const char*> consumed,
                       Json& output) {
  for (const auto& [key, value] : input.items()) {
    bool skip = output.contains(key);
    for (const char* name : consumed) skip |= key == name;
    if (!skip) output[key] = value;
  }
}

// "1,15043, 3186" or "1 15043 3186" → ids; anything else is an error naming the item.
std::vector<int> parse_id_list(const std::string& text, const std::string& source) {
  std::vector<int> ids;
  size_t pos = 0;
  while (true) {
    pos = text.find_first_not_of(" \t\r\n,", pos);
    if (pos == std::string::npos) break;
    const size_t end = std::min(text.find_first_of(" \t\r\n,", pos), text.size());
    const std::string item = text.substr(pos, end - pos);
    int value = -1;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    TULU_CHECK(ec == std::errc() && ptr == item.data() + item.size() && value >= 0, source, ": '",
               item, "' is not a token id");
    ids.push_back(value);
    pos = end;
  }
  return ids;
}

struct TokenizeOptions {
  std::string model;
  std::string prompt;
  bool has_prompt = false;
  bool jsonl = false;
  bool no_bos = false;
};

int run_tokenize(const TokenizeOptions& o) {
  const auto tokenizer = load_tokenizer(o.model);
  if (o.jsonl) {
    return for_each_jsonl_line([&](const Json& input, const std::string& source) {
      const std::string text = json_string(input, "text", source);
      const bool add_bos = json_opt_bool(input, "add_bos", source).value_or(true);
      const std::vector<int> ids = tokenizer->encode(text, add_bos);
      Json tokens = Json::array();
      for (int id : ids) tokens.push_back(tokenizer->id_to_piece(id));
      Json output = {{"ids", ids}, {"tokens", std::move(tokens)}};
      copy_other_fields(input, {"text", "add_bos"}, output);
      return output;
    });
  }
  const std::string text = o.has_prompt ? o.prompt : read_all_stdin();
  const std::vector<int> ids = tokenizer->encode(text, !o.no_bos);
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
  std::cout << "\n";
  return 0;
}

struct DetokenizeOptions {
  std::string model;
  std::string ids;
  bool has_ids = false;
  bool jsonl = false;
  bool skip_special = false;
};

int run_detokenize(const DetokenizeOptions& o) {
  const auto tokenizer = load_tokenizer(o.model);
  if (o.jsonl) {
    return for_each_jsonl_line([&](const Json& input, const std::string& source) {
      TULU_CHECK(input.contains("ids") && input.at("ids").is_array(), source,
                 ": field 'ids': expected an array of token ids");
      const Json& ids_json = input.at("ids");
      std::vector<int> ids;
      for (size_t i = 0; i < ids_json.size(); ++i) {
        const Json& id = ids_json.at(i);
        TULU_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                       id.get<int64_t>() < tokenizer->vocab_size(),
                   source, ": field 'ids[", i, "]': expected a token id in [0, ",
                   tokenizer->vocab_size(), "), got ", json_preview(id));
        ids.push_back(id.get<int>());
      }
      const bool skip = json_opt_bool(input, "skip_special", source).value_or(false);
      Json output = {{"text", tokenizer->decode(ids, skip)}};
      copy_other_fields(input, {"ids", "skip_special"}, output);
      return output;
    });
  }
  const std::string text = o.has_ids ? o.ids : read_all_stdin();
  const std::vector<int> ids = parse_id_list(text, o.has_ids ? "--ids" : "stdin");
  std::cout << tokenizer->decode(ids, o.skip_special) << "\n";
  return 0;
}

RunFunction setup_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("-m,--model", o->model,
                 "model directory with tokenizer.json or tokenizer.model (or one of those files)")
      ->required();
  app.add_option("-p,--prompt", o->prompt, "text to tokenize (default: all of stdin)");
  app.add_flag("--jsonl", o->jsonl,
               "read JSON lines {\"text\", \"add_bos\"} and write {\"ids\", \"tokens\"}");
  app.add_flag("--no-bos", o->no_bos, "do not add the BOS token (without --jsonl)");
  return [o, &app] {
    o->has_prompt = app.count("--prompt") > 0;
    TULU_CHECK(!(o->jsonl && o->has_prompt), "--jsonl reads stdin: do not give -p as well");
    return run_tokenize(*o);
  };
}

RunFunction setup_detokenize(CLI::App& app) {
  auto o = std::make_shared<DetokenizeOptions>();
  app.add_option("-m,--model", o->model,
                 "model directory with tokenizer.json or tokenizer.model (or one of those files)")
      ->required();
  app.add_option("--ids", o->ids, "comma-separated token ids (default: read from stdin)");
  app.add_flag("--jsonl", o->jsonl,
               "read JSON lines {\"ids\", \"skip_special\"} and write {\"text\"}");
  app.add_flag("--skip-special", o->skip_special, "leave out special tokens (without --jsonl)");
  return [o, &app] {
    o->has_ids = app.count("--ids") > 0;
    TULU_CHECK(!(o->jsonl && o->has_ids), "--jsonl reads stdin: do not give --ids as well");
    return run_detokenize(*o);
  };
}

const bool registered_tokenize = register_command(
    {"tokenize", "text → token ids with a model's tokenizer (JSON lines with --jsonl)", 50,
     setup_tokenize});
const bool registered_detokenize = register_command(
    {"detokenize", "token ids → text with a model's tokenizer (JSON lines with --jsonl)", 51,
     setup_detokenize});

}  // namespace

}  // namespace tulu::cli

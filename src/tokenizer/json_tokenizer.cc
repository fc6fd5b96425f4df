// tokenizer.json (Hugging Face tokenizers) → PieceTokenizer. Only what Llama tokenizers use
// is accepted: model BPE (byte_fallback, fuse_unk, ignore_merges), normalizer Prepend /
// Replace(String) or a Sequence of them (legacy Llama files), or no normalizer and a
// Metaspace pre-tokenizer (files converted with legacy: false), the Llama decoder, and a
// TemplateProcessing post-processor of the form [special?] A [special?]. Anything else is
// refused with the file and field named, never silently approximated.
#include <map>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"
#include "tokenizer/bpe.h"
#include "tokenizer/loaders.h"
#include "tokenizer/piece_decoding.h"
#include "tokenizer/piece_tokenizer.h"

namespace tulu {

namespace {

struct NormalizerStep {
  enum class Kind { Prepend, Replace } kind;
  std::string text;         // Prepend: what to prepend; Replace: the pattern
  std::string replacement;  // Replace only
};

// tokenizers' Metaspace pre-tokenizer: spaces → replacement, then the replacement is
// prepended (always / only to the segment at the start of the input / never) unless the
// text already starts with it; split=true cuts before every replacement character.
struct Metaspace {
  enum class Prepend { Always, First, Never };
  std::string replacement;
  Prepend prepend = Prepend::Always;
  bool split = true;
};

std::string replace_all(const std::string& text, const std::string& pattern,
                        const std::string& replacement) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(pattern, pos);
    if (hit == std::string::npos) break;
    out.append(text, pos, hit - pos);
    out += replacement;
    pos = hit + pattern.size();
  }
  out.append(text, pos, std::string::npos);
  return out;
}

std::string normalize(std::string text, const std::vector<NormalizerStep>& steps) {
  for (const NormalizerStep& step : steps) {
    if (step.kind == NormalizerStep::Kind::Prepend) {
      if (!text.empty()) text.insert(0, step.text);  // HF prepends to non-empty text only
    } else {
      text = replace_all(text, step.text, step.replacement);
    }
  }
  return text;
}

// What tokenizers does with a stretch of text between non-normalized added tokens:
// normalize it, split out the normalized added tokens (matched in the normalized text
// against their normalized content — with the Llama normalizer "<x>" only matches as
// "▁<x>"), pre-tokenize the rest (Metaspace, if any) and run BPE on each word.
class JsonBpeEncoder final : public SegmentEncoder {
 public:
  JsonBpeEncoder(std::vector<NormalizerStep> steps, AddedTokenSplitter normalized_tokens,
                 std::optional<Metaspace> metaspace, BpeModel model)
      : steps_(std::move(steps)),
        normalized_tokens_(std::move(normalized_tokens)),
        metaspace_(std::move(metaspace)),
        model_(std::move(model)) {}

  void encode(std::string_view segment, bool at_text_start, std::vector<int>& ids) const override {
    const std::string text = normalize(std::string(segment), steps_);
    if (normalized_tokens_.tokens().empty()) {
      pre_tokenize_and_encode(text, at_text_start, ids);
      return;
    }
    for (const TextSegment& piece : normalized_tokens_.split(text)) {
      if (piece.token_id >= 0) {
        ids.push_back(piece.token_id);
      } else {
        pre_tokenize_and_encode(std::string(piece.text),
                                at_text_start && piece.text.data() == text.data(), ids);
      }
    }
  }

 private:
  void pre_tokenize_and_encode(std::string text, bool at_text_start, std::vector<int>& ids) const {
    if (!metaspace_) {
      model_.encode_word(text, ids);  // no pre-tokenizer: the whole segment is one word
      return;
    }
    const std::string& mark = metaspace_->replacement;
    text = replace_all(text, " ", mark);
    const bool prepend = metaspace_->prepend == Metaspace::Prepend::Always ||
                         (metaspace_->prepend == Metaspace::Prepend::First && at_text_start);
    if (prepend && !text.starts_with(mark)) text.insert(0, mark);
    if (!metaspace_->split) {
      model_.encode_word(text, ids);
      return;
    }
    size_t start = 0;  // words: each replacement character begins a new one
    while (start < text.size()) {
      size_t next = text.find(mark, start + 1);
      if (next == std::string::npos) next = text.size();
      model_.encode_word(std::string_view(text).substr(start, next - start), ids);
      start = next;
    }
  }

  std::vector<NormalizerStep> steps_;
  AddedTokenSplitter normalized_tokens_;
  std::optional<Metaspace> metaspace_;
  BpeModel model_;
};

// Builds the field path in messages: "tokenizer.json: field 'model.merges[12]'".
struct Where {
  const std::string& path;
  std::string at(const std::string& field) const { return path + ": field '" + field + "'"; }
};

void parse_normalizer(const Json& node, const Where& where, const std::string& field,
                      std::vector<NormalizerStep>& steps) {
  if (node.is_null()) return;
  TULU_CHECK(node.is_object(), where.at(field), ": expected an object, got ", json_preview(node));
  const std::string type = json_string(node, "type", where.at(field));
  if (type == "Sequence") {
    const auto it = node.find("normalizers");
    TULU_CHECK(it != node.end() && it->is_array(), where.at(field + ".normalizers"),
               ": expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      parse_normalizer((*it)[i], where, str_cat(field, ".normalizers[", i, "]"), steps);
    }
  } else if (type == "Prepend") {
    steps.push_back(
        {NormalizerStep::Kind::Prepend, json_string(node, "prepend", where.at(field)), ""});
  } else if (type == "Replace") {
    const auto pattern = node.find("pattern");
    TULU_CHECK(pattern != node.end() && pattern->is_object() && pattern->contains("String"),
               where.at(field + ".pattern"),
               ": only {\"String\": ...} patterns are supported (Regex is not), got ",
               pattern == node.end() ? std::string("nothing") : json_preview(*pattern));
    const std::string from = json_string(*pattern, "String", where.at(field + ".pattern"));
    TULU_CHECK(!from.empty(), where.at(field + ".pattern"), ": empty pattern");
    steps.push_back(
        {NormalizerStep::Kind::Replace, from, json_string(node, "content", where.at(field))});
  } else {
    fail(where.at(field + ".type"), ": normalizer '", type,
         "' is not supported (supported: Sequence, Prepend, Replace)");
  }
}

std::optional<Metaspace> parse_pre_tokenizer(const Json& node, const Where& where) {
  if (node.is_null()) return std::nullopt;
  TULU_CHECK(node.is_object(), where.at("pre_tokenizer"), ": expected an object");
  const std::string type = json_string(node, "type", where.at("pre_tokenizer"));
  TULU_CHECK(type == "Metaspace", where.at("pre_tokenizer.type"), ": '", type,
             "' is not supported (only none or Metaspace, as Llama tokenizer.json files use)");
  Metaspace m;
  m.replacement = json_string(node, "replacement", where.at("pre_tokenizer"));
  TULU_CHECK(m.replacement == piece_decoding::kMetaspace, where.at("pre_tokenizer.replacement"),
             ": only \"\u2581\" is supported (the Llama decoder turns it back into spaces)");
  m.split = json_opt_bool(node, "split", where.at("pre_tokenizer")).value_or(true);
  if (const auto scheme = json_opt_string(node, "prepend_scheme", where.at("pre_tokenizer"))) {
    if (*scheme == "always") {
      m.prepend = Metaspace::Prepend::Always;
    } else if (*scheme == "first") {
      m.prepend = Metaspace::Prepend::First;
    } else if (*scheme == "never") {
      m.prepend = Metaspace::Prepend::Never;
    } else {
      fail(where.at("pre_tokenizer.prepend_scheme"), ": '", *scheme,
           "' (expected always, first or never)");
    }
  } else {  // older files: add_prefix_space
    const bool add =
        json_opt_bool(node, "add_prefix_space", where.at("pre_tokenizer")).value_or(true);
    m.prepend = add ? Metaspace::Prepend::Always : Metaspace::Prepend::Never;
  }
  return m;
}

// The decoder must be the Llama one; our decode implements exactly it.
void check_decoder(const Json& decoder, const Where& where) {
  static const Json kLlamaDecoder = Json::parse(R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})");
  TULU_CHECK(decoder == kLlamaDecoder, where.at("decoder"),
             ": only the Llama decoder Sequence[Replace \"\u2581\"->\" \", ByteFallback, Fuse, "
             "Strip(\" \", 1, 0)] is supported, got ",
             json_preview(decoder));
}

std::optional<std::string> optional_string_or_null(const Json& obj, const std::string& key,
                                                   const std::string& source) {
  return json_opt_string(obj, key, source);
}

struct PostProcessorTokens {
  std::optional<int> leading;   // special token before the sequence
  std::optional<int> trailing;  // ... and after it
};

PostProcessorTokens parse_post_processor(const Json& node, const Where& where) {
  PostProcessorTokens result;
  if (node.is_null()) return result;
  TULU_CHECK(node.is_object(), where.at("post_processor"), ": expected an object");
  const std::string type = json_string(node, "type", where.at("post_processor"));
  TULU_CHECK(type == "TemplateProcessing", where.at("post_processor.type"), ": '", type,
             "' is not supported (only TemplateProcessing)");
  const auto single = node.find("single");
  const auto specials = node.find("special_tokens");
  TULU_CHECK(single != node.end() && single->is_array(), where.at("post_processor.single"),
             ": expected an array");
  const auto special_id = [&](const Json& item) -> int {
    const std::string name = json_string(item, "id", where.at("post_processor.single"));
    TULU_CHECK(specials != node.end() && specials->contains(name),
               where.at("post_processor.special_tokens"), ": no entry for '", name, "'");
    const Json& ids = (*specials)[name]["ids"];
    TULU_CHECK(ids.is_array() && ids.size() == 1 && ids[0].is_number_integer(),
               where.at("post_processor.special_tokens." + name + ".ids"),
               ": expected exactly one integer id");
    return ids[0].get<int>();
  };
  bool seen_sequence = false;
  for (const Json& item : *single) {
    TULU_CHECK(item.is_object() && item.size() == 1, where.at("post_processor.single"),
               ": unexpected item ", json_preview(item));
    if (item.contains("Sequence")) {
      TULU_CHECK(!seen_sequence, where.at("post_processor.single"), ": more than one sequence");
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      std::optional<int>& slot = seen_sequence ? result.trailing : result.leading;
      TULU_CHECK(!slot, where.at("post_processor.single"),
                 ": only one special token before and one after the sequence are supported");
      slot = special_id(item["SpecialToken"]);
    } else {
      fail(where.at("post_processor.single"), ": unexpected item ", json_preview(item));
    }
  }
  TULU_CHECK(seen_sequence, where.at("post_processor.single"), ": no sequence");
  return result;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path,
                                               const TokenizerConfig* config) {
  const Json root = parse_json(read_text_file(path), path);
  const Where where{path};
  TULU_CHECK(root.is_object(), path, ": expected a JSON object at the top level");
  TULU_CHECK(root.contains("model") && root["model"].is_object(), where.at("model"),
             ": missing or not an object");
  const Json& model = root["model"];
  const std::string type = json_string(model, "type", where.at("model"));
  TULU_CHECK(type == "BPE", where.at("model.type"), ": '", type,
             "' is not supported (only BPE, as Llama tokenizers use)");
  TULU_CHECK(!json_opt_number(model, "dropout", where.at("model")).value_or(0.0),
             where.at("model.dropout"), ": BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    TULU_CHECK(optional_string_or_null(model, key, where.at("model")).value_or("").empty(),
               where.at(std::string("model.") + key), ": not supported");
  }

  // Vocabulary: piece → id, ids dense from 0.
  const auto vocab_node = model.find("vocab");
  TULU_CHECK(vocab_node != model.end() && vocab_node->is_object(), where.at("model.vocab"),
             ": missing or not an object");
  PieceToId vocab;
  std::vector<std::string> pieces(vocab_node->size());
  std::vector<uint8_t> filled(vocab_node->size(), 0);
  for (const auto& [piece, id_node] : vocab_node->items()) {
    TULU_CHECK(id_node.is_number_integer(), where.at("model.vocab"), ": '", piece,
               "' has a non-integer id ", json_preview(id_node));
    const int64_t id = id_node.get<int64_t>();
    TULU_CHECK(id >= 0 && id < static_cast<int64_t>(pieces.size()) && !filled[id],
               where.at("model.vocab"), ": '", piece, "' has id ", id,
               ", but ids must be distinct and within [0, ", pieces.size(), ")");
    filled[id] = 1;
    pieces[id] = piece;
    vocab.emplace(piece, static_cast<int>(id));
  }

  // Merges: "a b" strings (older files) or ["a", "b"] pairs.
  const auto merges_node = model.find("merges");
  TULU_CHECK(merges_node != model.end() && merges_node->is_array(), where.at("model.merges"),
             ": missing or not an array");
  std::vector<BpeModel::Merge> merges;
  merges.reserve(merges_node->size());
  for (size_t i = 0; i < merges_node->size(); ++i) {
    const Json& item = (*merges_node)[i];
    std::string left, right;
    if (item.is_string()) {
      const std::string line = item.get<std::string>();
      const size_t space = line.find(' ');
      TULU_CHECK(space != std::string::npos && line.find(' ', space + 1) == std::string::npos,
                 where.at(str_cat("model.merges[", i, "]")), ": expected \"left right\", got ",
                 json_preview(item));
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {
      left = item[0].get<std::string>();
      right = item[1].get<std::string>();
    } else {
      fail(where.at(str_cat("model.merges[", i, "]")),
           ": expected a string or a pair of strings, got ", json_preview(item));
    }
    const auto find = [&](const std::string& piece) {
      const auto it = vocab.find(piece);
      TULU_CHECK(it != vocab.end(), where.at(str_cat("model.merges[", i, "]")), ": '", piece,
                 "' is not in the vocabulary");
      return it->second;
    };
    merges.push_back({find(left), find(right), find(left + right)});
  }

  BpeOptions options;
  options.byte_fallback = json_opt_bool(model, "byte_fallback", where.at("model")).value_or(false);
  options.fuse_unk = json_opt_bool(model, "fuse_unk", where.at("model")).value_or(false);
  options.ignore_merges = json_opt_bool(model, "ignore_merges", where.at("model")).value_or(false);
  if (const auto unk = json_opt_string(model, "unk_token", where.at("model"))) {
    const auto it = vocab.find(*unk);
    TULU_CHECK(it != vocab.end(), where.at("model.unk_token"), ": '", *unk,
               "' is not in the vocabulary");
    options.unk_id = it->second;
  }

  std::vector<NormalizerStep> steps;
  if (root.contains("normalizer")) parse_normalizer(root["normalizer"], where, "normalizer", steps);
  std::optional<Metaspace> metaspace =
      parse_pre_tokenizer(root.value("pre_tokenizer", Json()), where);
  TULU_CHECK(root.contains("decoder"), where.at("decoder"), ": missing");
  check_decoder(root["decoder"], where);
  const PostProcessorTokens post =
      parse_post_processor(root.value("post_processor", Json()), where);

  // Added tokens: may extend the vocabulary past the model's ids.
  std::vector<AddedToken> added;
  if (const auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
    TULU_CHECK(it->is_array(), where.at("added_tokens"), ": expected an array");
    std::map<int, std::string> extra;  // ids beyond the model vocabulary
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& entry = (*it)[i];
      const std::string at = where.at(str_cat("added_tokens[", i, "]"));
      TULU_CHECK(entry.is_object(), at, ": expected an object");
      AddedToken token;
      token.id = static_cast<int>(json_int(entry, "id", at));
      token.content = json_string(entry, "content", at);
      token.special = json_opt_bool(entry, "special", at).value_or(false);
      token.lstrip = json_opt_bool(entry, "lstrip", at).value_or(false);
      token.rstrip = json_opt_bool(entry, "rstrip", at).value_or(false);
      TULU_CHECK(!json_opt_bool(entry, "single_word", at).value_or(false), at,
                 ": single_word added tokens are not supported");
      token.normalized = json_opt_bool(entry, "normalized", at).value_or(false);
      TULU_CHECK(token.id >= 0 && token.id < (1 << 24), at, ": id ", token.id, " out of range");
      if (token.id >= static_cast<int>(pieces.size())) extra[token.id] = token.content;
      added.push_back(std::move(token));
    }
    for (const auto& [id, content] : extra) {
      TULU_CHECK(id == static_cast<int>(pieces.size()), where.at("added_tokens"), ": token '",
                 content, "' has id ", id, " but the vocabulary ends at ", pieces.size(),
                 " (ids must be contiguous)");
      pieces.push_back(content);
    }
  }

  PieceTokenizerParts parts;
  parts.source = path;
  const auto piece_id = [&](const std::optional<std::string>& name, const char* field) -> int {
    if (!name) return -1;
    for (const AddedToken& token : added) {
      if (token.content == *name) return token.id;
    }
    const auto it = vocab.find(*name);
    TULU_CHECK(it != vocab.end(), config ? config->path : path, ": ", field, " '", *name,
               "' is not in the vocabulary of ", path);
    return it->second;
  };
  const auto piece_if_present = [&](const char* name) -> std::optional<std::string> {
    for (const AddedToken& token : added) {
      if (token.content == name) return token.content;
    }
    if (vocab.count(std::string_view(name))) return std::string(name);
    return std::nullopt;
  };
  parts.bos_id = config && config->bos_token ? piece_id(config->bos_token, "bos_token")
                 : post.leading              ? *post.leading
                                             : piece_id(piece_if_present("<s>"), "bos_token");
  parts.eos_id = config && config->eos_token ? piece_id(config->eos_token, "eos_token")
                 : post.trailing             ? *post.trailing
                                             : piece_id(piece_if_present("</s>"), "eos_token");
  parts.unk_id =
      config && config->unk_token ? piece_id(config->unk_token, "unk_token") : options.unk_id;
  parts.add_bos =
      config && config->add_bos_token ? *config->add_bos_token : post.leading.has_value();
  parts.add_eos =
      config && config->add_eos_token ? *config->add_eos_token : post.trailing.has_value();
  parts.pieces = std::move(pieces);
  parts.added_tokens = std::move(added);
  // Normalized added tokens are matched after normalization, on their normalized content.
  std::vector<AddedToken> normalized_tokens;
  for (const AddedToken& token : parts.added_tokens) {
    if (!token.normalized) continue;
    AddedToken copy = token;
    copy.content = normalize(token.content, steps);
    normalized_tokens.push_back(std::move(copy));
  }
  parts.encoder = std::make_unique<JsonBpeEncoder>(
      std::move(steps), AddedTokenSplitter(std::move(normalized_tokens)), std::move(metaspace),
      BpeModel(std::move(vocab), merges, options));
  return std::make_unique<PieceTokenizer>(std::move(parts));
}

}  // namespace tulu

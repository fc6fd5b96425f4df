// Llama tokenizers, identical to Hugging Face LlamaTokenizerFast / SentencePiece:
//  * tokenizer.json: BPE with byte fallback, the Llama normalizer (prepend "▁", spaces →
//    "▁"), added/special tokens split out of the text before normalization (legacy: true);
//  * tokenizer.model: SentencePiece protobuf (through libsentencepiece), with the same
//    special-token splitting so that both give the same ids.
// Immutable after load; safe to share across threads.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tulu {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Loads from a model directory: tokenizer.json if present, else tokenizer.model;
  // tokenizer_config.json (when present) supplies add_bos_token / special tokens / legacy.
  // Throws tulu::Error naming the file when nothing usable is there or a file is bad.
  static std::unique_ptr<Tokenizer> load_dir(const std::string& dir);
  static std::unique_ptr<Tokenizer> load_json(const std::string& tokenizer_json_path);
  static std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& tokenizer_model_path);

  // Text → ids. Literal special-token strings ("<s>", "</s>", "<unk>") become their ids.
  // add_bos prepends the BOS id (as HF's add_special_tokens=True does for Llama).
  virtual std::vector<int> encode(std::string_view text, bool add_bos) const = 0;

  // Ids → text as HF decode(ids, skip_special_tokens=skip_special) does (byte-fallback
  // runs joined, "▁" → space, the leading space of the first piece stripped).
  // Throws tulu::Error for an id outside [0, vocab_size).
  virtual std::string decode(std::span<const int> ids, bool skip_special) const = 0;

  // The vocabulary piece of an id ("▁Hello", "<0x0A>", "</s>").
  virtual std::string id_to_piece(int id) const = 0;
  virtual int vocab_size() const = 0;
  virtual bool is_special(int id) const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int unk_id() const = 0;
};

// Streaming decoder: feed ids one at a time, get the text they add. Never emits a broken
// UTF-8 sequence: bytes of an incomplete character are held back until completed (or
// flushed as U+FFFD replacement by flush(), as HF decode would render them). The
// concatenation of all outputs plus flush() equals tokenizer.decode(all ids, skip_special).
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special);
  std::string push(int id);
  std::string flush();
  void reset();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int> ids_;     // ids since the start of the sequence
  size_t emitted_bytes_ = 0;  // bytes of decode(ids_) already returned
};

}  // namespace tulu

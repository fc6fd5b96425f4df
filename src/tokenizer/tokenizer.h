// Llama tokenizers, identical to Hugging Face LlamaTokenizerFast / SentencePiece:
//  * tokenizer.json: BPE with byte fallback, the Llama normalizer (prepend "▁", spaces →
//    "▁"), added/special tokens split out of the text before normalization (legacy: true);
//    also the Metaspace pre-tokenizer form that transformers writes for legacy: false;
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
  // tokenizer_config.json (when present) supplies add_bos_token / add_eos_token, the
  // bos/eos/unk token names, extra added tokens (added_tokens_decoder) and legacy.
  // legacy: false is refused for tokenizer.model (HF's non-legacy mode is not implemented);
  // with a tokenizer.json it has no effect, as in HF (the file already decides).
  // Throws tulu::Error naming the file when nothing usable is there or a file is bad.
  static std::unique_ptr<Tokenizer> load_dir(const std::string& dir);
  // The file alone (no tokenizer_config.json): tokenizer.json's post_processor decides
  // BOS/EOS; a tokenizer.model behaves as LlamaTokenizer's defaults (BOS, no EOS).
  static std::unique_ptr<Tokenizer> load_json(const std::string& tokenizer_json_path);
  static std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& tokenizer_model_path);

  // Text (valid UTF-8, else tulu::Error) → ids. Literal added-token strings ("<s>",
  // "</s>", "<unk>") become their ids; the text between them is encoded segment by segment.
  // add_bos = HF's add_special_tokens: prepends BOS (and appends EOS) as the tokenizer's
  // add_bos_token / add_eos_token say — for Llama, BOS only.
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
// UTF-8 sequence. The concatenation of all outputs plus flush() equals
// tokenizer.decode(all ids, skip_special), exactly.
// How: HF's Llama decoder renders a run of consecutive <0xNN> byte pieces as its bytes
// when the whole run is valid UTF-8, else as one U+FFFD per byte — so a run's text is only
// known when the run ends. Byte pieces are therefore held until the next non-byte piece
// (or flush()); every other piece is emitted at once. The leading-space strip applies to
// the first non-empty text. O(1) per token (plus the piece's length); no re-decoding.
// Not thread-safe; the tokenizer must outlive the decoder.
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special);
  // Throws tulu::Error for an id outside the vocabulary (nothing is consumed then).
  std::string push(int id);
  // Emits what is held (an unfinished byte run) and ends the sequence; the decoder is then
  // ready for a new sequence.
  std::string flush();
  void reset();

 private:
  std::string finish(std::string text);

  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_bytes_;  // the current run of byte-fallback bytes, not yet emitted
  bool started_ = false;       // some non-empty text has been produced (strip done)
};

}  // namespace tulu

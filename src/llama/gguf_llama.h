// Llama models in GGUF files: the llama.cpp ↔ Hugging Face tensor names, the q/k row
// permutation, the config from `llama.*` metadata, and loading a file into a TensorStore.
//
// llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of
// q_proj and k_proj within each head from Hugging Face's rotate-half RoPE layout to Meta's
// interleaved one: viewing a head's D rows as [2, D/2], it stores them as [D/2, 2]. So
// GGUF row h·D + 2i + j holds HF row h·D + j·D/2 + i. We always undo this when reading and
// apply it when writing, so our files and llama.cpp's read the same way.
#pragma once

#include <optional>
#include <string>

#include "llama/config.h"
#include "llama/gguf_reader.h"
#include "llama/tensor_store.h"

namespace tulu {

// "blk.3.attn_q.weight" → "model.layers.3.self_attn.q_proj.weight"; nullopt for a name
// outside the Llama set (rope_freqs, biases, ...).
std::optional<std::string> hf_name_from_gguf(const std::string& gguf_name);
// The inverse; nullopt for a name that is not a Llama parameter.
std::optional<std::string> gguf_name_from_hf(const std::string& hf_name);

// Whether an HF tensor is a q or k projection (permuted in GGUF files), and its head count
// (num_attention_heads for q, num_key_value_heads for k); 0 for other tensors.
int permuted_head_count(const std::string& hf_name, const LlamaConfig& config);

// Row r of the permuted (GGUF) tensor comes from row gguf_row_source(r) of the HF tensor,
// for a tensor of `rows` rows split into `heads` heads (rows % (2·heads) == 0).
size_t hf_row_of_gguf_row(size_t gguf_row, size_t rows, int heads);

// The config from the `llama.*` metadata (validated as config.json is: see
// parse_llama_config); vocab size from token_embd, tie_word_embeddings = no output.weight,
// bos/eos from tokenizer.ggml.*. Throws tulu::Error naming the file and key.
LlamaConfig llama_config_from_gguf(const GgufFile& gguf);

// A Llama GGUF file read into HF names and layout (q/k rows un-permuted into owned
// buffers; every other tensor a view into the mapping).
struct GgufLlama {
  LlamaConfig config;
  GenerationConfig generation;  // bos/eos from the tokenizer metadata
  TensorStore store;
  std::string format;  // "gguf v3 (Q8_0, 291 tensors)"
};
GgufLlama read_gguf_llama(const std::string& path);

// What `-m PATH` names when it is a GGUF model: PATH itself when it is a regular file whose
// name ends in ".gguf", or the single .gguf file of a directory that has no Hugging Face
// weights (model.safetensors*, pytorch_model.bin*). nullopt otherwise (a directory with
// several .gguf files is an error naming them).
std::optional<std::string> find_gguf_model(const std::string& path);

}  // namespace tulu

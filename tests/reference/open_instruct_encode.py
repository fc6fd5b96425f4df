"""Reference for SFT data encoding: a line-by-line transcription of open-instruct's
finetune.py (late 2023, the Tulu 2 release) — encode_with_messages_format,
encode_with_prompt_completion_format and the filter that drops rows with no target — with
the Hugging Face tokenizer call replaced by `tokenize(text) -> ids` (add_special_tokens=True:
BOS first) and truncation done as `tokenizer(..., max_length=N, truncation=True)` does it
for Llama (the first N ids, BOS included). Plain Python lists instead of torch tensors.

Text rows ({"text": str}) are not open-instruct's: tulu.cpp defines them as BOS + text + EOS,
all targets (src/train/sft_data.h), transcribed here from that contract.

Independent of tulu's C++: the tokenizer passed in is Python SentencePiece with HF's legacy
special-token splitting (tokenizer_sp_reference.py) or HF `tokenizers` from npm.
"""

EOS_TOKEN = "</s>"  # tokenizer.eos_token of the Llama 2 tokenizer
IGNORE = -100


def _truncate(ids, max_seq_length):
    return ids[:max_seq_length]


def encode_with_messages_format(example, tokenize, max_seq_length):
    messages = example["messages"]
    if len(messages) == 0:
        raise ValueError("messages field is empty.")

    def _concat_messages(messages):
        message_text = ""
        for message in messages:
            if message["role"] == "system":
                message_text += "<|system|>\n" + message["content"].strip() + "\n"
            elif message["role"] == "user":
                message_text += "<|user|>\n" + message["content"].strip() + "\n"
            elif message["role"] == "assistant":
                message_text += "<|assistant|>\n" + message["content"].strip() + EOS_TOKEN + "\n"
            else:
                raise ValueError("Invalid role: {}".format(message["role"]))
        return message_text

    example_text = _concat_messages(messages).strip()
    full = tokenize(example_text)
    input_ids = _truncate(full, max_seq_length)
    labels = list(input_ids)

    # mask the non-assistant part for avoiding loss
    for message_idx, message in enumerate(messages):
        if message["role"] != "assistant":
            if message_idx == 0:
                message_start_idx = 0
            else:
                message_start_idx = len(_truncate(tokenize(_concat_messages(messages[:message_idx])),
                                                  max_seq_length))
            if message_idx < len(messages) - 1 and messages[message_idx + 1]["role"] == "assistant":
                # here we also ignore the role of the assistant
                messages_so_far = _concat_messages(messages[:message_idx + 1]) + "<|assistant|>\n"
            else:
                messages_so_far = _concat_messages(messages[:message_idx + 1])
            message_end_idx = len(_truncate(tokenize(messages_so_far), max_seq_length))
            # labels[:, start:end] = -100 (a slice: clipped to the length, empty if start >= end)
            for k in range(message_start_idx, min(message_end_idx, len(labels))):
                labels[k] = IGNORE
            if message_end_idx >= max_seq_length:
                break
    return {"input_ids": input_ids, "labels": labels, "truncated": len(full) > max_seq_length}


def encode_with_prompt_completion_format(example, tokenize, max_seq_length):
    # if prompt doesn't end with space and completion doesn't start with space, add space
    if not example["prompt"].endswith((" ", "\n", "\t")) and not example["completion"].startswith((" ", "\n", "\t")):
        example_text = example["prompt"] + " " + example["completion"]
    else:
        example_text = example["prompt"] + example["completion"]
    example_text = example_text + EOS_TOKEN
    full = tokenize(example_text)
    input_ids = _truncate(full, max_seq_length)
    labels = list(input_ids)
    tokenized_prompt = _truncate(tokenize(example["prompt"]), max_seq_length)
    # mask the prompt part for avoiding loss
    for k in range(min(len(tokenized_prompt), len(labels))):
        labels[k] = IGNORE
    return {"input_ids": input_ids, "labels": labels, "truncated": len(full) > max_seq_length}


def encode_text(example, tokenize, eos_id, max_seq_length):
    full = tokenize(example["text"]) + [eos_id]
    input_ids = _truncate(full, max_seq_length)
    return {"input_ids": input_ids, "labels": list(input_ids), "truncated": len(full) > max_seq_length}


def encode_row(example, tokenize, eos_id, max_seq_length):
    """The encoding of one row, or None when open-instruct's filter drops it
    (`(labels != -100).any()` is false). The kind is chosen as tulu does: messages, then
    prompt/completion, then text (fields that are null count as absent)."""
    if example.get("messages") is not None:
        out = encode_with_messages_format(example, tokenize, max_seq_length)
    elif example.get("prompt") is not None or example.get("completion") is not None:
        out = encode_with_prompt_completion_format(example, tokenize, max_seq_length)
    else:
        out = encode_text(example, tokenize, eos_id, max_seq_length)
    out["kept"] = any(label != IGNORE for label in out["labels"])
    return out

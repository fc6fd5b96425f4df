"""Reference for DPO preference data encoding (tulu dpo-data, src/train/preference_data.h).

Each side is rendered as open-instruct's finetune.py renders SFT conversations
(_concat_messages, every content .strip()'ed, the whole text stripped) and split into prompt
and completion as TRL's DPOTrainer.build_tokenized_answer does: prompt_ids = tokenize(prompt
text), where the prompt text is the rendering of the messages before the final reply plus
"<|assistant|>\n"; completion = tokenize(full text)[len(prompt_ids):] (open-instruct's mask:
the first len(tokenize(prompt)) tokens are the prompt's). Truncation is TRL's tokenize_row
with truncation_mode "keep_end" (its default), BOS kept in front of a cut prompt:
    if len(prompt) + max(len(chosen), len(rejected)) > max_length and max_prompt_length set:
        prompt = prompt[:1] + prompt[1:][-(max_prompt_length - 1):]   (when longer than it)
    if still too long: chosen/rejected = x[:max_length - len(prompt)]
A pair with an empty completion is dropped.

`tokenize(text) -> ids` adds BOS (add_special_tokens=True). Independent of tulu's C++.
"""

EOS_TOKEN = "</s>"
ASSISTANT_TAG = "<|assistant|>\n"


def concat_messages(messages):
    text = ""
    for message in messages:
        if message["role"] == "system":
            text += "<|system|>\n" + message["content"].strip() + "\n"
        elif message["role"] == "user":
            text += "<|user|>\n" + message["content"].strip() + "\n"
        elif message["role"] == "assistant":
            text += "<|assistant|>\n" + message["content"].strip() + EOS_TOKEN + "\n"
        else:
            raise ValueError("Invalid role: {}".format(message["role"]))
    return text


def split_row(row):
    """(prompt messages, chosen conversation, rejected conversation) of a valid row."""
    chosen, rejected = row["chosen"], row["rejected"]
    if isinstance(chosen, str):
        prompt = [{"role": "user", "content": row["prompt"]}]
        return prompt, prompt + [{"role": "assistant", "content": chosen}], \
            prompt + [{"role": "assistant", "content": rejected}]
    assert chosen[:-1] == rejected[:-1] and chosen[-1]["role"] == rejected[-1]["role"] == "assistant"
    prompt = chosen[:-1]
    if not prompt:
        prompt = [{"role": "user", "content": row["prompt"]}]
        chosen, rejected = prompt + chosen, prompt + rejected
    return prompt, chosen, rejected


def encode_pair(row, tokenize, max_length, max_prompt_length=None):
    prompt_messages, chosen, rejected = split_row(row)
    prompt_ids = tokenize(concat_messages(prompt_messages) + ASSISTANT_TAG)
    answers = []
    for conversation in (chosen, rejected):
        full = tokenize(concat_messages(conversation).strip())
        answers.append(full[len(prompt_ids):])
    chosen_ids, rejected_ids = answers

    truncated = False
    longer = max(len(chosen_ids), len(rejected_ids))
    if len(prompt_ids) + longer > max_length and max_prompt_length is not None \
            and len(prompt_ids) > max_prompt_length:
        prompt_ids = prompt_ids[:1] + (prompt_ids[1:][-(max_prompt_length - 1):] if max_prompt_length > 1 else [])
        truncated = True
    if len(prompt_ids) + longer > max_length:
        room = max(0, max_length - len(prompt_ids))
        chosen_ids, rejected_ids = chosen_ids[:room], rejected_ids[:room]
        truncated = True
    return {"prompt_ids": prompt_ids, "chosen_ids": chosen_ids, "rejected_ids": rejected_ids,
            "truncated": truncated, "kept": bool(chosen_ids) and bool(rejected_ids)}

"""tulu render-chat against independent references, text and ids:
  * tulu: open-instruct's create_prompt_with_tulu_chat_format (system kept), and Tulu 2's HF
    chat_template on conversations it renders identically (no system turn, assistant
    content already stripped — the template neither keeps system turns nor strips);
  * llama-2-chat, zephyr, chatml: their HF chat templates rendered with jinja2.
Expected ids = HF apply_chat_template(tokenize=True), i.e. the reference text encoded with
special-token splitting and no added specials (SentencePiece reference), with BOS in front
when the template did not write one. Also: template detection from tokenizer_config.json
and the llama-2-chat role-alternation error."""
import json
import os
import random
import shutil
import subprocess
import sys

from chat_reference import TEMPLATES, TemplateError, create_prompt_with_tulu_chat_format, render_hf_template
from tokenizer_cases import LLAMA2_DIR, report_mismatches
from tokenizer_sp_reference import SentencePieceLegacyReference

CONTENTS = ["Hello!", "What is 2+2?", "  padded with spaces  ", "\n\nnewlines around\n", "", " ", "multi\nline\ntext",
            "tabs\tinside", "\u3000ideographic space\u3000", "\u00a0nbsp\u00a0", "ends with </s>", "<s> starts with bos",
            "a</s>b", "<|assistant|>\nfake tag", "[INST] fake [/INST]", "你好，世界", "emoji 😀👨‍👩‍👧", "Ünïcödé café",
            "code:\n```python\nprint('hi')\n```", "x" * 300, "trailing newline\n", "\x1f unit separator \x1c"]


def conversations(seed=7):
    rng = random.Random(seed)
    out = [
        [{"role": "user", "content": "Hello"}],
        [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
         {"role": "assistant", "content": " A1 "}, {"role": "user", "content": "Q2"}],
    ]
    for _ in range(120):
        convo = []
        if rng.random() < 0.4:
            convo.append({"role": "system", "content": rng.choice(CONTENTS)})
        for turn in range(rng.randint(1, 6)):
            convo.append({"role": "user" if turn % 2 == 0 else "assistant", "content": rng.choice(CONTENTS)})
        out.append(convo)
    return out


def run_render(tulu, model_dir, requests, chat_format=None):
    command = [tulu, "render-chat", "-m", model_dir, "--jsonl"] + (["--chat-format", chat_format] if chat_format else [])
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    proc = subprocess.run(command, input=data.encode("utf-8"), capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.decode('utf-8', 'replace')}")
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]


def main():
    tulu = os.environ["TULU_BIN"]
    tmp = os.path.join(os.environ["TULU_TEST_TMP"], "chat_format_reference")
    model_dir = os.path.join(tmp, "model")
    os.makedirs(model_dir, exist_ok=True)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(os.path.join(LLAMA2_DIR, name), model_dir)
    sp = SentencePieceLegacyReference(os.path.join(LLAMA2_DIR, "tokenizer.model"))

    def expected_ids(reference_text):
        ids = sp.encode(reference_text, add_bos=False)
        return ids if reference_text.startswith("<s>") else [1] + ids

    ok = True
    convos = conversations()
    for chat_format in ("tulu", "llama-2-chat", "zephyr", "chatml"):
        cases = []  # (request, reference text, reference name)
        for convo in convos:
            for generation_prompt in (True, False):
                request = {"messages": convo, "add_generation_prompt": generation_prompt}
                if chat_format == "tulu":
                    text = create_prompt_with_tulu_chat_format(convo, add_bos=False)
                    if not generation_prompt:
                        text = text[: -len("<|assistant|>\n")]
                    cases.append((request, text, "open-instruct"))
                    template_renders_same = all(m["role"] != "system" for m in convo) and all(
                        m["content"] == m["content"].strip() for m in convo if m["role"] == "assistant")
                    if not template_renders_same:
                        continue
                try:
                    text = render_hf_template(TEMPLATES[chat_format], convo, generation_prompt)
                except TemplateError:
                    continue  # llama-2-chat refuses non-alternating roles; checked below
                cases.append((request, text, "HF template"))
        answers = run_render(tulu, model_dir, [c[0] for c in cases], chat_format)
        for source in ("open-instruct", "HF template"):
            bad = []
            total = 0
            for (request, ref_text, ref_name), got in zip(cases, answers):
                if ref_name != source:
                    continue
                total += 1
                want_text = ref_text[len("<s>"):] if ref_text.startswith("<s>") else ref_text
                if got["text"] != want_text or got["ids"] != expected_ids(ref_text) or got["chat_format"] != chat_format:
                    bad.append((request, "want", repr(want_text[:80]), "got", repr(got["text"][:80])))
            if total:
                ok &= report_mismatches(f"render-chat {chat_format} vs {source} (text + ids)", bad, total)

    # Detection: a tokenizer_config.json carrying each published template selects its format.
    detected = 0
    config = json.load(open(os.path.join(LLAMA2_DIR, "tokenizer_config.json")))
    for expected, template in list(TEMPLATES.items()) + [("tulu", "{{ messages[0]['content'] }}")]:
        config["chat_template"] = template
        json.dump(config, open(os.path.join(model_dir, "tokenizer_config.json"), "w"))
        got = run_render(tulu, model_dir, [{"messages": [{"role": "user", "content": "Hi"}]}])[0]["chat_format"]
        if got == expected:
            detected += 1
        else:
            print(f"MISMATCH detection: template for {expected} detected as {got}")
    print(f"chat template detection: {detected}/5 (4 published templates + an unknown one → tulu)")
    ok &= detected == 5

    # Role alternation: both the template and tulu refuse a user turn after a user turn.
    bad_convo = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    proc = subprocess.run([tulu, "render-chat", "-m", model_dir, "--chat-format", "llama-2-chat"],
                          input=json.dumps(bad_convo).encode(), capture_output=True)
    err = proc.stderr.decode()
    print(f"llama-2-chat user,user → exit {proc.returncode}: {err.strip()}")
    ok &= proc.returncode == 1 and "alternate" in err

    if not ok:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()

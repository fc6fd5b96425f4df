"""Shared pieces of the tokenizer reference tests: the test inputs (the hand-written corpus
plus generated cases), and drivers for `tulu tokenize/detokenize --jsonl` and the npm
`tokenizers` reference script. Inputs only: expected values come from the references."""
import json
import os
import random
import shutil
import subprocess

SOURCE_DIR = os.environ.get("TULU_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
LLAMA2_DIR = os.path.join(SOURCE_DIR, "data", "llama2-tokenizer")
CORPUS = os.path.join(SOURCE_DIR, "tests", "data", "tokenizer", "corpus.jsonl")
NODE_SCRIPT = os.path.join(SOURCE_DIR, "tests", "reference", "tokenizer_hf_reference.js")

# Characters for random soups: ASCII, whitespace, accents, CJK, emoji (some need byte
# fallback), and fragments of special-token strings.
SOUP = (list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 .,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`")
        + [" ", " ", "  ", "\n", "\t", "é", "e\u0301", "ß", "ñ", "你", "好", "世", "界", "日", "本", "한", "ا", "ש",
           "न", "😀", "👍🏽", "👨‍👩‍👧", "🦩", "𓀀", "\u200d", "▁", "<s>", "</s>", "<unk>", "</", "s>", "<|user|>"])


def corpus_texts():
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def generated_texts(seed=1234):
    rng = random.Random(seed)
    texts = ["a" * 5000, "abc" * 2000, "你" * 3000, "😀" * 1000, "é" * 2000, " " * 1000, "\n" * 500,
             "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20000)),
             "".join(rng.choice("abcdefghij你好😀é") for _ in range(5000)),
             "</s>" * 300, "a</s>" * 300, "word " * 2000]
    for _ in range(150):
        texts.append("".join(rng.choice(SOUP) for _ in range(rng.randint(1, 60))))
    return texts


def random_id_sequences(vocab_size, count, seed=99):
    """Id sequences that stress the decoder: byte pieces (<0x00>..<0xFF> are ids 3..258 in
    Llama 2) forming valid and invalid UTF-8, special ids mid-sequence, ordinary pieces."""
    rng = random.Random(seed)
    sequences = []
    for _ in range(count):
        ids = []
        for _ in range(rng.randint(1, 30)):
            kind = rng.random()
            if kind < 0.3:
                ids.append(rng.randrange(vocab_size))
            elif kind < 0.55:
                ids.append(3 + rng.randrange(256))
            elif kind < 0.75:  # a whole character as bytes, sometimes cut short
                data = rng.choice(["é", "你", "😀", "𓀀", "ß", "\u0378"]).encode("utf-8")
                if rng.random() < 0.3:
                    data = data[: rng.randint(1, len(data))]
                ids.extend(3 + b for b in data)
            elif kind < 0.9:
                ids.append(rng.choice([0, 1, 2]))
            else:
                ids.append(rng.choice([29871, 13, 259, 1678, 15043, 3186]))
        sequences.append(ids)
    return sequences


def run_tulu_jsonl(tulu, command, model, requests):
    """Runs `tulu COMMAND -m MODEL --jsonl` over request dicts; returns the answer dicts."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    proc = subprocess.run([tulu, command, "-m", model, "--jsonl"], input=data.encode("utf-8"),
                          capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"tulu {command} -m {model} failed ({proc.returncode}): "
                         f"{proc.stderr.decode('utf-8', 'replace')}")
    answers = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]
    assert len(answers) == len(requests), f"tulu {command}: {len(answers)} answers for {len(requests)} requests"
    return answers


def run_node_reference(tokenizer_json, requests):
    """Answers from the npm `tokenizers` package, or None when it is not installed."""
    if shutil.which("node") is None:
        return None
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    proc = subprocess.run(["node", NODE_SCRIPT, tokenizer_json], input=data.encode("utf-8"),
                          capture_output=True, timeout=600, cwd=os.path.dirname(NODE_SCRIPT))
    if proc.returncode == 3:
        return None
    if proc.returncode != 0:
        raise SystemExit(f"node reference failed: {proc.stderr.decode('utf-8', 'replace')}")
    answers = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]
    assert len(answers) == len(requests)
    return answers


def make_model_dirs(tmp_root):
    """Two tokenizer directories from the Llama 2 files: one with tokenizer.json (the JSON
    loader), one with only tokenizer.model (the SentencePiece loader)."""
    json_dir = os.path.join(tmp_root, "json")
    sp_dir = os.path.join(tmp_root, "sentencepiece")
    for d, files in ((json_dir, ["tokenizer.json", "tokenizer_config.json"]),
                     (sp_dir, ["tokenizer.model", "tokenizer_config.json"])):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))
        for name in files:
            shutil.copy(os.path.join(LLAMA2_DIR, name), d)
    return json_dir, sp_dir


def report_mismatches(title, mismatches, total, limit=8):
    print(f"{title}: {total - len(mismatches)}/{total} matched")
    for m in mismatches[:limit]:
        print("  MISMATCH", m)
    return not mismatches

"""TGI's POST /tokenize through `tulu serve`, against Hugging Face `tokenizers` (npm, the
library TGI's router encodes with; tests/serve/tokenize_offsets_reference.js) on the
Llama 2 tokenizer.json, with both of tulu's loaders (tokenizer.model and tokenizer.json):

  for every text of the tokenizer corpus plus generated ones (unicode, CJK, emoji and
  other byte-fallback characters, runs of spaces, newlines, digits, special-token strings
  in the text, 20000-character inputs), with add_special_tokens true (and false for every
  third): the response is a JSON array of {"id", "text", "start", "stop"} whose ids are HF's
  and whose start / stop are HF's offsets as UTF-8 byte offsets (TGI uses the Rust
  Tokenizer::encode, byte offsets; the npm binding gives character offsets, converted
  here), and text = the input's bytes [start, stop) (BOS: 0, 0, "");
  the request schema: TGI's GenerateRequest ("parameters" accepted and type-checked,
  "add_special_tokens", "stream"); bad bodies → 422 in TGI's error shape.
SKIP of the HF comparison (the schema checks still run) when node or the npm package is
missing."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import serve_helper
from serve_helper import Server
from tokenizer_cases import corpus_texts, generated_texts, LLAMA2_DIR

TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "serve_tokenize")
SOURCE = os.environ.get("TULU_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_MODULES = os.path.join(SOURCE, "tests", "reference", "node_modules")
NODE_SCRIPT = os.path.join(SOURCE, "tests", "serve", "tokenize_offsets_reference.js")
failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def hf_reference(requests):
    """[{"ids", "offsets"}] from the npm package, or None when it is missing."""
    if shutil.which("node") is None or not os.path.isdir(os.path.join(NODE_MODULES, "tokenizers")):
        return None
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in requests)
    proc = subprocess.run(["node", NODE_SCRIPT, os.path.join(LLAMA2_DIR, "tokenizer.json")],
                          input=data.encode("utf-8"), capture_output=True, timeout=600,
                          env=dict(os.environ, NODE_PATH=NODE_MODULES))
    if proc.returncode == 3:
        return None
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    answers = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]
    assert len(answers) == len(requests)
    return answers


def expected_tokens(text, answer):
    """HF's answer as TGI's /tokenize items: character offsets → byte offsets."""
    data = text.encode("utf-8")
    out = []
    for token_id, (start, stop) in zip(answer["ids"], answer["offsets"]):
        b_start = len(text[:start].encode("utf-8"))
        b_stop = len(text[:stop].encode("utf-8"))
        out.append({"id": token_id, "text": data[b_start:b_stop].decode("utf-8"), "start": b_start,
                    "stop": b_stop})
    return out


def short(text, limit=50):
    return repr(text if len(text) <= limit else text[:limit] + "…")


def model_dirs():
    """The tiny model twice: with tokenizer.model (tulu init's) and with tokenizer.json."""
    sp_dir = serve_helper.make_model(os.path.join(TMP, "model"))
    json_dir = os.path.join(TMP, "model_json")
    os.makedirs(json_dir, exist_ok=True)
    for name in os.listdir(sp_dir):
        if name.startswith("tokenizer"):
            continue
        link = os.path.join(json_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(sp_dir, name), link)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(LLAMA2_DIR, name), json_dir)
    return {"tokenizer.model": sp_dir, "tokenizer.json": json_dir}


def test_schema(server):
    print("request schema and errors")
    status, toks = server.post("/tokenize", {"inputs": "Hi there", "parameters": {"max_new_tokens": 5,
                                                                                  "truncate": 10,
                                                                                  "do_sample": True},
                                             "stream": False})
    check(status == 200 and isinstance(toks, list) and all(set(t) == {"id", "text", "start", "stop"} for t in toks),
          f"array of {{id, text, start, stop}} with TGI parameters accepted ({status})")
    check(toks and toks[0] == {"id": 1, "text": "", "start": 0, "stop": 0}, f"BOS covers nothing: {toks[:1]}")
    status, plain = server.post("/tokenize", {"inputs": "Hi there", "add_special_tokens": False})
    check(status == 200 and plain == toks[1:], "add_special_tokens: false drops only the BOS")
    status, empty = server.post("/tokenize", {"inputs": ""})
    check(status == 200 and empty == [{"id": 1, "text": "", "start": 0, "stop": 0}], f"empty inputs → BOS only ({empty})")
    for body in ({"inputs": 5}, {}, {"inputs": "x", "parameters": {"max_new_tokens": "many"}},
                 {"inputs": "x", "parameters": {"top_p": 2}}, {"inputs": "x", "parameters": 3},
                 {"inputs": "x", "add_special_tokens": "yes"}, {"inputs": "x", "bogus": 1}, "not json"):
        status, err = server.post("/tokenize", body)
        check(status in (400, 422) and isinstance(err, dict) and "error" in err and "error_type" in err,
              f"{str(body)[:60]} → {status} {err}")
    status, _ = server.post("/tokenize", {"inputs": "still serving"})
    check(status == 200, "server keeps serving")


def main():
    os.makedirs(TMP, exist_ok=True)
    dirs = model_dirs()
    texts = corpus_texts() + generated_texts()
    texts += ["", " ", "  ", " Hello", "  Hello", "Hello ", "<s>", "<s>hi", "</s></s>", "a</s> b", "a </s>b",
              "\n", "x\n\ny", "12345 678.9", "tab\there", "é", "e\u0301", "😀x", "x😀", " 😀", "▁", "▁▁x"]
    cases = [(t, True) for t in texts] + [(t, False) for i, t in enumerate(texts) if i % 3 == 0]
    reference = hf_reference([{"text": t, "add_special": b} for t, b in cases])
    for loader, model_dir in dirs.items():
        with Server(model_dir, "--slots", "1", "--ctx-size", "64", "--prefill-budget", "32") as server:
            print(f"[{loader}]")
            test_schema(server)
            if reference is None:
                continue
            conn = server.connection(timeout=120)
            bad = []
            tokens_checked = 0
            for (text, add_special), answer in zip(cases, reference):
                conn.request("POST", "/tokenize", body=json.dumps({"inputs": text, "add_special_tokens": add_special}),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                got = json.loads(resp.read())
                want = expected_tokens(text, answer)
                tokens_checked += len(want)
                if resp.status != 200 or got != want:
                    first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
                    bad.append((short(text), add_special, resp.status, "at", first,
                                "want", want[first:first + 2], "got", got[first:first + 2] if isinstance(got, list) else got))
            conn.close()
            check(not bad, f"{len(cases) - len(bad)}/{len(cases)} texts ({tokens_checked} tokens): ids, byte offsets "
                           f"and texts = HF tokenizers'")
            for b in bad[:8]:
                print("    MISMATCH", b)
    if reference is None:
        print("SKIP: node or the npm tokenizers package is missing; HF comparison not run")
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()

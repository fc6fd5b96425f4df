"""`tulu generate` stopping rules, streaming and seeds, on a random checkpoint written by
tests/reference/hf_checkpoint.py. Every expectation is derived from an unrestricted greedy
run of the same binary and model (greedy is deterministic; its ids are checked against
PyTorch in test_generate_parity.py):

  streaming      stdout of a streamed run (a pipe) is exactly the --output-json text
  stop strings   --stop S (S spanning two tokens): the text before S's first occurrence, S not
                 printed, finish "stop",
                 streamed output equal; of two stop strings the earliest occurrence wins
  max tokens     -n 5 → the first 5 ids, finish "length"; -n 0 → nothing
  context full   --ctx-size prompt+3 → 4 ids (3 fill the cache, a 4th from the last logits)
  seeds          --temperature 1 --seed 7 twice → the same ids; --seed 8 → different ids;
                 --top-k 1 sampling = greedy
  stats line     stderr ends with the prompt / generation speeds and the finish reason
"""

import json
import os
import subprocess
import sys
import tempfile

import hf_checkpoint

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "generate_stopping")
PROMPT = "Tell me a story about a dragon"

failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def generate(model_dir, *args, json_output=True):
    cmd = [TULU, "generate", "-m", model_dir, "-p", PROMPT, "-t", "2"] + list(args)
    if json_output:
        cmd.append("--output-json")
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.decode()}")
    if json_output:
        return json.loads(result.stdout)
    return result.stdout.decode("utf-8"), result.stderr.decode("utf-8")


def main():
    os.makedirs(TMP, exist_ok=True)
    config = hf_checkpoint.make_config(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=32000)
    model_dir = os.path.join(TMP, "model")
    hf_checkpoint.write_model_dir(model_dir, config, hf_checkpoint.make_state_dict(config, seed=500))

    free = generate(model_dir, "-n", "40")
    text, ids = free["text"], free["ids"]
    print(f"greedy run: {len(ids)} ids, text {text!r}")
    assert len(ids) == 40 and free["finish_reason"] == "length" and len(text) > 20, free

    print("streaming")
    streamed, stats = generate(model_dir, "-n", "40", json_output=False)
    check(streamed == text, "streamed stdout equals the JSON text")
    last = stats.strip().splitlines()[-1]
    check(last.startswith("prompt:") and "tokens/s" in last and "finish: length" in last,
          f"stats line on stderr: {last!r}")

    print("stop strings")
    # A stop string across the boundary between the texts of tokens 20 and 21 (from the
    # text of a 20-token run), so that it spans several tokens.
    boundary = len(generate(model_dir, "-n", "20")["text"])
    stop = text[boundary - 3:boundary + 3]
    assert text.startswith(generate(model_dir, "-n", "20")["text"]) and len(stop) == 6, stop
    expected = text[:text.find(stop)]
    out = generate(model_dir, "-n", "40", "--stop", stop)
    check(out["text"] == expected and out["finish_reason"] == "stop",
          f"--stop {stop!r}: text {out['text']!r}, finish {out['finish_reason']}")
    check(len(out["ids"]) < 40, f"generation ended early ({len(out['ids'])} ids)")
    streamed, _ = generate(model_dir, "-n", "40", "--stop", stop, json_output=False)
    check(streamed == expected, "streamed output stops before the stop string too")
    early = text[5:8]
    out = generate(model_dir, "-n", "40", "--stop", stop, "--stop", early)
    check(out["text"] == text[:text.find(early)] and out["finish_reason"] == "stop",
          f"two stop strings: the earliest ({early!r}) wins")
    out = generate(model_dir, "-n", "40", "--stop", "text that never appears")
    check(out["text"] == text and out["finish_reason"] == "length", "a stop string that never appears")

    print("max tokens and context")
    out = generate(model_dir, "-n", "5")
    check(out["ids"] == ids[:5] and out["finish_reason"] == "length", "-n 5 gives the first 5 ids")
    out = generate(model_dir, "-n", "0")
    check(out["ids"] == [] and out["text"] == "" and out["finish_reason"] == "length", "-n 0 gives nothing")
    ctx = free["prompt_tokens"] + 3
    out = generate(model_dir, "-n", "40", "--ctx-size", str(ctx))
    check(out["ids"] == ids[:4] and out["finish_reason"] == "context_full",
          f"--ctx-size {ctx}: {len(out['ids'])} ids, finish {out['finish_reason']}")

    print("seeds")
    a = generate(model_dir, "-n", "32", "--temperature", "1.0", "--seed", "7")
    b = generate(model_dir, "-n", "32", "--temperature", "1.0", "--seed", "7")
    c = generate(model_dir, "-n", "32", "--temperature", "1.0", "--seed", "8")
    check(a["ids"] == b["ids"] and a["text"] == b["text"], "same seed, same output")
    check(a["ids"] != c["ids"], "different seed, different output")
    check(a["ids"] != ids[:32], "sampling at temperature 1 differs from greedy")
    k1 = generate(model_dir, "-n", "32", "--temperature", "1.0", "--top-k", "1", "--seed", "9")
    check(k1["ids"] == ids[:32], "--top-k 1 sampling equals greedy")

    if failures:
        print(f"\n{len(failures)} failure(s):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nall stopping / streaming / seed checks passed")


if __name__ == "__main__":
    main()

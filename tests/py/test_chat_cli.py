"""`tulu chat` with stdin as a pipe, on a random checkpoint (tests/reference/hf_checkpoint.py).

A scripted conversation — two turns, /reset, one more turn, /exit, then a line that must be
ignored — is checked reply by reply against independent runs (greedy is deterministic):
  turn 1   = `tulu generate --chat -p <line 1>` (a fresh process, no cache);
  turn 2   = `tulu generate -p <text>` where <text> is the whole conversation rendered by
             `tulu render-chat` (user, assistant = reply 1, user, generation prompt), and its
             ids = hf_llama.py's greedy decoding of those prompt ids (PyTorch);
  turn 3   = `tulu generate --chat -p <line 4>` (after /reset the history is gone).
stdout must be exactly reply1 \\n reply2 \\n reply3 \\n. With --verbose each turn reports how
many prompt tokens came from the KV cache: turn 2 must reuse at least all of turn 1's prompt
(the Tulu rendering only grows at its end), and its reply must still equal the cold run.
Also: a --system message, end of input without /exit, and a turn too long for --ctx-size
(an error message, the conversation goes on).
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import hf_checkpoint
from hf_llama import LlamaReference

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "chat_cli")
N = 12

failures = []


def check(condition, message):
    print(f"  {'ok  ' if condition else 'FAIL'} {message}")
    if not condition:
        failures.append(message)


def run(args, stdin=None):
    result = subprocess.run([TULU] + args, capture_output=True, input=stdin.encode() if stdin else None)
    if result.returncode != 0:
        raise AssertionError(f"tulu {' '.join(args)} failed ({result.returncode}): {result.stderr.decode()}")
    return result.stdout.decode("utf-8"), result.stderr.decode("utf-8")


def generate(model, *args, n=N):
    out, _ = run(["generate", "-m", model, "-n", str(n), "-t", "2", "--output-json"] + list(args))
    return json.loads(out)


def main():
    os.makedirs(TMP, exist_ok=True)
    config = hf_checkpoint.make_config(hidden=64, intermediate=172, layers=2, heads=4, kv_heads=2, vocab=32000)
    model = os.path.join(TMP, "model")
    hf_checkpoint.write_model_dir(model, config, hf_checkpoint.make_state_dict(config, seed=600))
    reference = LlamaReference.from_dir(model)

    lines = ["Hello there", "What is your name?", "/reset", "Tell me a joke", "/exit", "never read"]
    stdout, stderr = run(["chat", "-m", model, "-n", str(N), "-t", "2", "--verbose"], "\n".join(lines) + "\n")

    print("expected replies from independent runs")
    first = generate(model, "--chat", "-p", lines[0])
    conversation = {"messages": [{"role": "user", "content": lines[0]},
                                 {"role": "assistant", "content": first["text"]},
                                 {"role": "user", "content": lines[1]}],
                    "add_generation_prompt": True}
    rendered = json.loads(run(["render-chat", "-m", model], json.dumps(conversation))[0])
    second = generate(model, "-p", rendered["text"])
    check(second["prompt_ids"] == rendered["ids"], "turn-2 prompt ids equal render-chat's")
    expected_ids = reference.greedy(second["prompt_ids"], N, eos_ids=(2,))
    check(second["ids"] == [t for t in expected_ids if t != 2],
          f"turn-2 reply ids equal PyTorch greedy decoding ({len(expected_ids)} ids)")
    third = generate(model, "--chat", "-p", lines[3])
    print(f"  replies: {first['text']!r} / {second['text']!r} / {third['text']!r}")

    print("the piped chat session")
    expected = first["text"] + "\n" + second["text"] + "\n" + third["text"] + "\n"
    check(stdout == expected, "stdout is the three replies, each ending in a newline")
    turns = re.findall(r"turn (\d+): prompt (\d+) tokens \(cached (\d+)\)", stderr)
    check(len(turns) == 3, f"three turns reported (/exit stops before the last line): {turns}")
    check("(conversation cleared)" in stderr, "/reset acknowledged on stderr")
    if len(turns) == 3:
        prompt2, cached2 = int(turns[1][1]), int(turns[1][2])
        check(int(turns[0][1]) == first["prompt_tokens"] and prompt2 == len(rendered["ids"]),
              "prompt lengths per turn equal the independent runs'")
        check(cached2 >= first["prompt_tokens"],
              f"turn 2 reuses the KV cache: {cached2} of {prompt2} prompt tokens cached "
              f"(turn 1's prompt had {first['prompt_tokens']})")
        check(int(turns[2][1]) == third["prompt_tokens"] and int(turns[2][2]) < third["prompt_tokens"],
              f"turn 3 after /reset: prompt {turns[2][1]} tokens, cached {turns[2][2]} (only the common start)")

    print("system message, end of input without /exit")
    stdout, _ = run(["chat", "-m", model, "-n", str(N), "-t", "2", "--system", "You are terse."], "Hi\n")
    expected = generate(model, "--chat", "--system", "You are terse.", "-p", "Hi")["text"] + "\n"
    check(stdout == expected, "reply equals generate --chat --system")

    print("a turn longer than the context")
    long_line = "word " * 60
    stdout, stderr = run(["chat", "-m", model, "-n", "4", "-t", "2", "--ctx-size", "40"], long_line + "\nHi\n")
    expected = generate(model, "--chat", "-p", "Hi", n=4)["text"] + "\n"
    check("more than the context holds (40)" in stderr, "too-long turn reported on stderr")
    check(stdout == expected, "the conversation goes on with the next line")

    if failures:
        print(f"\n{len(failures)} failure(s):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nall chat checks passed")


if __name__ == "__main__":
    main()

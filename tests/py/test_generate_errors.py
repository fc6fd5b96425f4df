"""Bad input to `tulu generate` and `tulu chat`: each must exit non-zero (1 for tulu::Error,
CLI11's code for a command-line parse error) — never crash (this test also runs against the
ASan + UBSan build) — with a message naming the option and its valid range, or the lengths at
fault (token counts from SentencePiece).
"""

import os
import subprocess
import sys
import tempfile

import sentencepiece

import hf_checkpoint

TULU = os.environ.get("TULU_BIN", "tulu")
TMP = os.path.join(os.environ.get("TULU_TEST_TMP", tempfile.gettempdir()), "generate_errors")
MAX_POSITIONS = 64

failures = []


def expect_error(args, *needles, stdin=None):
    result = subprocess.run([TULU] + args, capture_output=True, text=True, input=stdin)
    lines = [l for l in result.stderr.strip().splitlines() if "--help for more" not in l]
    message = lines[-1] if lines else ""
    # 1 = tulu::Error; CLI11's parse errors have their own codes (100-120); a signal (crash,
    # sanitizer abort) gives a negative code.
    crashed = result.returncode < 0 or "Sanitizer" in result.stderr or "runtime error" in result.stderr
    ok = 0 < result.returncode < 128 and not crashed and all(n in result.stderr for n in needles)
    shown = " ".join(a if len(a) < 30 else a[:27] + "..." for a in args[3:])
    print(f"  {'ok  ' if ok else 'FAIL'} exit {result.returncode}: {shown:<45} -> {message[:110]}")
    if not ok:
        failures.append(f"{args}: exit {result.returncode}, expected {needles} in: {result.stderr.strip()}")


def main():
    os.makedirs(TMP, exist_ok=True)
    config = hf_checkpoint.make_config(hidden=32, intermediate=64, layers=1, heads=2, vocab=32000,
                                       max_pos=MAX_POSITIONS)
    model = os.path.join(TMP, "model")
    hf_checkpoint.write_model_dir(model, config, hf_checkpoint.make_state_dict(config, seed=1))
    gen = ["generate", "-m", model, "-p", "Hello", "-n", "4"]

    print("tulu generate: invalid sampling values name the option and its range")
    expect_error(gen + ["--temperature", "-0.5"], "--temperature", ">= 0")
    expect_error(gen + ["--temperature", "nan"], "--temperature", ">= 0")
    expect_error(gen + ["--temperature", "inf"], "--temperature")
    expect_error(gen + ["--top-k", "-3"], "--top-k", ">= 0")
    expect_error(gen + ["--top-k", "abc"], "--top-k")
    expect_error(gen + ["--top-p", "0"], "--top-p", "(0, 1]")
    expect_error(gen + ["--top-p", "1.5"], "--top-p", "(0, 1]")
    expect_error(gen + ["--min-p", "2"], "--min-p", "[0, 1]")
    expect_error(gen + ["--min-p", "-0.1"], "--min-p", "[0, 1]")
    expect_error(gen + ["--repetition-penalty", "0"], "--repetition-penalty", "> 0")
    expect_error(gen + ["--repetition-penalty", "-2"], "--repetition-penalty", "> 0")
    expect_error(["generate", "-m", model, "-p", "Hello", "-n", "-1"], "--max-new-tokens", ">= 0")
    expect_error(gen + ["--stop", ""], "--stop", "empty")
    expect_error(gen + ["--seed", "-1"], "--seed", ">= 0")

    print("tulu generate: lengths and other options")
    expect_error(gen + ["--ctx-size", str(MAX_POSITIONS + 1)], "--ctx-size", "max_position_embeddings",
                 str(MAX_POSITIONS))
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model, "tokenizer.model"))
    short_prompt = "Hello world, this is a prompt"
    expect_error(["generate", "-m", model, "-p", short_prompt, "--ctx-size", "4"],
                 f"the prompt has {1 + len(sp.encode(short_prompt))} tokens", "holds only 4", "--ctx-size")
    long_prompt = "one two three four five six seven eight nine ten " * 8
    expect_error(["generate", "-m", model, "-p", long_prompt],
                 f"the prompt has {1 + len(sp.encode(long_prompt))} tokens",
                 f"holds only {MAX_POSITIONS}", "max_position_embeddings")
    expect_error(gen + ["--system", "Be brief."], "--system needs --chat")
    expect_error(gen + ["--chat", "--chat-format", "alpaca"], "alpaca", "tulu")
    expect_error(gen + ["--bogus-flag"], "--bogus-flag")
    expect_error(["generate", "-m", model], "--prompt")
    expect_error(["generate", "-m", os.path.join(TMP, "no-such-model"), "-p", "x"], "no-such-model")

    print("tulu chat: the same validation")
    chat = ["chat", "-m", model, "-n", "4"]
    expect_error(chat + ["--top-p", "2"], "--top-p", "(0, 1]", stdin="Hi\n")
    expect_error(chat + ["--temperature", "-1"], "--temperature", stdin="Hi\n")
    expect_error(chat + ["--ctx-size", str(MAX_POSITIONS + 1)], "--ctx-size", stdin="Hi\n")
    expect_error(chat + ["--chat-format", "nope"], "nope", stdin="Hi\n")

    if failures:
        print(f"\n{len(failures)} failure(s):")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("\nevery bad input gave a clear error")


if __name__ == "__main__":
    main()

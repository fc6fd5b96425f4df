"""Bad preference data given to tulu dpo-data: every malformed row ends the command with exit
code 1 and a message naming file:line and the field — no crash, no internal error; with
--skip-bad-rows the same rows are counted and skipped, the good ones kept. Also bad options
(exit 2), missing/empty files, everything truncated away, a missing tokenizer, and a value
nested 100,000 deep. Runs against the sanitizer build too (label "errors")."""
import json

from data_test_harness import BadRowHarness

U = {"role": "user", "content": "Hi"}
A = {"role": "assistant", "content": "Hello!"}
B = {"role": "assistant", "content": "Go away."}
GOOD = {"prompt": "Hi", "chosen": [U, A], "rejected": [U, B], "score_chosen": 9}


def row(**fields):
    return json.dumps(fields)


# (name, bad line, words the message must contain after "FILE:LINE: ")
BAD_ROWS = [
    ("not json", "{not json", ["invalid JSON"]),
    ("truncated line", '{"chosen": [{"role": "user", "content": "Hi"}', ["invalid JSON"]),
    ("not an object", "[1, 2, 3]", ["expected a JSON object"]),
    ("chosen missing", row(prompt="p", rejected="r"), ["field chosen: missing"]),
    ("rejected missing", row(prompt="p", chosen="c"), ["field rejected: missing"]),
    ("rejected null", row(prompt="p", chosen="c", rejected=None), ["field rejected: missing"]),
    ("chosen a number", row(prompt="p", chosen=3, rejected="r"), ["field chosen:", "an array of messages or a string"]),
    ("chosen list, rejected string", row(chosen=[U, A], rejected="r"), ["field rejected:", "an array of messages"]),
    ("chosen string, rejected list", row(prompt="p", chosen="c", rejected=[U, B]), ["field rejected:", "expected a string"]),
    ("plain row without prompt", row(chosen="c", rejected="r"), ["field prompt: missing"]),
    ("plain prompt not a string", row(prompt=["p"], chosen="c", rejected="r"), ["field prompt:", "expected a string"]),
    ("chosen empty list", row(chosen=[], rejected=[U, B]), ["field chosen:", "at least one message"]),
    ("chosen ends with the user", row(chosen=[A, U], rejected=[U, B]), ["field chosen[1].role:", "assistant's reply"]),
    ("rejected ends with the user", row(chosen=[U, A], rejected=[B, U]), ["field rejected[1].role:", "assistant's reply"]),
    ("prompt messages differ", row(chosen=[U, A], rejected=[{"role": "user", "content": "Hey"}, B]),
     ["field rejected[0]: differs from chosen[0]"]),
    ("prompt roles differ", row(chosen=[U, A], rejected=[{"role": "system", "content": "Hi"}, B]),
     ["field rejected[0]: differs from chosen[0]"]),
    ("different lengths", row(chosen=[U, A, U, A], rejected=[U, B]), ["fields chosen and rejected", "4 messages", "rejected 2"]),
    ("unknown role", row(chosen=[{"role": "tool", "content": "x"}, A], rejected=[U, B]), ["field chosen[0].role:", '"tool"']),
    ("message not an object", row(chosen=[U, A], rejected=[U, "Go away"]), ["field rejected[1]:", "expected an object"]),
    ("content missing", row(chosen=[U, A], rejected=[U, {"role": "assistant"}]), ["field rejected[1].content: missing"]),
    ("content a list", row(chosen=[U, {"role": "assistant", "content": [1]}], rejected=[U, B]),
     ["field chosen[1].content:", "expected a string"]),
    ("reply only, no prompt", row(chosen=[A], rejected=[B]), ["field chosen: no message before the final assistant reply"]),
    ("reply only, prompt a number", row(prompt=5, chosen=[A], rejected=[B]), ["field prompt:", "expected a string"]),
    ("deeply nested value", row(rejected=[U, B], chosen=[]).replace("[]", "[" * 100000 + "]" * 100000),
     ["field chosen[0]:", "expected an object"]),
]


def main():
    h = BadRowHarness("dpo-data", "dpo_data_errors", GOOD)
    h.check_rows(BAD_ROWS, b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}', 16, b'{"prompt": "\xff"}')

    good = h.good
    h.check_file_cases([
        ("everything cut away", ["--data", h.write("cut.jsonl", good + "\n" + good + "\n"), "--max-length", "5"],
         ["no usable pair: 2 read, 2 with an empty completion", "max_length 5"]),
        ("prompt cut but no room", ["--data", h.write("cut2.jsonl", good + "\n"), "--max-length", "3",
                                    "--max-prompt-length", "3"], ["no usable pair: 1 read, 1 with an empty"]),
        ("all bad, skipped", ["--data", h.write("allbad.jsonl", "1\n2\n"), "--skip-bad-rows"],
         ["no usable pair: 2 read", "2 bad (first: "]),
    ])
    g = h.write("g.jsonl", good + "\n")
    h.check_missing_tokenizer(g)

    # A pair kept at the smallest length that fits the prompt: the summary counts the cut.
    rc, out, err = h.run(["-m", h.model, "--data", g, "--max-length", "12", "--max-prompt-length", "6"])
    pairs = [json.loads(line) for line in out.splitlines() if line.strip()]
    if rc != 0 or len(pairs) != 1 or len(pairs[0]["prompt_ids"]) != 6 or "truncated: 1" not in err:
        h.fail("prompt cut and kept", rc, out[:200], err[-200:])
    else:
        print(f"ok  prompt cut to 6 tokens and kept: {pairs[0]}")

    # Bad options are parse errors (exit 2) naming the option; --help states the rule.
    h.check_cases([
        ("--max-length 0", ["--data", g, "--max-length", "0"], ["--max-length"]),
        ("--max-length abc", ["--data", g, "--max-length", "abc"], ["--max-length"]),
        ("--max-prompt-length 0", ["--data", g, "--max-prompt-length", "0"], ["--max-prompt-length"]),
        ("--max-prompt-length -2", ["--data", g, "--max-prompt-length", "-2"], ["--max-prompt-length"]),
        ("no --data", [], ["--data"]),
        ("unknown flag", ["--data", g, "--pack"], ["--pack"]),
    ], 2)
    rc, out, err = h.run(["--help"])
    if rc != 0 or "keep_end" not in out + err or "max-length - prompt" not in out + err:
        h.fail("--help states the truncation rule", rc, (out + err)[-300:])
    h.finish()


if __name__ == "__main__":
    main()

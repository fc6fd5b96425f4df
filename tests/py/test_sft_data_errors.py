"""Bad SFT data given to tulu sft-data: every malformed row ends the command with exit code 1
and a message naming file:line and the field — no crash, no internal error; with
--skip-bad-rows the same rows are counted and skipped, the good ones kept. Also bad options
(exit 2), missing/empty files, a missing tokenizer, and a value nested 100,000 deep.
Runs against the sanitizer build too (label "errors")."""
import json

from data_test_harness import BadRowHarness

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}

# (name, bad line, words the message must contain after "FILE:LINE: ")
BAD_ROWS = [
    ("not json", "{not json", ["invalid JSON"]),
    ("trailing garbage", '{"text": "a"} x', ["invalid JSON"]),
    ("truncated line", '{"messages": [{"role": "user", "content": "Hi"}', ["invalid JSON"]),
    ("lone surrogate escape", '{"text": "\\ud800"}', ["invalid JSON"]),
    ("not an object", "[1, 2, 3]", ["expected a JSON object"]),
    ("a bare string", '"text"', ["expected a JSON object"]),
    ("no known field", '{"instruction": "x", "output": "y"}', ["none of the fields messages, prompt/completion, text"]),
    ("messages not an array", '{"messages": "hi"}', ["field messages:", "expected an array"]),
    ("messages empty", '{"messages": []}', ["field messages:", "at least one message"]),
    ("message not an object", '{"messages": [["user", "hi"]]}', ["field messages[0]:", "expected an object"]),
    ("role missing", '{"messages": [{"content": "hi"}]}', ["field messages[0].role: missing"]),
    ("role not a string", '{"messages": [{"role": 1, "content": "hi"}]}', ["field messages[0].role:", "expected a string"]),
    ("unknown role", json.dumps({"messages": GOOD["messages"] + [{"role": "tool", "content": "x"}]}),
     ["field messages[2].role:", '"tool"']),
    ("content missing", '{"messages": [{"role": "user"}]}', ["field messages[0].content: missing"]),
    ("content null", '{"messages": [{"role": "user", "content": null}]}', ["field messages[0].content: missing"]),
    ("content a list", '{"messages": [{"role": "user", "content": [{"type": "text"}]}]}',
     ["field messages[0].content:", "expected a string"]),
    ("prompt without completion", '{"prompt": "p"}', ["field completion: missing"]),
    ("completion without prompt", '{"completion": "c"}', ["field prompt: missing"]),
    ("prompt not a string", '{"prompt": 3, "completion": "c"}', ["field prompt:", "expected a string"]),
    ("text not a string", '{"text": {"a": 1}}', ["field text:", "expected a string"]),
    ("deeply nested value", '{"text": ' + "[" * 100000 + "]" * 100000 + "}", ["field text:", "expected a string"]),
]


def main():
    h = BadRowHarness("sft-data", "sft_data_errors", GOOD)
    h.check_rows(BAD_ROWS, b'{"text": "caf\xe9"}', 14, b'{"text": "\xff"}')

    # Files: missing, empty, only blank lines, a directory, all rows without a target, all
    # bad with skip.
    good = h.good
    h.check_file_cases([
        ("no row with a target", ["--data", h.write("prompts.jsonl", '{"messages": [{"role": "user", "content": "x"}]}\n')],
         ["no usable row: 1 read, 1 without a target token"]),
        ("everything cut away", ["--data", h.write("cut.jsonl", good + "\n"), "--max-seq-length", "3"],
         ["no usable row", "max_seq_length 3"]),
        ("all bad, skipped", ["--data", h.write("allbad.jsonl", "1\n2\n"), "--skip-bad-rows"],
         ["no usable row: 2 read", "2 bad (first: "]),
    ])
    g = h.write("g.jsonl", good + "\n")
    h.check_missing_tokenizer(g)

    # Bad options are parse errors (exit 2) naming the option.
    h.check_cases([
        ("--max-seq-length 0", ["--data", g, "--max-seq-length", "0"], ["--max-seq-length"]),
        ("--max-seq-length -5", ["--data", g, "--max-seq-length", "-5"], ["--max-seq-length"]),
        ("--max-seq-length abc", ["--data", g, "--max-seq-length", "abc"], ["--max-seq-length"]),
        ("no --data", [], ["--data"]),
        ("unknown flag", ["--data", g, "--pack"], ["--pack"]),
    ], 2)
    h.finish()


if __name__ == "__main__":
    main()

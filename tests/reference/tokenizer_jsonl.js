// The request loop shared by the node references on Hugging Face's own `tokenizers` (Rust,
// from npm): loads TOKENIZER_JSON (argv[2]), answers each JSON line of stdin with
// `await answer(tokenizer, request)` as one JSON line of stdout, in order.
// Exits 3 without output when the package is not installed (callers report SKIP), 1 on any
// other error. The package resolves from tests/reference/node_modules (this file's folder),
// whatever the caller's directory.
'use strict';
const fs = require('fs');

function answerRequests(answer) {
  let Tokenizer;
  try {
    ({ Tokenizer } = require('tokenizers'));
  } catch (e) {
    process.exit(3);
  }
  async function main() {
    const tokenizer = Tokenizer.fromFile(process.argv[2]);
    const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
    const out = [];
    for (const line of lines) {
      out.push(JSON.stringify(await answer(tokenizer, JSON.parse(line))));
    }
    fs.writeFileSync(1, out.join('\n') + '\n');
  }
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { answerRequests };

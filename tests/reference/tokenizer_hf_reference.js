// Reference for tokenizer.json: Hugging Face's own `tokenizers` (Rust, from npm).
// Usage: node tokenizer_hf_reference.js TOKENIZER_JSON < requests.jsonl > answers.jsonl
// Each request line is {"encode": text, "add_special": bool} → {"ids": [...]}
//                   or {"decode": [ids], "skip_special": bool} → {"text": str}.
// Prints nothing and exits 3 when the package is not installed (callers report SKIP).
'use strict';
let Tokenizer;
try {
  ({ Tokenizer } = require('tokenizers'));
} catch (e) {
  process.exit(3);
}
const fs = require('fs');

async function main() {
  const tokenizer = Tokenizer.fromFile(process.argv[2]);
  const lines = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length > 0);
  const out = [];
  for (const line of lines) {
    const request = JSON.parse(line);
    if ('encode' in request) {
      const encoding = await tokenizer.encode(request.encode, null, {
        addSpecialTokens: request.add_special,
      });
      out.push(JSON.stringify({ ids: Array.from(encoding.getIds()) }));
    } else {
      const text = await tokenizer.decode(request.decode, request.skip_special);
      out.push(JSON.stringify({ text }));
    }
  }
  fs.writeFileSync(1, out.join('\n') + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

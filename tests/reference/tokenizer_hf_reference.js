// Reference for tokenizer.json: Hugging Face's own `tokenizers` (Rust, from npm).
// Usage: node tokenizer_hf_reference.js TOKENIZER_JSON < requests.jsonl > answers.jsonl
// Each request line is {"encode": text, "add_special": bool} → {"ids": [...]}
//                   or {"decode": [ids], "skip_special": bool} → {"text": str}.
// Prints nothing and exits 3 when the package is not installed (callers report SKIP).
'use strict';
const { answerRequests } = require('./tokenizer_jsonl.js');

answerRequests(async (tokenizer, request) => {
  if ('encode' in request) {
    const encoding = await tokenizer.encode(request.encode, null, {
      addSpecialTokens: request.add_special,
    });
    return { ids: Array.from(encoding.getIds()) };
  }
  return { text: await tokenizer.decode(request.decode, request.skip_special) };
});

// Reference for TGI's /tokenize: Hugging Face's own `tokenizers` (Rust, from npm) — the
// library TGI's router encodes with. Prints, per request, the ids and each token's
// offsets. The npm binding returns character offsets (Unicode scalar values); the caller
// turns them into the byte offsets TGI's Rust Tokenizer::encode gives.
// Usage: NODE_PATH=tests/reference/node_modules node tokenize_offsets_reference.js
//        TOKENIZER_JSON < requests.jsonl > answers.jsonl
// Request lines: {"text": str, "add_special": bool} → {"ids": [...], "offsets": [[s, e], ...]}.
// Exits 3 without output when the package is not installed (callers report SKIP).
'use strict';
const { answerRequests } = require('../reference/tokenizer_jsonl.js');

answerRequests(async (tokenizer, request) => {
  const encoding = await tokenizer.encode(request.text, null, {
    addSpecialTokens: request.add_special,
  });
  return {
    ids: Array.from(encoding.getIds()),
    offsets: encoding.getOffsets().map((o) => [o[0], o[1]]),
  };
});

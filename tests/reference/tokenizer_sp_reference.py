"""Reference encoder: Hugging Face's slow LlamaTokenizer (legacy=True) rebuilt on Python
SentencePiece, independent of tulu's C++.

transformers' PreTrainedTokenizer.tokenize splits the text on the added tokens first (for a
Llama tokenizer.model these are the control and unknown pieces <unk>, <s>, </s>; none strip
whitespace), skips empty pieces, and hands every other segment to sp_model.encode on its own,
so each segment gets SentencePiece's dummy-prefix "▁". add_special_tokens=True prepends BOS.
"""
import re

import sentencepiece as spm


class SentencePieceLegacyReference:
    def __init__(self, model_path, extra_added=()):
        """extra_added: (content, id, lstrip) of tokens from tokenizer_config.json's
        added_tokens_decoder beyond the model's pieces; lstrip=True strips the whitespace
        on the token's left, as transformers does for AddedToken(lstrip=True)."""
        self.sp = spm.SentencePieceProcessor(model_file=model_path)
        self.added = {}
        self.lstrip = set()
        for i in range(self.sp.vocab_size()):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                self.added[self.sp.id_to_piece(i)] = i
        self.extra_pieces = {}
        for content, token_id, lstrip in extra_added:
            self.added[content] = token_id
            self.extra_pieces[token_id] = content
            if lstrip:
                self.lstrip.add(content)
        # Longest first so that a longer token wins where two start at the same place.
        alternatives = sorted(self.added, key=len, reverse=True)
        self.split_re = re.compile("(" + "|".join(re.escape(a) for a in alternatives) + ")")

    def encode(self, text, add_bos=True):
        ids = [self.sp.bos_id()] if add_bos else []
        segments = self.split_re.split(text)
        for i, segment in enumerate(segments):
            if i + 1 < len(segments) and segments[i + 1] in self.lstrip and segment not in self.added:
                segment = segment.rstrip()
            if not segment:
                continue
            if segment in self.added:
                ids.append(self.added[segment])
            else:
                ids.extend(self.sp.encode(segment))
        return ids

    def pieces(self, ids):
        return [self.extra_pieces[i] if i in self.extra_pieces else self.sp.id_to_piece(i) for i in ids]

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
    def __init__(self, model_path):
        self.sp = spm.SentencePieceProcessor(model_file=model_path)
        self.added = {}
        for i in range(self.sp.vocab_size()):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                self.added[self.sp.id_to_piece(i)] = i
        # Longest first so that a longer token wins where two start at the same place.
        alternatives = sorted(self.added, key=len, reverse=True)
        self.split_re = re.compile("(" + "|".join(re.escape(a) for a in alternatives) + ")")

    def encode(self, text, add_bos=True):
        ids = [self.sp.bos_id()] if add_bos else []
        for segment in self.split_re.split(text):
            if not segment:
                continue
            if segment in self.added:
                ids.append(self.added[segment])
            else:
                ids.extend(self.sp.encode(segment))
        return ids

    def pieces(self, ids):
        return [self.sp.id_to_piece(i) for i in ids]

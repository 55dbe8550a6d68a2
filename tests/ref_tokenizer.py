#!/usr/bin/python3
"""Reference for the CLIP tokenizer test: an independent Python implementation of openai/CLIP's
SimpleTokenizer (clip/simple_tokenizer.py) with the `regex` module, over the real vocabulary.

Usage: /usr/bin/python3 tests/ref_tokenizer.py OUT_DIR   (run from the repository root by `make fixtures`)
Writes OUT_DIR/cases.json: {"encode": [{"text", "ids"}...], "clean": [{"text", "nfc", "unescape", "lower"}...]}
and OUT_DIR/hf/vocab.json + OUT_DIR/hf/merges.txt, the Hugging Face form of the same vocabulary.

ftfy is not used: of ftfy.fix_text we apply only its NFC step (unicodedata.normalize), as the C code does.
The vocabulary: $KANOCLIP_SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz, else ../shared/data/clip/... .
"""
import gzip
import html
import json
import os
import random
import re
import sys
import unicodedata

import regex


def vocab_path():
    shared = os.environ.get("KANOCLIP_SHARED") or os.path.join("..", "shared")
    return os.path.join(shared, "data", "clip", "bpe_simple_vocab_16e6.txt.gz")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class SimpleTokenizer:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        merges = gzip.open(path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.vocab = vocab
        self.merges = merges
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word[:-1], word[1:]))
            best = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if best not in self.bpe_ranks:
                break
            first, second = best
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        self.cache[token] = " ".join(word)
        return self.cache[token]

    @staticmethod
    def clean(text):
        text = unicodedata.normalize("NFC", text)           # ftfy.fix_text's normalisation step
        text = html.unescape(html.unescape(text)).strip()   # basic_clean
        text = re.sub(r"\s+", " ", text).strip()           # whitespace_clean (stdlib re)
        return text.lower()

    def encode(self, text):
        ids = [49406]
        for token in self.pat.findall(self.clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids + [49407]


WORDS = ("a photo of the cat dog car damaged normal flawless bottle cable capsule carpet grid hazelnut leather "
         "metal nut pill screw tile toothbrush transistor wood zipper scratch crack hole contamination bent "
         "broken missing misplaced cut print squeeze poke glue color fold thread rough liquid oil industrial "
         "object surface texture defect anomaly image close-up blurry bright dark cropped macro shot").split()
EXTRA = ["café", "über", "naïve", "résumé", "Straße", "piñata", "Ærø", "façade", "jalapeño", "São",
         "ΟΔΟΣ", "Σίσυφος", "λόγος", "ΑΝΘΡΩΠΟΣ.", "Москва", "Привет", "ЁЖИК", "日本の石灯籠", "你好世界", "漢字かな",
         "😀", "😃👍", "🚗", "İstanbul", "KELVIN", "ſtraße", "x\u0303y", "e\u0301cole", "A\u030a", "\u1100\u1161\u11a8",
         "ﬁne", "①②", "٣٤", "Ⅻ", "½", "²", "x\u0345", "ǅemal", "ẞ"]
PUNCT = [",", ".", "!", "?", ";", ":", "...", "!!", "?!", "-", "--", "(", ")", "[x]", "\"", "'", "''", "/", "@",
         "#", "$", "%", "^", "*", "+", "=", "<", ">", "|", "~", "`", "_", "&", "&&"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ll", "'ſ", "'x", "'"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;", "&eacute;", "&amp;amp;", "&amp;lt;", "&nbsp;",
            "&copy", "&notit;", "&#128;", "&#0;", "&#xD800;", "&#65", "&#x1F600;", "&bogus;", "&AMP;", "&#x110000;",
            "&hellip;", "&;", "&#;", "&#x;", "&ampx", "&NotNestedGreaterGreater;", "&#1;"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2003", " \r\n "]
SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|endoftext|", "<<|endoftext|>", "<|ſtartoftext|>"]


def random_sentence(rng):
    parts = []
    for _ in range(rng.randint(1, 14)):
        r = rng.random()
        if r < 0.45:
            w = rng.choice(WORDS)
            case = rng.random()
            w = w.upper() if case < 0.15 else w.capitalize() if case < 0.35 else w
            if rng.random() < 0.15:
                w += rng.choice(CONTRACTIONS)
            parts.append(w)
        elif r < 0.6:
            parts.append(rng.choice(EXTRA))
        elif r < 0.72:
            parts.append(rng.choice(PUNCT) if rng.random() < 0.5 else rng.choice(WORDS) + rng.choice(PUNCT))
        elif r < 0.8:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 6))))
        elif r < 0.88:
            parts.append(rng.choice(ENTITIES) + (rng.choice(WORDS) if rng.random() < 0.3 else ""))
        elif r < 0.92:
            parts.append(rng.choice(SPECIALS))
        else:
            parts.append("".join(chr(rng.choice([rng.randint(0x21, 0x7e), rng.randint(0xa0, 0x2ff),
                                                 rng.randint(0x370, 0x4ff), rng.randint(0x4e00, 0x4fff),
                                                 rng.randint(0x1f300, 0x1f64f)])) for _ in range(rng.randint(1, 5))))
    out = ""
    for p in parts:
        out += (rng.choice(SPACES) if out and rng.random() < 0.85 else "") + p
    if rng.random() < 0.2:
        out = rng.choice(SPACES) + out + rng.choice(SPACES)
    return out


def random_codepoints(rng, n):
    """Strings for the cleaning steps: letters, combining marks (out of order), Hangul jamo, Greek sigma, '&'."""
    pools = [(0x41, 0x5a), (0x61, 0x7a), (0xc0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff),
             (0x1e00, 0x1eff), (0x1100, 0x1112), (0x1161, 0x1175), (0x11a8, 0x11c2), (0xac00, 0xd7a3),
             (0x591, 0x5c7), (0x93c, 0x94d), (0x0b47, 0x0b57), (0x1f00, 0x1fff), (0x2160, 0x218f), (0x20d0, 0x20f0),
             (0x3a3, 0x3a3), (0x3a3, 0x3a3), (0x27, 0x27), (0x2e, 0x2e), (0x20, 0x20), (0xad, 0xad), (0x130, 0x130)]
    s = []
    for _ in range(n):
        lo, hi = rng.choice(pools)
        s.append(chr(rng.randint(lo, hi)))
    return "".join(s)


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "hf"), exist_ok=True)
    tok = SimpleTokenizer(vocab_path())
    rng = random.Random(1234)
    texts = [random_sentence(rng) for _ in range(400)]
    texts += [rng.choice(WORDS) * rng.randint(1, 30) for _ in range(20)]  # long words: many merge rounds
    texts += [" ".join(rng.choice(WORDS) for _ in range(60))]             # beyond the 77 context
    encode = [{"text": t, "ids": tok.encode(t)} for t in texts]
    clean = []
    for _ in range(300):
        s = random_codepoints(rng, rng.randint(1, 24))
        if rng.random() < 0.3:
            s += rng.choice(ENTITIES)
        clean.append({"text": s, "nfc": unicodedata.normalize("NFC", s), "unescape": html.unescape(s),
                      "lower": s.lower()})
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"encode": encode, "clean": clean}, f, ensure_ascii=False)
    # The Hugging Face form: the same ids; merges.txt = header + the used merges.
    with open(os.path.join(out, "hf", "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(tok.encoder, f, ensure_ascii=False)
    with open(os.path.join(out, "hf", "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(" ".join(m) + "\n" for m in tok.merges))
    print(f"ref_tokenizer: {len(encode)} texts, {len(clean)} cleaning cases -> {out}")


if __name__ == "__main__":
    main()

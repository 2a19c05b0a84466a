#!/usr/bin/python3
"""Goldens for tests/text: CLIP token ids and ComfyUI prompt weighting.

    /usr/bin/python3 tests/reference/make_prompt_goldens.py [SHARED_DATA_DIR]

Writes tests/reference/golden/clip_tokenize.json and prompt_weights.json.
Needs python3-regex (scripts/setup-debian installs it).

Token ids come from the reference CLIP tokenizer of shared/data
(tools/clip_bpe_ref.py, vocabulary bpe_simple_vocab_16e6.txt.gz), with the
special tokens mapped straight to their ids as openai/CLIP's cache and Hugging
Face's added tokens do.  The weighting is a restatement (written for vkflow)
of ComfyUI's comfy/sd1_clip.py SDTokenizer.tokenize_with_weights at Comfy-Org/
ComfyUI a125cd84: escaped parentheses, the parenthesis parser, weighted
segments tokenized whole, `embedding:` pieces and the 77-token chunking.
Embeddings come from a fixed table of fake names (FAKE_EMBEDS, mirrored in
tests/text/test_prompt_weights.c).
"""
import importlib.util
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BOS, EOS = 49406, 49407
CTX = 77
MAX_WORD_LENGTH = 8
FAKE_EMBEDS = {"goodstyle": 1, "badhands": 3, "Neg-Emb": 2, "ünï": 1}


def load_ref(data_dir):
    spec = importlib.util.spec_from_file_location("clip_bpe_ref", os.path.join(data_dir, "tools", "clip_bpe_ref.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tok = mod.load(data_dir)
    for special in (mod.BOS, mod.EOS):
        tok.cache[special] = [special]
    return tok


# ---- ComfyUI's weighting, restated -------------------------------------------

ESC_CLOSE, ESC_OPEN = "\0\1", "\0\2"


def split_top_level(s):
    """Top-level pieces of s, as ComfyUI's parse_parentheses cuts them."""
    pieces, cur, depth = [], "", 0
    for ch in s:
        if ch == "(":
            if depth == 0 and cur:
                pieces.append(cur)
                cur = ""
            cur += ch
            depth += 1
        elif ch == ")":
            depth -= 1
            cur += ch
            if depth == 0:
                pieces.append(cur)
                cur = ""
        else:
            cur += ch
    if cur:
        pieces.append(cur)
    return pieces


def weighted_segments(s, weight):
    out = []
    for piece in split_top_level(s):
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner, w = piece[1:-1], weight * 1.1
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    w = float(inner[colon + 1:])
                    inner = inner[:colon]
                except ValueError:
                    pass
            out.extend(weighted_segments(inner, w))
        else:
            out.append((piece, weight))
    return out


def embedding_lookup(name):
    return FAKE_EMBEDS.get(name) if name else None


def try_embedding(name):
    parts = name.split()
    first = parts[0]            # IndexError for an empty name, as ComfyUI
    rest = " ".join(parts[1:])
    m = re.search(r"[<\[]", first)
    if m:
        rest = first[m.start():] + (" " + rest if rest else "")
        first = first[:m.start()]
    rows = embedding_lookup(first)
    if rows is None:
        stripped = first.strip(",")
        if len(stripped) < len(first):
            rows = embedding_lookup(stripped)
            return rows, stripped, first, "{} {}".format(first[len(stripped):], rest)
    return rows, first, first, rest


def tokenize_with_weights(tok, text, pad_with_end=True, embeddings=True):
    pad = EOS if pad_with_end else 0
    text = text.replace("\\)", ESC_CLOSE).replace("\\(", ESC_OPEN)
    groups, warnings = [], []
    for seg, weight in weighted_segments(text, 1.0):
        seg = seg.replace(ESC_CLOSE, ")").replace(ESC_OPEN, "(")
        parts = re.split(r"(?<=\s)embedding:", seg)
        words = [parts[0]] + ["embedding:" + p for p in parts[1:]]
        for word in (w for w in words if w != ""):
            if embeddings and word.startswith("embedding:"):
                rows, used, name, leftover = try_embedding(word[len("embedding:"):].strip("\n"))
                if rows is None:
                    warnings.append(name)
                else:
                    groups.append([(["emb", used, r], weight) for r in range(rows)])
                if leftover == "":
                    continue
                word = leftover
            groups.append([(i, weight) for i in tok.encode(word, add_special=False)])

    chunks, cur = [], [(BOS, 1.0)]
    for g in groups:
        large = len(g) >= MAX_WORD_LENGTH
        while g:
            if len(g) + len(cur) > CTX - 1:
                room = CTX - 1 - len(cur)
                if large:
                    cur += g[:room]
                    g = g[room:]
                    cur.append((EOS, 1.0))
                else:
                    cur += [(EOS, 1.0)] + [(pad, 1.0)] * room
                chunks.append(cur)
                cur = [(BOS, 1.0)]
            else:
                cur += g
                g = []
    cur.append((EOS, 1.0))
    cur += [(pad, 1.0)] * (CTX - len(cur))
    chunks.append(cur)
    return chunks, warnings


# ---- cases -------------------------------------------------------------------

TOKENIZE_CASES = [
    "a photo of a cat", "A PHOTO OF A CAT", "", "   ", "\t\n\u3000\u00a0x\u2028y",
    "it's IT'S they'RE we'Ve I'M you'LL he'D 'sun ''s x''t", "?'s ,'t",
    "<|startoftext|>a<|endoftext|>", "x,<|endoftext|>y", "<|ENDOFTEXT|>", "<|endoftext",
    "café naïve e\u0301 A\u030a \u1100\u1161\u11a8 \ud55c\uae00 \u0344 \u1e0b\u0323 q\u0307\u0323",
    "ΟΔΟΣ ΟΔΟΣ. Σ ΑΣ'Σ ὈΔΥΣΣΕΎΣ σΣ", "İstanbul ſtraße ß ẞ K Å",
    "Привет мир, ЁЖИК", "日本語のテキスト 中文 한국어 ๑๒๓ ١٢٣ ⅷ ½ ①",
    "emoji 🐱🚀👩‍👩‍👧 🇯🇵 ✔️", "hindi हिन्दी arabic العربية hebrew עברית",
    "&amp; &lt;b&gt; &amp;amp; &#39; &#x27; &#0; &#128; &#xD800; &#1114112; &#65534; &notit; &notin; "
    "&copy &copyright &AMP &#x; &# &;& &abcdefghijklmnopqrstuvwxyzabcdefghij;",
    "tab\tsep\x0bvt\x1cfs\x85nel", "1234567890 3.14159 1,000", "$$$ !!! ??? ... --- ***",
    "x" * 300, "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３", "ﬁ ﬂ ﬃ", "\u00adsoft\u200bzero\u200dwidth",
    "masterpiece, best quality, 1girl, solo, long hair, looking at viewer",
]


def random_text(rng):
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
        " ,.;:!?'\"()[]{}<>|/\\-_+=*&^%$#@~`", " \t\n\u00a0\u3000",
        "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿÀÉÎÕÜ", "\u0300\u0301\u0302\u0308\u0323\u0327\u0345",
        "ΑΒΓΔΣσςαβγ", "АБВГДЖЗабвгджз", "日本語中文字漢", "가나다한글\u1100\u1161\u11a8",
        "🐱🚀✨👍", "ا ب ت ث", "अआइ\u093f\u094d", "ſİıK",
    ]
    chunks = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.1:
            chunks.append(rng.choice(["&amp;", "&lt;", "&#39;", "&#x1F600;", "&nbsp;", "&amp;amp;", "&gt", "&#",
                                      "<|endoftext|>", "'s", "'ll", "ΟΔΟΣ"]))
        else:
            pool = rng.choice(pools)
            chunks.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 10))))
    return "".join(chunks)


WEIGHT_CASES = [
    "a photo of a cat", "", "   ", "()", "(:1.5)", "( :1.5)",
    "(masterpiece:1.2), best quality, (red hair:0.8)",
    "((nested)) plain (((triple)))", "[brackets] are plain text {braces}",
    "(a photo of a cat:1.3) on a mat",
    "(unbalanced open", "unbalanced close) here", "a) b (c", ")(", "((a)", "(a))", "x (y (z) w",
    ")))(((", "(a(b)c)", "(a (b:1.2))", "((a):1.5)", "((a:1.5))", "(a:1.2:1.3)", "((a:0.5) b:2)",
    "\\(not weighted\\) and (weighted \\(inner\\):1.3)", "\\\\(x)", "(a\\):1.2)", "(a:1.2\\))",
    "(a:1_5)", "(a: 1.5 )", "(a:-0.5)", "(a:\uff11.\uff15)", "(a:1e1)",
    "(a:abc)", "(a:)", "(a:.5)", "(a:5.)", "(a:+2)", "(a:1__0)", "(a:_1)", "(a:1_)", "(a:0x10)",
    "(a:1e)", "(a:1.5.2)", "(a:\u20031.25\u2003)", "(a:٣)",
    "line one\nline two (weighted\nword:1.1)",
    "(Ελληνικά ΟΔΟΣ:1.1)", "日本語 (テキスト:1.2)", "Привет (мир)",
    "embedding:goodstyle a cat", "a cat embedding:badhands, ugly", "a cat, embedding:missing dog",
    "(embedding:Neg-Emb:1.2)", "embedding:goodstyle,", "x embedding:goodstyle<lora:x:1> y",
    "embedding:goodstyle[x]", "a embedding: goodstyle b", "xembedding:goodstyle",
    "embedding:goodstyle\nembedding:badhands", "embedding:,badhands, z", "embedding:<lora:a:1>",
    "a\u3000embedding:ünï b", "embedding:badhands,,", "(a embedding:goodstyle b:0.7)",
    "embedding:EMBEDDING:goodstyle", "a\tembedding:goodstyle\tb",
]


def long_prompts(rng):
    words = ["masterpiece", "best quality", "detailed", "1girl", "landscape", "mountains", "river",
             "sunset", "cinematic lighting", "ultra-detailed", "photorealistic", "bokeh", "8k"]
    out = [", ".join(rng.choice(words) for _ in range(60)),
           "(" + ", ".join(rng.choice(words) for _ in range(40)) + ":1.1), " + ", ".join(words * 3),
           " ".join(["word"] * 74) + " (a b c d e f g:1.2)",
           " ".join(["word"] * 70) + " (a b c d e f g h i j k l:0.9)",
           " ".join(["word"] * 75) + ", x", "z" * 700, "cat " * 300]
    return out


def random_weighted(rng):
    atoms = ["(", ")", "(", ")", ":", "1.2", "0.5", "\\(", "\\)", " ", " ", "cat", "dog", ", ", "\n",
             "[", "]", "ΟΣ", "embedding:goodstyle", "embedding:badhands,", " embedding:", "embedding:missing",
             "red hair", "1.1", "-", "_", "e", "ünï", "<lora:x:1>", "blue sky and clouds"]
    return "".join(rng.choice(atoms) for _ in range(rng.randint(1, 40)))


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    tok = load_ref(data_dir)
    rng = random.Random(20261125)

    texts = list(TOKENIZE_CASES)
    expected = json.load(open(os.path.join(data_dir, "tokenizers", "expected_ids.json"), encoding="utf-8"))
    texts += [c["text"] for c in expected["cases"]]
    texts += [random_text(rng) for _ in range(400)]
    # long single pieces (> 64 bytes take the heap-ordered BPE in C)
    for pool in ("abcdefghijklmnopqrstuvwxyz", "etaoinshrdlu", "abcABCxyz", "абвгдежзийклмно",
                 "日本語中文字漢", "!?.,;:-_*#", "aeiou", "ΑΣΓσςαβγ"):
        for n in (65, 300, 2000):
            texts.append("".join(rng.choice(pool) for _ in range(n)))
    clip_cases = [{"text": t, "ids": tok.encode(t, add_special=False)} for t in texts]

    prompts = [(p, True, True) for p in WEIGHT_CASES]
    prompts += [(p, False, True) for p in WEIGHT_CASES[:12]]
    prompts += [(p, True, False) for p in ["embedding:goodstyle a cat", "(embedding:Neg-Emb:1.2)"]]
    prompts += [(p, pad, True) for p in long_prompts(rng) for pad in (True, False)]
    prompts += [(random_weighted(rng), rng.random() < 0.7, rng.random() < 0.8) for _ in range(300)]
    weight_cases = []
    for text, pad, emb in prompts:
        case = {"text": text, "pad_with_end": pad, "embeddings": emb}
        try:
            chunks, warnings = tokenize_with_weights(tok, text, pad, emb)
            case["chunks"] = [[[t, w] for t, w in ch] for ch in chunks]
            case["missing"] = warnings
        except IndexError:
            case["error"] = True
        weight_cases.append(case)

    out_dir = os.path.join(HERE, "golden")
    about = "Generated by tests/reference/make_prompt_goldens.py; do not edit."
    with open(os.path.join(out_dir, "clip_tokenize.json"), "w", encoding="utf-8") as f:
        json.dump({"_about": about, "cases": clip_cases}, f, ensure_ascii=True, indent=0)
        f.write("\n")
    with open(os.path.join(out_dir, "prompt_weights.json"), "w", encoding="utf-8") as f:
        json.dump({"_about": about, "fake_embeddings": FAKE_EMBEDS, "cases": weight_cases}, f,
                  ensure_ascii=True, indent=0, allow_nan=False)
        f.write("\n")
    print(f"{len(clip_cases)} tokenize cases, {len(weight_cases)} weighting cases")


if __name__ == "__main__":
    main()

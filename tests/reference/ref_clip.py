#!/usr/bin/python3
"""Goldens for tests/models/test_clip_text.c: an independent PyTorch (float64)
implementation of the CLIP text towers of SD1 (HF CLIP-L names, quick GELU)
and SD2 (OpenCLIP-H names, erf GELU, text_projection used as x @ P), run on
the tiny synthesized checkpoints that the C test writes.

Regenerate (from the repository root, after building):

    /usr/bin/python3 tests/reference/ref_clip.py /tmp/build-clip

It runs `BUILD/tests/models/test_clip_text --write TMPDIR` (vkf_synth_clip_text,
writer seed 1, f32), parses the safetensors files with numpy and writes
tests/reference/golden/clip/{sd1,sd2}_tiny.bin: little-endian float32,
hidden(layer_idx 0) [2,77,64], hidden(layer_idx -2) [2,77,64], pooled [2,64],
back to back; plus {sd1,sd2}_tiny.json describing them (tokens, shapes, sums),
and {sd1,sd2}_tiny_raw_m2.bin: hidden(layer_idx -2) [2,77,64] without the
final layer norm (layer_norm_hidden_state=False, as SDXL uses both towers;
the bigG tower has SD2's OpenCLIP layout at width 1280, 32 layers).

Semantics checked against ComfyUI comfy/clip_model.py and comfy/sd1_clip.py
(SDClipModel, layer_norm_hidden_state=True): causal mask; layer_idx -k is the
output of layer L-k (0-based index L-k, so -1 is the last layer and -2 the
penultimate) passed through the final layer norm; pooled = final_LN(last layer)[first EOS] through
text_projection (identity when absent).
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

CTX = 77
BOS, EOS = 49406, 49407
WIDTH = 64
PREFIX = {"sd1": "cond_stage_model.transformer.", "sd2": "cond_stage_model.model."}
FILES = {"sd1": "clip_sd1_tiny.safetensors", "sd2": "clip_sd2_tiny.safetensors"}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float64))
    return out


def tokens(which):
    """Same formulas as make_tokens() in test_clip_text.c."""
    pad = 0 if which == "sd2" else EOS
    c0 = [BOS] + [320 + 17 * i for i in range(10)] + [EOS] + [pad] * (CTX - 12)
    c1 = [BOS] + [(1000 + 613 * i) % 49000 for i in range(1, 76)] + [EOS]
    c1[5], c1[6] = -1, -2
    embeds = np.array([0.02 * math.sin(0.37 * k + 1.0) for k in range(2 * WIDTH)],
                      dtype=np.float32).reshape(2, WIDTH)
    return [c0, c1], torch.from_numpy(embeds.astype(np.float64))


def layer_norm(x, w, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def tower(sd, which):
    """Normalises both layouts to a list of per-layer dicts."""
    p = PREFIX[which]
    if which == "sd1":
        t = p + "text_model."
        n = 0
        while f"{t}encoder.layers.{n}.mlp.fc1.weight" in sd:
            n += 1
        layers = []
        for i in range(n):
            q = f"{t}encoder.layers.{i}."
            layers.append({
                "wq": sd[q + "self_attn.q_proj.weight"], "bq": sd[q + "self_attn.q_proj.bias"],
                "wk": sd[q + "self_attn.k_proj.weight"], "bk": sd[q + "self_attn.k_proj.bias"],
                "wv": sd[q + "self_attn.v_proj.weight"], "bv": sd[q + "self_attn.v_proj.bias"],
                "wo": sd[q + "self_attn.out_proj.weight"], "bo": sd[q + "self_attn.out_proj.bias"],
                "ln1w": sd[q + "layer_norm1.weight"], "ln1b": sd[q + "layer_norm1.bias"],
                "ln2w": sd[q + "layer_norm2.weight"], "ln2b": sd[q + "layer_norm2.bias"],
                "w1": sd[q + "mlp.fc1.weight"], "b1": sd[q + "mlp.fc1.bias"],
                "w2": sd[q + "mlp.fc2.weight"], "b2": sd[q + "mlp.fc2.bias"],
            })
        return {
            "tok": sd[t + "embeddings.token_embedding.weight"],
            "pos": sd[t + "embeddings.position_embedding.weight"],
            "layers": layers,
            "lnfw": sd[t + "final_layer_norm.weight"], "lnfb": sd[t + "final_layer_norm.bias"],
            "act": lambda a: a * torch.sigmoid(1.702 * a),
            "proj": (lambda v: v @ sd[p + "text_projection.weight"].T)
            if p + "text_projection.weight" in sd else (lambda v: v),
        }
    n = 0
    while f"{p}transformer.resblocks.{n}.mlp.c_fc.weight" in sd:
        n += 1
    layers = []
    for i in range(n):
        q = f"{p}transformer.resblocks.{i}."
        w, b = sd[q + "attn.in_proj_weight"], sd[q + "attn.in_proj_bias"]
        W = w.shape[1]
        layers.append({
            "wq": w[:W], "wk": w[W:2 * W], "wv": w[2 * W:],
            "bq": b[:W], "bk": b[W:2 * W], "bv": b[2 * W:],
            "wo": sd[q + "attn.out_proj.weight"], "bo": sd[q + "attn.out_proj.bias"],
            "ln1w": sd[q + "ln_1.weight"], "ln1b": sd[q + "ln_1.bias"],
            "ln2w": sd[q + "ln_2.weight"], "ln2b": sd[q + "ln_2.bias"],
            "w1": sd[q + "mlp.c_fc.weight"], "b1": sd[q + "mlp.c_fc.bias"],
            "w2": sd[q + "mlp.c_proj.weight"], "b2": sd[q + "mlp.c_proj.bias"],
        })
    proj = sd[p + "text_projection"]
    return {
        "tok": sd[p + "token_embedding.weight"], "pos": sd[p + "positional_embedding"],
        "layers": layers, "lnfw": sd[p + "ln_final.weight"], "lnfb": sd[p + "ln_final.bias"],
        "act": lambda a: torch.nn.functional.gelu(a),
        "proj": lambda v: v @ proj,
    }


def attention(x, L, heads):
    B, N, W = x.shape
    D = W // heads
    def split(t):
        return t.reshape(B, N, heads, D).permute(0, 2, 1, 3)
    q = split(x @ L["wq"].T + L["bq"])
    k = split(x @ L["wk"].T + L["bk"])
    v = split(x @ L["wv"].T + L["bv"])
    s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    causal = torch.ones(N, N, dtype=torch.bool).triu(1)
    s = s.masked_fill(causal, float("-inf"))
    o = torch.softmax(s, dim=-1) @ v
    o = o.permute(0, 2, 1, 3).reshape(B, N, W)
    return o @ L["wo"].T + L["bo"]


def run(m, ids, embeds):
    W = m["tok"].shape[1]
    heads = W // 64
    rows = []
    for chunk in ids:
        rows.append(torch.stack([embeds[-1 - t] if t < 0 else m["tok"][t] for t in chunk]))
    x = torch.stack(rows) + m["pos"]
    outs = []
    for L in m["layers"]:
        x = x + attention(layer_norm(x, L["ln1w"], L["ln1b"]), L, heads)
        h = layer_norm(x, L["ln2w"], L["ln2b"])
        x = x + (m["act"](h @ L["w1"].T + L["b1"]) @ L["w2"].T + L["b2"])
        outs.append(x)
    final = layer_norm(outs[-1], m["lnfw"], m["lnfb"])
    penult = layer_norm(outs[-2], m["lnfw"], m["lnfb"])
    eos = [chunk.index(EOS) for chunk in ids]
    pooled = m["proj"](final[torch.arange(len(ids)), eos])
    return final, penult, pooled, eos, outs[-2]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    exe = os.path.join(sys.argv[1], "tests", "models", "test_clip_text")
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = os.path.join(here, "golden", "clip")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, "--write", tmp], check=True, stdout=subprocess.DEVNULL)
        for which in ("sd1", "sd2"):
            sd = read_safetensors(os.path.join(tmp, FILES[which]))
            m = tower(sd, which)
            ids, embeds = tokens(which)
            final, penult, pooled, eos, raw = run(m, ids, embeds)
            # layer_norm_hidden_state=False (SDXL's towers, comfy/sdxl_clip.py):
            # the penultimate layer's output without final_layer_norm
            with open(os.path.join(out_dir, which + "_tiny_raw_m2.bin"), "wb") as f:
                f.write(raw.to(torch.float32).numpy().astype("<f4").tobytes())
            arrays = [final, penult, pooled]
            blob = b"".join(a.to(torch.float32).numpy().astype("<f4").tobytes() for a in arrays)
            with open(os.path.join(out_dir, which + "_tiny.bin"), "wb") as f:
                f.write(blob)
            meta = {
                "generator": "tests/reference/ref_clip.py (torch %s, float64)" % torch.__version__,
                "checkpoint": "vkf_synth_clip_text(%s, tiny, F32), writer seed 1, prefix %s"
                              % ("SD15" if which == "sd1" else "SD2", PREFIX[which]),
                "layout": "float32 LE, back to back: " + ", ".join(
                    "%s %s" % (n, list(a.shape)) for n, a in
                    zip(("hidden_layer_0", "hidden_layer_-2", "pooled"), arrays)),
                "tokens": ids,
                "embeds": "row k element j: 0.02*sin(0.37*(k*64+j)+1); id -1-k",
                "pooled_positions": eos,
                "sums": {n: float(a.sum()) for n, a in
                         zip(("hidden_layer_0", "hidden_layer_-2", "pooled"), arrays)},
                "abs_max": {n: float(a.abs().max()) for n, a in
                            zip(("hidden_layer_0", "hidden_layer_-2", "pooled"), arrays)},
            }
            with open(os.path.join(out_dir, which + "_tiny.json"), "w") as f:
                json.dump(meta, f, indent=1)
                f.write("\n")
            print(which, meta["sums"])


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Golden references for vkflow's SD1.x / SD2.x UNet (tests/models/test_unet.c).

Regenerate (from the repository root, after building):

    /usr/bin/python3 tests/reference/ref_unet.py BUILD_DIR

It asks BUILD_DIR/tests/models/test_unet --write ARCH PATH DTYPE for each
tiny synthesized checkpoint, reads it with numpy, runs the forward pass
below in PyTorch (f32) on fixed inputs made with numpy (seeded) and writes
tests/reference/golden/unet/<case>.safetensors holding the inputs, the
output and metadata (arch, dtype, expected model arch and prediction).
CI never runs this script: the test reads the committed files.

This is an independent restatement of ldm's openaimodel.UNetModel with
SpatialTransformer (and ComfyUI's behaviour: nearest upsampling to the
size of the next skip, control residuals added to h after an input block,
after the middle block and to the skip of an output block), written from the
published architecture, not from vkflow's C code:
  ResBlock: GN32(eps 1e-5) SiLU conv3x3, + Linear(SiLU(emb)), GN32 SiLU
            conv3x3, + skip (identity or 1x1 conv)
  SpatialTransformer: GN32(eps 1e-6), proj_in (1x1 conv before flattening
            for SD1, Linear after for SD2), LN/self-attn, LN/cross-attn,
            LN/GEGLU FF, proj_out, + x
  heads: SD1 8 heads; SD2 and SDXL 64-wide heads.
  SDXL: any number of transformer blocks per SpatialTransformer (the
            transformer_blocks.N present), emb = time_embed(t) +
            label_emb(y) with label_emb = Linear SiLU Linear
            (label_emb.0.0 / .0.2), 3 levels.

    /usr/bin/python3 tests/reference/ref_unet.py BUILD_DIR [CASE ...]
regenerates only the named cases.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "reference", "golden", "unet")
PFX = "model.diffusion_model."


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = raw[base + b:base + e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(buf, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(dt)
        out[name] = torch.from_numpy(a.astype(np.float32).reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class UNet:
    def __init__(self, sd, sd2):
        self.W = {k[len(PFX):]: v for k, v in sd.items() if k.startswith(PFX)}
        self.sd2 = sd2
        self.mc = self.W["input_blocks.0.0.weight"].shape[0]
        self.n_in = 1 + max(int(k.split(".")[1]) for k in self.W if k.startswith("input_blocks."))
        self.n_out = 1 + max(int(k.split(".")[1]) for k in self.W if k.startswith("output_blocks."))

    def has(self, k):
        return k in self.W

    def conv(self, x, p, stride=1, pad=1):
        return F.conv2d(x, self.W[p + ".weight"], self.W[p + ".bias"], stride=stride, padding=pad)

    def lin(self, x, p):
        return F.linear(x, self.W[p + ".weight"], self.W.get(p + ".bias"))

    def gn(self, x, p, eps):
        return F.group_norm(x, 32, self.W[p + ".weight"], self.W[p + ".bias"], eps)

    def ln(self, x, p):
        return F.layer_norm(x, (x.shape[-1],), self.W[p + ".weight"], self.W[p + ".bias"], 1e-5)

    def res(self, x, p, emb):
        h = self.conv(F.silu(self.gn(x, p + ".in_layers.0", 1e-5)), p + ".in_layers.2")
        h = h + self.lin(F.silu(emb), p + ".emb_layers.1")[:, :, None, None]
        h = self.conv(F.silu(self.gn(h, p + ".out_layers.0", 1e-5)), p + ".out_layers.3")
        if self.has(p + ".skip_connection.weight"):
            x = self.conv(x, p + ".skip_connection", pad=0)
        return x + h

    def attention(self, q, k, v, heads):
        b, n, c = q.shape
        d = c // heads
        q = q.reshape(b, n, heads, d).permute(0, 2, 1, 3)
        k = k.reshape(k.shape[0], k.shape[1], heads, d).permute(0, 2, 1, 3)
        v = v.reshape(v.shape[0], v.shape[1], heads, d).permute(0, 2, 1, 3)
        w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * d ** -0.5, dim=-1)
        o = torch.matmul(w, v)
        return o.permute(0, 2, 1, 3).reshape(b, n, c)

    def st(self, x, p, ctx):
        b, c, hh, ww = x.shape
        heads = c // 64 if self.sd2 else 8
        h = F.group_norm(x, 32, self.W[p + ".norm.weight"], self.W[p + ".norm.bias"], 1e-6)
        if self.W[p + ".proj_in.weight"].dim() == 2:
            h = self.lin(h.permute(0, 2, 3, 1).reshape(b, hh * ww, c), p + ".proj_in")
        else:
            h = self.conv(h, p + ".proj_in", pad=0).permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        d = 0
        while self.has(p + ".transformer_blocks.%d.norm1.weight" % d):
            h = self.block(h, p + ".transformer_blocks.%d" % d, ctx, heads)
            d += 1
        if self.W[p + ".proj_out.weight"].dim() == 2:
            h = self.lin(h, p + ".proj_out").reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        else:
            h = self.conv(h.reshape(b, hh, ww, c).permute(0, 3, 1, 2), p + ".proj_out", pad=0)
        return x + h

    def block(self, h, t, ctx, heads):
        n = self.ln(h, t + ".norm1")
        h = h + self.lin(self.attention(self.lin(n, t + ".attn1.to_q"), self.lin(n, t + ".attn1.to_k"),
                                        self.lin(n, t + ".attn1.to_v"), heads), t + ".attn1.to_out.0")
        n = self.ln(h, t + ".norm2")
        h = h + self.lin(self.attention(self.lin(n, t + ".attn2.to_q"), self.lin(ctx, t + ".attn2.to_k"),
                                        self.lin(ctx, t + ".attn2.to_v"), heads), t + ".attn2.to_out.0")
        n = self.ln(h, t + ".norm3")
        a, g = self.lin(n, t + ".ff.net.0.proj").chunk(2, dim=-1)
        return h + self.lin(a * F.gelu(g), t + ".ff.net.2")

    def forward(self, x, t, ctx, ctrl_in=None, ctrl_mid=None, ctrl_out=None, y=None):
        half = self.mc // 2
        freqs = torch.exp(-np.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        temb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        emb = self.lin(F.silu(self.lin(temb, "time_embed.0")), "time_embed.2")
        if y is not None:
            emb = emb + self.lin(F.silu(self.lin(y, "label_emb.0.0")), "label_emb.0.2")
        ctx = ctx.expand(x.shape[0], -1, -1)
        hs = []
        h = x
        for i in range(self.n_in):
            p = "input_blocks.%d" % i
            if i == 0:
                h = self.conv(h, p + ".0")
            elif self.has(p + ".0.op.weight"):
                h = self.conv(h, p + ".0.op", stride=2)
            else:
                h = self.res(h, p + ".0", emb)
                if self.has(p + ".1.norm.weight"):
                    h = self.st(h, p + ".1", ctx)
            if ctrl_in and i in ctrl_in:
                h = h + ctrl_in[i]
            hs.append(h)
        h = self.res(h, "middle_block.0", emb)
        h = self.st(h, "middle_block.1", ctx)
        h = self.res(h, "middle_block.2", emb)
        if ctrl_mid is not None:
            h = h + ctrl_mid
        for i in range(self.n_out):
            p = "output_blocks.%d" % i
            skip = hs.pop()
            if ctrl_out and i in ctrl_out:
                skip = skip + ctrl_out[i]
            h = self.res(torch.cat([h, skip], dim=1), p + ".0", emb)
            sub = 1
            if self.has(p + ".1.norm.weight"):
                h = self.st(h, p + ".1", ctx)
                sub = 2
            if self.has(p + ".%d.conv.weight" % sub):
                h = F.interpolate(h, size=hs[-1].shape[-2:], mode="nearest")
                h = self.conv(h, p + ".%d.conv" % sub)
        return self.conv(F.silu(self.gn(h, "out.0", 1e-5)), "out.2")


# case: arch, checkpoint dtype, batch, latent h, w, context batch, controls
CASES = [
    ("sd15", "sd15", "f32", 2, 12, 10, 2, True),
    ("sd2_v", "sd2_v", "f16", 2, 9, 9, 1, False),
    ("sd15_inpaint", "sd15_inpaint", "f16", 1, 10, 14, 1, False),
    ("sdxl", "sdxl", "f16", 2, 8, 10, 1, False),
]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: ref_unet.py BUILD_DIR [CASE ...]")
    exe = os.path.join(sys.argv[1], "tests", "models", "test_unet")
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_grad_enabled(False)
    for case, arch, dt, b, hh, ww, cb, controls in CASES:
        if len(sys.argv) > 2 and case not in sys.argv[2:]:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            ck = os.path.join(tmp, "unet.safetensors")
            subprocess.run([exe, "--write", arch, ck, dt], check=True)
            sd = read_safetensors(ck)
        sd2 = arch.startswith("sd2")
        xl = arch == "sdxl"
        net = UNet(sd, sd2 or xl)
        cin = net.W["input_blocks.0.0.weight"].shape[1]
        rng = np.random.default_rng(1234)
        x = rng.standard_normal((b, cin, hh, ww)).astype(np.float32)
        ts = np.array([981.25, 37.0][:b], dtype=np.float32)
        cdim = net.W["middle_block.1.transformer_blocks.0.attn2.to_k.weight"].shape[1]
        ctx = rng.standard_normal((cb, 77, cdim)).astype(np.float32)
        tensors = {"x": x, "timesteps": ts, "context": ctx}
        y = None
        if xl:
            adm = net.W["label_emb.0.0.weight"].shape[1]
            ya = rng.standard_normal((b, adm)).astype(np.float32)
            tensors["y"] = ya
            y = torch.from_numpy(ya)
        ctrl_in, ctrl_mid, ctrl_out = {}, None, {}
        if controls:
            # shapes of the skip stack from a plain run
            shapes = []
            mc = net.mc
            hcur, wcur = hh, ww
            for i in range(net.n_in):
                p = "input_blocks.%d" % i
                if i and net.has(p + ".0.op.weight"):
                    hcur, wcur = (hcur + 1) // 2, (wcur + 1) // 2
                c = net.W[p + ".0.weight"].shape[0] if i == 0 else (
                    net.W[p + ".0.op.weight"].shape[0] if net.has(p + ".0.op.weight")
                    else net.W[p + ".0.out_layers.3.weight"].shape[0])
                shapes.append((b, c, hcur, wcur))
            for i in (2, 7, 11):
                a = (0.5 * rng.standard_normal(shapes[i])).astype(np.float32)
                tensors["control_in.%d" % i] = a
                ctrl_in[i] = torch.from_numpy(a)
            a = (0.5 * rng.standard_normal(shapes[-1])).astype(np.float32)
            tensors["control_mid"] = a
            ctrl_mid = torch.from_numpy(a)
            for i in (0, 5, 11):
                a = (0.5 * rng.standard_normal(shapes[net.n_in - 1 - i])).astype(np.float32)
                tensors["control_out.%d" % i] = a
                ctrl_out[i] = torch.from_numpy(a)
        out = net.forward(torch.from_numpy(x), torch.from_numpy(ts), torch.from_numpy(ctx),
                          ctrl_in, ctrl_mid, ctrl_out, y)
        tensors["out"] = out.numpy()
        # ComfyUI's SD20.model_type rule, restated
        pred = "eps"
        if sd2 and cin == 4:
            nb = sd[PFX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"]
            if torch.std(nb, unbiased=False) > 0.09:
                pred = "v"
        meta = {"arch": arch, "dtype": dt, "model_arch": "SDXL" if xl else "SD2.x" if sd2 else "SD1.x",
                "prediction": pred, "torch": torch.__version__}
        path = os.path.join(OUT_DIR, case + ".safetensors")
        write_safetensors(path, tensors, meta)
        print("%s: out %s max |out| %.4g prediction %s -> %s" %
              (case, tuple(out.shape), float(out.abs().max()), pred, path))


if __name__ == "__main__":
    main()

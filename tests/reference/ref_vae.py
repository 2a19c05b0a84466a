#!/usr/bin/python3
"""Goldens for tests/models/test_vae.c: an independent PyTorch (1.13, CPU,
float64) implementation of the ldm KL-f8 AutoencoderKL and of ComfyUI's
tiled decode/encode (comfy/utils.py tiled_scale_multidim, comfy/sd.py
VAE.decode_tiled_ / encode_tiled_), run on the tiny synthesized checkpoint
that test_vae writes (vkf_synth_vae, TINY, seed fixed in the test).

Regenerate (from the repository root, after building):

    /usr/bin/python3 tests/reference/ref_vae.py /tmp/build-vae

It runs BUILD/tests/models/test_vae --write (f32 and f16 checkpoints),
computes the outputs and writes tests/reference/golden/vae/kl_tiny_f32.safetensors
and kl_tiny_f16.safetensors (inputs and outputs, float32).
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "golden", "vae")
PREFIX = "first_stage_model."


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {dt}")
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"]))
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().numpy().astype("<f4"))
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


class KL:
    """AutoencoderKL forward from the state dict (CompVis names)."""

    def __init__(self, sd):
        self.sd = {k[len(PREFIX):]: v for k, v in sd.items() if k.startswith(PREFIX)}
        self.nlev = 1 + max(int(k.split(".")[2]) for k in self.sd if k.startswith("decoder.up."))
        self.z = self.sd["decoder.conv_in.weight"].shape[1]

    def w(self, name):
        return self.sd[name]

    def conv(self, x, name, stride=1, pad=1):
        wt = self.w(name + ".weight")
        if wt.dim() == 2:
            wt = wt[:, :, None, None]
        return F.conv2d(x, wt, self.w(name + ".bias"), stride=stride, padding=pad)

    def norm(self, x, name):
        return F.group_norm(x, 32, self.w(name + ".weight"), self.w(name + ".bias"), eps=1e-6)

    def res(self, x, name):
        h = self.conv(F.silu(self.norm(x, name + ".norm1")), name + ".conv1")
        h = self.conv(F.silu(self.norm(h, name + ".norm2")), name + ".conv2")
        if name + ".nin_shortcut.weight" in self.sd:
            x = self.conv(x, name + ".nin_shortcut", pad=0)
        return x + h

    def attn(self, x, name):
        h = self.norm(x, name + ".norm")
        q = self.conv(h, name + ".q", pad=0)
        k = self.conv(h, name + ".k", pad=0)
        v = self.conv(h, name + ".v", pad=0)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        p = torch.softmax(torch.bmm(q, k) * (c ** -0.5), dim=2)          # [b, q, k]
        v = v.reshape(b, c, hh * ww)
        o = torch.bmm(v, p.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.conv(o, name + ".proj_out", pad=0)

    def encode(self, x):
        h = self.conv(x, "encoder.conv_in")
        for i in range(self.nlev):
            for j in range(2):
                h = self.res(h, f"encoder.down.{i}.block.{j}")
            if i != self.nlev - 1:
                h = self.conv(F.pad(h, (0, 1, 0, 1)), f"encoder.down.{i}.downsample.conv", 2, 0)
        h = self.res(h, "encoder.mid.block_1")
        h = self.attn(h, "encoder.mid.attn_1")
        h = self.res(h, "encoder.mid.block_2")
        h = self.conv(F.silu(self.norm(h, "encoder.norm_out")), "encoder.conv_out")
        h = self.conv(h, "quant_conv", pad=0)
        return h[:, : self.z]                       # posterior mean

    def decode(self, z):
        h = self.conv(z, "post_quant_conv", pad=0)
        h = self.conv(h, "decoder.conv_in")
        h = self.res(h, "decoder.mid.block_1")
        h = self.attn(h, "decoder.mid.attn_1")
        h = self.res(h, "decoder.mid.block_2")
        for i in reversed(range(self.nlev)):
            for j in range(3):
                h = self.res(h, f"decoder.up.{i}.block.{j}")
            if i != 0:
                h = self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"),
                              f"decoder.up.{i}.upsample.conv")
        return self.conv(F.silu(self.norm(h, "decoder.norm_out")), "decoder.conv_out")


def tiled(x, fn, tile_h, tile_w, overlap, up, out_ch):
    """Blended tiles as ComfyUI's tiled_scale_multidim (2-D case)."""
    B, _, H, W = x.shape
    size = (round(H * up), round(W * up))
    result = torch.empty(B, out_ch, *size, dtype=x.dtype)
    tiles = (tile_h, tile_w)
    for b in range(B):
        s = x[b:b + 1]
        if H <= tile_h and W <= tile_w:
            result[b:b + 1] = fn(s)
            continue
        acc = torch.zeros(1, out_ch, *size, dtype=x.dtype)
        wsum = torch.zeros(1, out_ch, *size, dtype=x.dtype)
        starts = []
        for d, n in enumerate((H, W)):
            t = tiles[d]
            starts.append(list(range(0, n - overlap, t - overlap)) if n > t else [0])
        for ph0 in starts[0]:
            for pw0 in starts[1]:
                pos, lens = [], []
                for d, (p0, n) in enumerate(((ph0, H), (pw0, W))):
                    p = max(0, min(n - overlap, p0))
                    pos.append(p)
                    lens.append(min(tiles[d], n - p))
                y = fn(s[:, :, pos[0]:pos[0] + lens[0], pos[1]:pos[1] + lens[1]])
                # the mask is float32 in ComfyUI (ones_like of a float32 output)
                m = torch.ones(y.shape, dtype=torch.float32)
                fe = round(overlap * up)
                for d in (2, 3):
                    if fe >= m.shape[d]:
                        continue
                    for t in range(fe):
                        a = (t + 1) / fe
                        m.narrow(d, t, 1).mul_(a)
                        m.narrow(d, m.shape[d] - 1 - t, 1).mul_(a)
                m = m.to(x.dtype)
                oh, ow = round(pos[0] * up), round(pos[1] * up)
                acc[:, :, oh:oh + y.shape[2], ow:ow + y.shape[3]] += y * m
                wsum[:, :, oh:oh + y.shape[2], ow:ow + y.shape[3]] += m
        result[b:b + 1] = acc / wsum
    return result


def decode_tiled(vae, z, tile_x, overlap):
    """VAE.decode_tiled_ (tile and overlap in latent pixels), [-1, 1] space."""
    f = vae.decode
    return (tiled(z, f, tile_x * 2, tile_x // 2, overlap, 8, 3) +
            tiled(z, f, tile_x // 2, tile_x * 2, overlap, 8, 3) +
            tiled(z, f, tile_x, tile_x, overlap, 8, 3)) / 3.0


def encode_tiled(vae, x, tile, overlap):
    """VAE.encode_tiled_ on [-1, 1] pixels (tile, overlap in pixels)."""
    f = vae.encode
    s = tiled(x, f, tile, tile, overlap, 1 / 8, vae.z)
    s = s + tiled(x, f, tile // 2, tile * 2, overlap, 1 / 8, vae.z)
    s = s + tiled(x, f, tile * 2, tile // 2, overlap, 1 / 8, vae.z)
    return s / 3.0


def encode_for_inpaint(vae, pixels, mask, grow):
    """VAEEncodeForInpaint.encode (nodes.py) on pixels [B, H, W, 3] in 0..1."""
    d = 8
    x, y = pixels.shape[1] // d * d, pixels.shape[2] // d * d
    mask = F.interpolate(mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]),
                         size=(pixels.shape[1], pixels.shape[2]), mode="bilinear")
    pixels = pixels.clone()
    if pixels.shape[1] != x or pixels.shape[2] != y:
        xo, yo = (pixels.shape[1] % d) // 2, (pixels.shape[2] % d) // 2
        pixels = pixels[:, xo:x + xo, yo:y + yo, :]
        mask = mask[:, :, xo:x + xo, yo:y + yo]
    if grow == 0:
        grown = mask
    else:
        k = torch.ones((1, 1, grow, grow), dtype=mask.dtype)
        grown = torch.clamp(F.conv2d(mask.round(), k, padding=math.ceil((grow - 1) / 2)), 0, 1)
    keep = (1.0 - mask.round()).squeeze(1)
    for c in range(3):
        pixels[:, :, :, c] = (pixels[:, :, :, c] - 0.5) * keep + 0.5
    lat = vae.encode(pixels.movedim(-1, 1).double() * 2 - 1)
    return lat, grown[:, :, :x, :y].round()


def inputs(seed, lat_shape, img_shape):
    g = np.random.default_rng(seed)
    lat = g.standard_normal(lat_shape).astype(np.float32)
    b, c, h, w = img_shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    img = np.stack([np.sin(3 * xx + k) * np.cos(2 * yy - k) for k in range(c)])[None]
    img = np.repeat(img, b, 0) * 0.8 + 0.2 * g.uniform(-1, 1, img_shape)
    return torch.from_numpy(lat), torch.from_numpy(img.astype(np.float32))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    exe = os.path.join(sys.argv[1], "tests", "models", "test_vae")
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_grad_enabled(False)
    for dt in ("f32", "f16"):
        with tempfile.TemporaryDirectory() as td:
            ck = os.path.join(td, "vae.safetensors")
            subprocess.run([exe, "--write", ck] + (["--f16"] if dt == "f16" else []), check=True)
            vae = KL(read_safetensors(ck))
        out = {}
        if dt == "f32":
            lat, img = inputs(1, (2, 4, 8, 8), (2, 3, 64, 64))
        else:
            lat, img = inputs(2, (1, 4, 8, 8), (1, 3, 64, 64))
        out["dec_latent"], out["enc_image"] = lat, img
        out["dec_image"] = vae.decode(lat.double())
        out["enc_latent"] = vae.encode(img.double())
        if dt == "f32":
            tl, ti = inputs(3, (1, 4, 16, 16), (1, 3, 128, 128))
            out["tdec_latent"], out["tenc_image"] = tl, ti
            # VAEDecodeTiled tile_size 64, overlap 16 → latent tile 8, overlap 2
            out["tdec_image"] = decode_tiled(vae, tl.double(), 8, 2)
            out["tenc_latent"] = encode_tiled(vae, ti.double(), 64, 16)
            # VAEEncodeForInpaint on a 67x70 image (cropped to 64x64 at (1, 3)):
            # a: mask at the image size with values 0, .2, .8, 1; grow 6.
            # b: mask at twice the size in 2x2 blocks (bilinear gives exact
            #    0/1); grow 5.
            g = np.random.default_rng(4)
            canvas = g.uniform(0, 1, (1, 67, 70, 3)).astype(np.float32)
            canvas[0, 1:65, 3:67, :] = ((img[0].numpy() + 1) / 2).transpose(1, 2, 0)
            px = torch.from_numpy(canvas)
            ma = np.zeros((1, 67, 70), np.float32)
            ma[0, 20:40, 10:50] = 1.0
            ma[0, 45:60, 30:35] = 0.8
            ma[0, 5:15, 55:70] = 0.2
            mb = np.kron(g.uniform(0, 1, (1, 67, 70)) > 0.97, np.ones((1, 2, 2))).astype(np.float32)
            out["inp_pixels"] = px
            out["inp_mask_a"], out["inp_mask_b"] = torch.from_numpy(ma), torch.from_numpy(mb)
            out["inp_latent_a"], out["inp_noise_a"] = encode_for_inpaint(vae, px, out["inp_mask_a"], 6)
            out["inp_latent_b"], out["inp_noise_b"] = encode_for_inpaint(vae, px, out["inp_mask_b"], 5)
        path = os.path.join(OUT_DIR, f"kl_tiny_{dt}.safetensors")
        write_safetensors(path, {k: v.float() for k, v in out.items()})
        for k, v in sorted(out.items()):
            print(f"{dt} {k}: {list(v.shape)} mean {v.mean().item():.4f} std {v.std().item():.4f}")
        print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()

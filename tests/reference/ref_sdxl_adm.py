#!/usr/bin/python3
"""Golden for the SDXL ADM vector (tests/models/test_sdxl.c).

    /usr/bin/python3 tests/reference/ref_sdxl_adm.py

writes tests/reference/golden/sdxl_adm.safetensors: pooled [2, 64] (numpy,
seeded) and y for the cases below, restating ComfyUI's SDXL.encode_adm /
SDXLRefiner.encode_adm (comfy/model_base.py) with Timestep(256) =
comfy/ldm/modules/diffusionmodules/util.py timestep_embedding: half = 128,
freqs = exp(-ln(10000) * arange(half, float32) / half), args = t * freqs,
[cos(args), sin(args)], all float32; each size a float32 tensor [1].
Written from the published behaviour, not from vkflow's C code.

  base:    height 1024, width 768, crop_h 16, crop_w 8, target 1152 x 896
  refiner: height 1024, width 768, crop_h 0, crop_w 32, aesthetic 2.5
  default: a 13 x 9 latent with no sizes: width 72, height 104 (x 8),
           crop 0, target = size
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "reference", "golden", "sdxl_adm.safetensors")


def emb(v, dim=256):
    t = torch.tensor([v], dtype=torch.float32)
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def adm(pooled, sizes):
    flat = torch.flatten(torch.cat([emb(s) for s in sizes])).unsqueeze(0).repeat(pooled.shape[0], 1)
    return torch.cat((pooled, flat), dim=1)


def main():
    rng = np.random.default_rng(77)
    pooled = torch.from_numpy(rng.standard_normal((2, 64)).astype(np.float32))
    t = {
        "pooled": pooled,
        "y_base": adm(pooled, [1024, 768, 16, 8, 1152, 896]),
        "y_refiner": adm(pooled, [1024, 768, 0, 32, 2.5]),
        "y_default": adm(pooled, [104, 72, 0, 0, 104, 72]),
    }
    header = {"__metadata__": {"torch": torch.__version__}}
    blobs, off = [], 0
    for name in sorted(t):
        a = np.ascontiguousarray(t[name].numpy(), dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(OUT, {k: tuple(v.shape) for k, v in t.items()})


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Goldens for the image/mask ops (tests/gpu/test_gpu_image_ops.c).

Restates the math of ComfyUI's nodes with torch 1.13 / PIL / scipy (no
ComfyUI import): comfy.utils.common_upscale (torch interpolate modes, the
PIL uint8 lanczos round trip, centre crop), ImageBlur / ImageSharpen
(gaussian_kernel, reflect pad, depthwise conv2d), ImageBlend's modes,
GrowMask (scipy grey_dilation / grey_erosion), FeatherMask, ThresholdMask,
MaskComposite and ImagePadForOutpaint's mask.

Inputs are ramps x[i] = ((i * mul) % mod) / 100 in float32, which the C
test rebuilds bit for bit.

    /usr/bin/python3 tests/reference/make_image_goldens.py \
        > tests/reference/golden/image_ops.json
"""
import json
import math

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F
from PIL import Image


def ramp(n, mul, mod):
    return np.array([((i * mul) % mod) / 100 for i in range(n)], dtype=np.float32)


def lanczos(samples, width, height):
    images = [Image.fromarray(np.clip(255. * im.movedim(0, -1).numpy(), 0, 255).astype(np.uint8))
              for im in samples]
    images = [im.resize((width, height), resample=Image.Resampling.LANCZOS) for im in images]
    images = [torch.from_numpy(np.array(im).astype(np.float32) / 255.0).movedim(-1, 0)
              for im in images]
    return torch.stack(images)


def common_upscale(samples, width, height, method, crop):
    if crop == "center":
        ow, oh = samples.shape[3], samples.shape[2]
        oa, na = ow / oh, width / height
        x = y = 0
        if oa > na:
            x = round((ow - ow * (na / oa)) / 2)
        elif oa < na:
            y = round((oh - oh * (oa / na)) / 2)
        s = samples[:, :, y:oh - y, x:ow - x]
    else:
        s = samples
    if method == "lanczos":
        return lanczos(s, width, height)
    return F.interpolate(s, size=(height, width), mode=method)


def gaussian_kernel(ks, sigma):
    x, y = torch.meshgrid(torch.linspace(-1, 1, ks), torch.linspace(-1, 1, ks), indexing="ij")
    d = torch.sqrt(x * x + y * y)
    g = torch.exp(-(d * d) / (2.0 * sigma * sigma))
    return g / g.sum()


def blur(image, r, sigma):
    c = image.shape[3]
    ks = r * 2 + 1
    k = gaussian_kernel(ks, sigma).repeat(c, 1, 1).unsqueeze(1)
    x = F.pad(image.permute(0, 3, 1, 2), (r, r, r, r), 'reflect')
    return F.conv2d(x, k, padding=ks // 2, groups=c)[:, :, r:-r, r:-r].permute(0, 2, 3, 1)


def sharpen(image, r, sigma, alpha):
    c = image.shape[3]
    ks = r * 2 + 1
    k = gaussian_kernel(ks, sigma) * -(alpha * 10)
    k[ks // 2, ks // 2] = k[ks // 2, ks // 2] - k.sum() + 1.0
    k = k.repeat(c, 1, 1).unsqueeze(1)
    x = F.pad(image.permute(0, 3, 1, 2), (r, r, r, r), 'reflect')
    out = F.conv2d(x, k, padding=ks // 2, groups=c)[:, :, r:-r, r:-r].permute(0, 2, 3, 1)
    return torch.clamp(out, 0, 1)


def blend(a, b, f, mode):
    def g(x):
        return torch.where(x <= 0.25, ((16 * x - 12) * x + 4) * x, torch.sqrt(x))
    m = {
        "normal": lambda: b,
        "multiply": lambda: a * b,
        "screen": lambda: 1 - (1 - a) * (1 - b),
        "overlay": lambda: torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b)),
        "soft_light": lambda: torch.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a),
                                          a + (2 * b - 1) * (g(a) - a)),
        "difference": lambda: a - b,
    }[mode]()
    return torch.clamp(a * (1 - f) + m * f, 0, 1)


def grow(mask, expand, tapered):
    c = 0 if tapered else 1
    kernel = np.array([[c, 1, c], [1, 1, 1], [c, 1, c]])
    out = []
    for m in mask:
        o = m.numpy()
        for _ in range(abs(expand)):
            o = (scipy.ndimage.grey_erosion if expand < 0 else scipy.ndimage.grey_dilation)(
                o, footprint=kernel)
        out.append(torch.from_numpy(o))
    return torch.stack(out)


def feather(mask, left, top, right, bottom):
    o = mask.clone()
    left, right = min(left, o.shape[-1]), min(right, o.shape[-1])
    top, bottom = min(top, o.shape[-2]), min(bottom, o.shape[-2])
    for x in range(left):
        o[:, :, x] *= (x + 1.0) / left
    for x in range(right):
        o[:, :, -x] *= (x + 1) / right
    for y in range(top):
        o[:, y, :] *= (y + 1) / top
    for y in range(bottom):
        o[:, -y, :] *= (y + 1) / bottom
    return o


def mask_composite(dst, src, x, y, op):
    out = dst.clone()
    right, bottom = min(x + src.shape[-1], dst.shape[-1]), min(y + src.shape[-2], dst.shape[-2])
    vw, vh = right - x, bottom - y
    s = src[:, :vh, :vw]
    d = dst[:, y:bottom, x:right]
    r = {
        "multiply": lambda: d * s, "add": lambda: d + s, "subtract": lambda: d - s,
        "and": lambda: torch.bitwise_and(d.round().bool(), s.round().bool()).float(),
        "or": lambda: torch.bitwise_or(d.round().bool(), s.round().bool()).float(),
        "xor": lambda: torch.bitwise_xor(d.round().bool(), s.round().bool()).float(),
    }[op]()
    out[:, y:bottom, x:right] = r
    return torch.clamp(out, 0.0, 1.0)


def outpaint_mask(d2, d3, left, top, right, bottom, feathering):
    mask = torch.ones((d2 + top + bottom, d3 + left + right), dtype=torch.float32)
    t = torch.zeros((d2, d3), dtype=torch.float32)
    if feathering > 0 and feathering * 2 < d2 and feathering * 2 < d3:
        for i in range(d2):
            for j in range(d3):
                dt = i if top != 0 else d2
                db = d2 - i if bottom != 0 else d2
                dl = j if left != 0 else d3
                dr = d3 - j if right != 0 else d3
                d = min(dt, db, dl, dr)
                if d >= feathering:
                    continue
                v = (feathering - d) / feathering
                t[i, j] = v * v
    mask[top:top + d2, left:left + d3] = t
    return mask


def flat(t):
    return [float('%.9g' % v) for v in t.reshape(-1).tolist()]


def main():
    cases = []
    img = torch.from_numpy(ramp(1 * 6 * 9 * 3, 37, 101)).reshape(1, 6, 9, 3)
    img2 = torch.from_numpy(ramp(1 * 6 * 9 * 3, 53, 103)).reshape(1, 6, 9, 3)
    for method in ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]:
        for (w, h, crop) in [(13, 11, "disabled"), (5, 4, "disabled"), (7, 7, "center"),
                             (9, 3, "disabled")]:
            out = common_upscale(img.movedim(-1, 1), w, h, method, crop).movedim(1, -1)
            cases.append({"op": "scale", "method": method, "width": w, "height": h,
                          "crop": crop, "shape": list(out.shape), "out": flat(out)})
    for r, s in [(2, 1.3), (1, 0.5)]:
        out = blur(img, r, s)
        cases.append({"op": "blur", "radius": r, "sigma": s, "shape": list(out.shape),
                      "out": flat(out)})
    for r, s, a in [(2, 1.0, 0.7), (1, 2.0, 3.0)]:
        out = sharpen(img, r, s, a)
        cases.append({"op": "sharpen", "radius": r, "sigma": s, "alpha": a,
                      "shape": list(out.shape), "out": flat(out)})
    for mode in ["normal", "multiply", "screen", "overlay", "soft_light", "difference"]:
        out = blend(img, img2, 0.6, mode)
        cases.append({"op": "blend", "mode": mode, "factor": 0.6, "shape": list(out.shape),
                      "out": flat(out)})
    mask = torch.from_numpy(ramp(2 * 7 * 8, 29, 97)).reshape(2, 7, 8)
    src = torch.from_numpy(ramp(1 * 3 * 5, 41, 150)).reshape(1, 3, 5)
    for e, tp in [(2, True), (-1, False), (3, False)]:
        out = grow(mask, e, tp)
        cases.append({"op": "grow", "expand": e, "tapered": tp, "shape": list(out.shape),
                      "out": flat(out)})
    for l, t, r, b in [(3, 1, 2, 4), (0, 9, 8, 0)]:
        out = feather(mask, l, t, r, b)
        cases.append({"op": "feather", "lrtb": [l, t, r, b], "shape": list(out.shape),
                      "out": flat(out)})
    out = (mask > 0.45).float()
    cases.append({"op": "threshold", "value": 0.45, "shape": list(out.shape), "out": flat(out)})
    for op in ["multiply", "add", "subtract", "and", "or", "xor"]:
        out = mask_composite(mask, src, 5, 4, op)
        cases.append({"op": "mask_composite", "operation": op, "x": 5, "y": 4,
                      "shape": list(out.shape), "out": flat(out)})
    out = outpaint_mask(20, 30, 8, 0, 16, 8, 6)
    cases.append({"op": "outpaint", "args": [20, 30, 8, 0, 16, 8, 6], "shape": list(out.shape),
                  "out": flat(out)})
    json.dump({"torch": torch.__version__, "cases": cases}, __import__("sys").stdout,
              separators=(",", ":"))


if __name__ == "__main__":
    main()

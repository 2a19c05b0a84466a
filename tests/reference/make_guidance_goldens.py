#!/usr/bin/python3
"""Goldens for tests/models/test_guidance.c: ComfyUI's conditioning math
(comfy/samplers.py process_conds + calc_cond_batch + cfg_function, and
BaseModel.concat_cond for inpaint models) restated with torch on the fake
model of the test:

    out[r, c] = 0.5 x[r, c] + 0.25 mean_hw(x[r, c]) + mean_t(ctx[r, :, c])
                + 0.001 t[r]  (+ 0.25 x[r, 4] + 0.125 x[r, 5 + c] for 9 ch)

Each entry is evaluated on its own (ComfyUI batches compatible entries;
the sums are the same up to float rounding).  Writes
tests/reference/golden/guidance.json.  Run with Debian's /usr/bin/python3
(python3-torch).
"""
import json
import math
import os

import torch
import torch.nn.functional as F

D = 8
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "guidance.json")


def sd_sigmas():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1.0 - betas, dim=0)
    s = ((1 - ac) / ac) ** 0.5
    return s.float(), s.log().float()


SIGMAS, LOG_SIGMAS = sd_sigmas()


def timestep(sigma):
    d = torch.tensor(sigma, dtype=torch.float32).log() - LOG_SIGMAS
    return float(d.abs().argmin())


def percent_to_sigma(p):
    if p <= 0.0:
        return 999999999.9
    if p >= 1.0:
        return 0.0
    t = torch.tensor((1.0 - p) * 999.0).float().clamp(0, 999)
    lo, hi, w = t.floor().long(), t.ceil().long(), t.frac()
    return float(((1 - w) * LOG_SIGMAS[lo] + w * LOG_SIGMAS[hi]).exp())


def fake_model(xc, ctx, t, cin):
    out = 0.5 * xc[:, :4] + 0.25 * xc[:, :4].mean(dim=(2, 3), keepdim=True)
    out = out + ctx.mean(dim=1)[:, :4, None, None] + 0.001 * t
    if cin == 9:
        out = out + 0.25 * xc[:, 4:5] + 0.125 * xc[:, 5:9]
    return out


def resize_to_batch_size(tensor, batch_size):
    in_b = tensor.shape[0]
    if in_b == batch_size:
        return tensor
    if batch_size <= 1:
        return tensor[:batch_size]
    out = torch.empty([batch_size] + list(tensor.shape)[1:], dtype=tensor.dtype)
    if batch_size < in_b:
        scale = (in_b - 1) / (batch_size - 1)
        for i in range(batch_size):
            out[i] = tensor[min(round(i * scale), in_b - 1)]
    else:
        scale = in_b / batch_size
        for i in range(batch_size):
            out[i] = tensor[min(math.floor((i + 0.5) * scale), in_b - 1)]
    return out


def repeat_to_batch_size(t, b):
    if t.shape[0] > b:
        return t[:b]
    if t.shape[0] < b:
        return t.repeat([math.ceil(b / t.shape[0])] + [1] * (t.ndim - 1))[:b]
    return t


def bilinear(t, h, w):
    return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)


def resolve(c, H, W):
    """resolve_areas_and_cond_masks_multidim for one entry."""
    c = dict(c)
    if c.get("area") is not None and c.get("percent"):
        a = c["area"]
        c["area"] = (max(1, round(a[0] * H)), max(1, round(a[1] * W)),
                     round(a[2] * H), round(a[3] * W))
    elif c.get("area") is not None:
        c["area"] = tuple(int(v) for v in c["area"])
    if c.get("mask") is not None:
        mask = c["mask"]
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        if tuple(mask.shape[1:]) != (H, W):
            mask = bilinear(mask.unsqueeze(1), H, W).squeeze(1)
        if c.get("set_area_to_bounds"):
            bounds = torch.max(torch.abs(mask), dim=0).values
            if torch.max(bounds != 0) == False:  # noqa: E712
                c["area"] = (8, 8, 0, 0)
            else:
                y, x = torch.where(bounds)
                hh = int(y.max() - y.min() + 1)
                ww = int(x.max() - x.min() + 1)
                c["area"] = (max(8, hh), max(8, ww), int(y.min()), int(x.min()))
        c["mask"] = mask
    return c


def same_area_if_none(conds, c):
    if c.get("area") is None:
        return
    ca = c["area"]

    def inside(a, cmp):
        for i in range(2):
            if a[2 + i] < cmp[2 + i]:
                return False
        for i in range(2):
            if a[i] + a[2 + i] > cmp[i] + cmp[2 + i]:
                return False
        return True

    smallest = None
    for x in conds:
        if x.get("area") is not None:
            if inside(ca, x["area"]):
                if smallest is None or smallest.get("area") is None:
                    smallest = x
                elif smallest["area"][0] * smallest["area"][1] > x["area"][0] * x["area"][1]:
                    smallest = x
        elif smallest is None:
            smallest = x
    if smallest is None:
        return
    if smallest.get("area") is not None and tuple(smallest["area"]) == tuple(ca):
        return
    out = dict(c)
    out["ctx"] = smallest["ctx"]
    out["concat"] = smallest.get("concat")
    conds.append(out)


def area_and_mult(c, x):
    B, C, H, W = x.shape
    area = None
    if c.get("area") is not None:
        area = list(c["area"])
        dims = (H, W)
        for i in range(2):
            area[i] = min(dims[i] - area[2 + i], area[i])
    input_x = x
    if area is not None:
        input_x = x[:, :, area[2]:area[2] + area[0], area[3]:area[3] + area[1]]
    if c.get("mask") is not None:
        mask = c["mask"][:B]
        if area is not None:
            mask = mask[:, area[2]:area[2] + area[0], area[3]:area[3] + area[1]]
        mask = mask * c.get("mask_strength", 1.0)
        mask = mask.unsqueeze(1).repeat(B // mask.shape[0], C, 1, 1)
    else:
        mask = torch.ones_like(input_x)
    mult = mask * c.get("strength", 1.0)
    if c.get("mask") is None and area is not None:
        for i in range(2):
            rr = min(8, mult.shape[2 + i] // 4)
            if area[2 + i] != 0:
                for t in range(rr):
                    mult.narrow(i + 2, t, 1).mul_((1.0 / rr) * (t + 1))
            if area[i] + area[2 + i] < x.shape[2 + i]:
                for t in range(rr):
                    mult.narrow(i + 2, area[i] - 1 - t, 1).mul_((1.0 / rr) * (t + 1))
    return input_x, mult, area


def calc(conds, x, sigma, cin):
    B = x.shape[0]
    out = torch.zeros_like(x)
    cnt = torch.ones_like(x) * 1e-37
    t = timestep(sigma)
    for c in conds:
        if c.get("start_percent", 0.0) > 0 and sigma > percent_to_sigma(c["start_percent"]):
            continue
        if c.get("end_percent", 1.0) < 1 and sigma < percent_to_sigma(c["end_percent"]):
            continue
        input_x, mult, area = area_and_mult(c, x)
        xc = input_x / (sigma ** 2 + 1.0) ** 0.5
        if cin == 9:
            cc = c["concat"]
            if area is not None:
                cc = cc[:, :, area[2]:area[2] + area[0], area[3]:area[3] + area[1]]
            xc = torch.cat([xc, cc], dim=1)
        ctx = repeat_to_batch_size(c["ctx"], B)
        o = fake_model(xc, ctx, t, cin)
        den = input_x - o * sigma
        if area is None:
            out += den * mult
            cnt += mult
        else:
            sl = (slice(None), slice(None), slice(area[2], area[2] + area[0]),
                  slice(area[3], area[3] + area[1]))
            out[sl] += den * mult
            cnt[sl] += mult
    return out / cnt


def concat_cond(c, latent_image, denoise_mask, B, H, W):
    """BaseModel.concat_cond with concat_keys (mask, masked_image)."""
    dm = c.get("concat_mask", denoise_mask)
    img = c.get("concat_latent_image")
    if img is None:
        img = latent_image
    else:
        img = img * 0.18215
    if tuple(img.shape[2:]) != (H, W):
        img = bilinear(img, H, W)   # same aspect ratio: centre crop is a no-op
    img = resize_to_batch_size(img, B)
    if dm is not None:
        if dm.ndim == 4:
            dm = dm[:, :1]
        dm = dm.reshape((-1, 1) + tuple(dm.shape[-2:]))
        if tuple(dm.shape[-2:]) != (H, W):
            dm = bilinear(dm, H, W)
        dm = resize_to_batch_size(dm.round(), B)
        return torch.cat([dm, img], dim=1)
    blank = torch.ones(B, 4, H, W)
    for i, v in enumerate([0.8223, -0.6876, 0.6364, 0.1380]):
        blank[:, i] *= v
    return torch.cat([torch.ones(B, 1, H, W), blank], dim=1)


def flat(t):
    # float32 values; 9 significant digits read back exactly
    return [float("%.9g" % v) for v in t.float().flatten().tolist()]


def cond_json(c):
    j = {"shape": list(c["ctx"].shape), "ctx": flat(c["ctx"])}
    for k in ("strength", "mask_strength", "start_percent", "end_percent"):
        if k in c:
            j[k] = c[k]
    if c.get("area") is not None:
        j["area"] = list(c["area"])
        j["percent"] = bool(c.get("percent"))
    if c.get("mask") is not None:
        j["mask_shape"] = list(c["mask"].shape)
        j["mask"] = flat(c["mask"])
        j["set_area_to_bounds"] = bool(c.get("set_area_to_bounds"))
    for k in ("concat_mask", "concat_latent_image"):
        if c.get(k) is not None:
            j[k + "_shape"] = list(c[k].shape)
            j[k] = flat(c[k])
    return j


def scenario(name, B, H, W, pos, neg, cfg, sigma, cin=4, latent=None, denoise_mask=None,
             seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 4, H, W, generator=g) * 3
    conds = {"positive": [dict(c) for c in pos], "negative": [dict(c) for c in neg]}
    j = {"name": name, "B": B, "H": H, "W": W, "cfg": cfg, "sigma": sigma, "cin": cin,
         "x": flat(x), "positive": [cond_json(c) for c in pos],
         "negative": [cond_json(c) for c in neg]}
    if latent is not None:
        j["latent"] = flat(latent)
    if denoise_mask is not None:
        j["denoise_mask"] = flat(denoise_mask)
    for k in conds:
        conds[k] = [resolve(c, H, W) for c in conds[k]]
        if cin == 9:
            for c in conds[k]:
                c["concat"] = concat_cond(c, latent, denoise_mask, B, H, W)
    for k in conds:
        for c in conds[k]:
            for kk in conds:
                if k != kk:
                    same_area_if_none(conds[kk], c)
    cond = calc(conds["positive"], x, sigma, cin)
    if math.isclose(cfg, 1.0):
        uncond = torch.zeros_like(x)
    else:
        uncond = calc(conds["negative"], x, sigma, cin)
    j["expected"] = flat(uncond + (cond - uncond) * cfg)
    j["n_positive"] = len(conds["positive"])
    j["n_negative"] = len(conds["negative"])
    return j


def rnd_ctx(g, bc, T):
    return torch.randn(bc, T, D, generator=g)


def main():
    g = torch.Generator().manual_seed(1234)
    scen = []

    # areas (absolute, percent), strength, masks (resized, strength,
    # set_area_to_bounds), an area cond in the negative, timestep ranges
    m32 = torch.zeros(1, 32, 32)
    m32[0, 4:20, 10:30] = 1.0
    m32[0, 20:24, 10:30] = 0.5
    mb = torch.zeros(1, 16, 16)
    mb[0, 3:7, 9:12] = 0.75
    pos = [
        {"ctx": rnd_ctx(g, 1, 3)},
        {"ctx": rnd_ctx(g, 1, 6), "area": (8, 6, 4, 5), "strength": 0.7},
        {"ctx": rnd_ctx(g, 1, 3), "area": (0.5, 0.25, 0.25, 0.5), "percent": True},
        {"ctx": rnd_ctx(g, 1, 4), "mask": m32, "mask_strength": 0.8, "strength": 1.2},
        {"ctx": rnd_ctx(g, 1, 3), "mask": mb, "set_area_to_bounds": True},
        {"ctx": rnd_ctx(g, 1, 3), "area": (6, 6, 10, 10), "start_percent": 0.6},
    ]
    neg = [
        {"ctx": rnd_ctx(g, 1, 5)},
        {"ctx": rnd_ctx(g, 1, 3), "area": (16, 8, 0, 8), "strength": 0.5},
    ]
    scen.append(scenario("areas and masks", 2, 16, 16, pos, neg, 6.5, 2.5, seed=1))
    scen.append(scenario("areas and masks, late", 2, 16, 16, pos, neg, 6.5, 0.4, seed=2))

    # batch of 3 with a 3-row mask and a 3-row context; empty bounds
    m3 = torch.rand(3, 12, 12, generator=g)
    pos = [
        {"ctx": rnd_ctx(g, 3, 4), "mask": m3},
        {"ctx": rnd_ctx(g, 1, 4), "mask": torch.zeros(1, 12, 12), "set_area_to_bounds": True},
        {"ctx": rnd_ctx(g, 1, 2), "area": (3, 12, 9, 0)},
    ]
    neg = [{"ctx": rnd_ctx(g, 1, 4)}]
    scen.append(scenario("mask batch", 3, 12, 12, pos, neg, 3.0, 5.0, seed=3))

    # inpaint model (9 input channels): entry concat_* / sampling mask / none
    latent = torch.randn(2, 4, 8, 8, generator=g) * 0.7
    dmask = torch.zeros(2, 4, 8, 8)
    dmask[:, :, 2:6, 3:8] = 1.0
    dmask[1, :, 0, :] = 0.6
    cm = torch.zeros(1, 1, 16, 16)
    cm[0, 0, 4:13, 2:9] = 1.0
    cli = torch.randn(1, 4, 16, 16, generator=g)
    pos = [
        {"ctx": rnd_ctx(g, 1, 3), "concat_mask": cm, "concat_latent_image": cli},
        {"ctx": rnd_ctx(g, 1, 3), "area": (4, 4, 4, 4)},
    ]
    neg = [{"ctx": rnd_ctx(g, 1, 3)}]
    scen.append(scenario("inpaint model", 2, 8, 8, pos, neg, 4.0, 1.5, cin=9, latent=latent,
                         denoise_mask=dmask, seed=4))
    scen.append(scenario("inpaint model, no mask", 2, 8, 8, pos[1:], neg, 4.0, 1.5, cin=9,
                         latent=latent, seed=5))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "scenarios": scen}, f)
    print("wrote", OUT, "with", len(scen), "scenarios")


if __name__ == "__main__":
    main()

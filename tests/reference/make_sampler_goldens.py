#!/usr/bin/python3
"""Golden references for vkflow's samplers (core/sampling/samplers.c,
tests/sampling/test_samplers.c).

Regenerate (from the repository root):

    /usr/bin/python3 tests/reference/make_sampler_goldens.py

(with torchsde importable: `pip install torchsde`, or TORCHSDE_PATH=<dir
holding a torchsde source tree and its helpers trampoline and boltons>;
BrownianTree only needs trampoline's generator trampoline, and boltons is
imported but not used by it, so minimal stand-ins for those two do).

It writes tests/reference/golden/sampling_samplers.json.  CI never runs this
script: the test reads the committed file.  Needs torch, numpy and scipy
(Debian: python3-torch python3-numpy python3-scipy); no ComfyUI.

What it is: a restatement, in torch, of each sampler of ComfyUI's KSampler
list as comfy/k_diffusion/sampling.py and comfy/samplers.py write it (same
tensor / Python-float operations in the same order), run with an analytic
toy denoiser that the C test implements identically:

    u(x, σ) = x·a                         a = 1/(1 + σ²)   (uncond)
    c(x, σ) = u + tanh(x)·(0.25·σ·a)                        (cond)
    D(x, σ) = u + (c − u)·2                                 (CFG 2)

on a [2, 4, 5, 3] latent, with schedules copied from the committed scheduler
goldens (sampling_schedulers.json): SD1 karras and normal (20 steps), SD1
karras 3 steps, SD3 normal 20 steps (flow model: the RF variants and the
logit half-logSNR).

Noise: default_noise_sampler is torch.Generator seeded with seed + 1 (as
ComfyUI does on CPU) and one randn of the latent per call — bit-exact in C.
The SDE samplers' BrownianTreeNoiseSampler runs torchsde itself (needed
only here: `pip install torchsde`, or a source checkout on TORCHSDE_PATH).
"""
import json
import math
import os
import struct

import numpy as np
import torch
from scipy import integrate

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "reference", "golden")

SHAPE = [2, 4, 5, 3]
SEED = 42
CFG = 2.0

# ---------------------------------------------------------------- denoiser

class Model:
    """The toy denoiser; flow = CONST model sampling (SD3, shift 3)."""

    def __init__(self, flow):
        self.flow = flow
        self.uncond = None
        self.calls = 0

    def __call__(self, x, sigma):
        s = float(sigma)
        a = 1.0 / (1.0 + s * s)
        u = x * a
        c = u + torch.tanh(x) * (0.25 * s * a)
        self.uncond = u
        self.calls += 1
        return u + (c - u) * CFG

    def percent_to_sigma(self, p):
        shift = 3.0
        t = 1.0 - p
        return shift * t / (1 + (shift - 1) * t)

    def noise_scaling(self, sigma, noise, latent):
        if self.flow:
            return sigma * noise + (1.0 - sigma) * latent
        noise = noise * sigma
        noise += latent
        return noise


# ---------------------------------------------------------------- noise

def default_noise_sampler(x, seed):
    g = torch.Generator()
    g.manual_seed(seed + 1)
    return lambda sigma, sigma_next: torch.randn(x.size(), generator=g)


def import_torchsde():
    """torchsde (pip install torchsde, or a source checkout: TORCHSDE_PATH=dir
    holding the torchsde package; its helpers trampoline and boltons must be
    importable too)."""
    import sys
    extra = os.environ.get("TORCHSDE_PATH")
    if extra:
        sys.path.insert(0, extra)
    import torchsde
    return torchsde


def tree_sampler(x, sigmas, seed):
    """ComfyUI's BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed,
    cpu=True): BatchedBrownianTree over one torchsde.BrownianTree."""
    torchsde = import_torchsde()
    t0, t1 = sigmas[sigmas > 0].min(), sigmas.max()
    tree = torchsde.BrownianTree(t0.cpu(), torch.zeros_like(x).cpu(), t1.cpu(), entropy=seed)

    def noise(sigma, sigma_next):
        a, b = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        lo, hi, sign = (a, b, 1) if a < b else (b, a, -1)
        w = torch.stack([tree(lo.cpu().float(), hi.cpu().float())]) * (1 * sign)
        return w[0] / (b - a).abs().sqrt()
    return noise


# ---------------------------------------------------------------- helpers


def to_d(x, sigma, denoised):
    return (x - denoised) / sigma


def get_ancestral_step(sigma_from, sigma_to, eta=1.):
    if not eta:
        return sigma_to, 0.
    sigma_up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5
    return sigma_down, sigma_up


def lam_fn(m, sigma):
    return sigma.logit().neg() if m.flow else sigma.log().neg()


def sig_fn(m, lam):
    return lam.neg().sigmoid() if m.flow else lam.neg().exp()


def offset_first(m, sigmas):
    if len(sigmas) <= 1:
        return sigmas
    if m.flow and sigmas[0] >= 1:
        sigmas = sigmas.clone()
        sigmas[0] = m.percent_to_sigma(1e-4)
    return sigmas

# ---------------------------------------------------------------- samplers


def euler(m, x, sigmas, cb, o):
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        d = to_d(x, sigmas[i], den)
        cb(i, x, den)
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def euler_ancestral(m, x, sigmas, cb, o):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        if not m.flow:
            sd, su = get_ancestral_step(sigmas[i], sigmas[i + 1], eta)
            cb(i, x, den)
            if sd == 0:
                x = den
            else:
                d = to_d(x, sigmas[i], den)
                x = x + d * (sd - sigmas[i]) + ns(sigmas[i], sigmas[i + 1]) * s_noise * su
        else:
            cb(i, x, den)
            if sigmas[i + 1] == 0:
                x = den
            else:
                ratio = 1 + (sigmas[i + 1] / sigmas[i] - 1) * eta
                sd = sigmas[i + 1] * ratio
                a1 = 1 - sigmas[i + 1]
                ad = 1 - sd
                renoise = (sigmas[i + 1] ** 2 - sd ** 2 * a1 ** 2 / ad ** 2) ** 0.5
                q = sd / sigmas[i]
                x = q * x + (1 - q) * den
                if eta > 0:
                    x = (a1 / ad) * x + ns(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


def euler_ancestral_cfg_pp(m, x, sigmas, cb, o, eta=None, s_noise=None):
    eta = o.get("eta", 1.0) if eta is None else eta
    s_noise = o.get("s_noise", 1.0) if s_noise is None else s_noise
    ns = default_noise_sampler(x, SEED)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        un = m.uncond
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            alpha_s = sigmas[i] * lam_fn(m, sigmas[i]).exp()
            alpha_t = sigmas[i + 1] * lam_fn(m, sigmas[i + 1]).exp()
            d = to_d(x, sigmas[i], alpha_s * un)
            sd, su = get_ancestral_step(sigmas[i] / alpha_s, sigmas[i + 1] / alpha_t, eta=eta)
            sd = alpha_t * sd
            x = alpha_t * den + sd * d
            if eta > 0 and s_noise > 0:
                x = x + alpha_t * ns(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


def euler_cfg_pp(m, x, sigmas, cb, o):
    return euler_ancestral_cfg_pp(m, x, sigmas, cb, o, eta=0.0, s_noise=0.0)


def heun(m, x, sigmas, cb, o):
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        d = to_d(x, sigmas[i], den)
        cb(i, x, den)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            den2 = m(x2, sigmas[i + 1])
            d2 = to_d(x2, sigmas[i + 1], den2)
            x = x + ((d + d2) / 2) * dt
    return x


def heunpp2(m, x, sigmas, cb, o):
    s_end = sigmas[-1]
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        d = to_d(x, sigmas[i], den)
        cb(i, x, den)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == s_end:
            x = x + d * dt
        elif sigmas[i + 2] == s_end:
            x2 = x + d * dt
            den2 = m(x2, sigmas[i + 1])
            d2 = to_d(x2, sigmas[i + 1], den2)
            w = 2 * sigmas[0]
            w2 = sigmas[i + 1] / w
            w1 = 1 - w2
            x = x + (d * w1 + d2 * w2) * dt
        else:
            x2 = x + d * dt
            den2 = m(x2, sigmas[i + 1])
            d2 = to_d(x2, sigmas[i + 1], den2)
            x3 = x2 + d2 * (sigmas[i + 2] - sigmas[i + 1])
            den3 = m(x3, sigmas[i + 2])
            d3 = to_d(x3, sigmas[i + 2], den3)
            w = 3 * sigmas[0]
            w2 = sigmas[i + 1] / w
            w3 = sigmas[i + 2] / w
            w1 = 1 - w2 - w3
            x = x + (w1 * d + w2 * d2 + w3 * d3) * dt
    return x


def dpm_2(m, x, sigmas, cb, o):
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        d = to_d(x, sigmas[i], den)
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            mid = sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp()
            x2 = x + d * (mid - sigmas[i])
            den2 = m(x2, mid)
            d2 = to_d(x2, mid, den2)
            x = x + d2 * (sigmas[i + 1] - sigmas[i])
    return x


def dpm_2_ancestral(m, x, sigmas, cb, o):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        if m.flow:
            ratio = 1 + (sigmas[i + 1] / sigmas[i] - 1) * eta
            sd = sigmas[i + 1] * ratio
            a1 = 1 - sigmas[i + 1]
            ad = 1 - sd
            su = (sigmas[i + 1] ** 2 - sd ** 2 * a1 ** 2 / ad ** 2) ** 0.5
        else:
            sd, su = get_ancestral_step(sigmas[i], sigmas[i + 1], eta)
        cb(i, x, den)
        d = to_d(x, sigmas[i], den)
        if sd == 0:
            x = x + d * (sd - sigmas[i])
        else:
            mid = sigmas[i].log().lerp(sd.log(), 0.5).exp()
            x2 = x + d * (mid - sigmas[i])
            den2 = m(x2, mid)
            d2 = to_d(x2, mid, den2)
            x = x + d2 * (sd - sigmas[i])
            if m.flow:
                x = (a1 / ad) * x + ns(sigmas[i], sigmas[i + 1]) * s_noise * su
            else:
                x = x + ns(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


def lms_coeff(order, t, i, j):
    def fn(tau):
        prod = 1.
        for k in range(order):
            if j == k:
                continue
            prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return prod
    return integrate.quad(fn, t[i], t[i + 1], epsrel=1e-4)[0]


def lms(m, x, sigmas, cb, o):
    order = o.get("order", 4)
    sc = sigmas.numpy()
    ds = []
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        ds.append(to_d(x, sigmas[i], den))
        if len(ds) > order:
            ds.pop(0)
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            cur = min(i + 1, order)
            coeffs = [lms_coeff(cur, sc, i, j) for j in range(cur)]
            x = x + sum(c * d for c, d in zip(coeffs, reversed(ds)))
    return x


class DPMSolver:
    def __init__(self, m, cb):
        self.m, self.cb = m, cb

    def t(self, sigma):
        return -sigma.log()

    def sigma(self, t):
        return t.neg().exp()

    def eps(self, cache, key, x, t):
        if key in cache:
            return cache[key], cache
        e = (x - self.m(x, self.sigma(t))) / self.sigma(t)
        return e, {key: e, **cache}

    def step1(self, x, t, tn, cache):
        h = tn - t
        e, cache = self.eps(cache, "eps", x, t)
        return x - self.sigma(tn) * h.expm1() * e, cache

    def step2(self, x, t, tn, r1=1 / 2, cache=None):
        h = tn - t
        e, cache = self.eps(cache, "eps", x, t)
        s1 = t + r1 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * e
        e1, cache = self.eps(cache, "eps_r1", u1, s1)
        return x - self.sigma(tn) * h.expm1() * e - self.sigma(tn) / (2 * r1) * h.expm1() * (e1 - e), cache

    def step3(self, x, t, tn, r1=1 / 3, r2=2 / 3, cache=None):
        h = tn - t
        e, cache = self.eps(cache, "eps", x, t)
        s1 = t + r1 * h
        s2 = t + r2 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * e
        e1, cache = self.eps(cache, "eps_r1", u1, s1)
        u2 = x - self.sigma(s2) * (r2 * h).expm1() * e - self.sigma(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (e1 - e)
        e2, cache = self.eps(cache, "eps_r2", u2, s2)
        return x - self.sigma(tn) * h.expm1() * e - self.sigma(tn) / r2 * (h.expm1() / h - 1) * (e2 - e), cache

    def fast(self, x, t_start, t_end, nfe):
        m = math.floor(nfe / 3) + 1
        ts = linspace(t_start, t_end, m + 1)
        if nfe % 3 == 0:
            orders = [3] * (m - 2) + [2, 1]
        else:
            orders = [3] * (m - 1) + [nfe % 3]
        for i in range(len(orders)):
            cache = {}
            t, tn = ts[i], ts[i + 1]
            e, cache = self.eps(cache, "eps", x, t)
            self.cb(i, x, x - self.sigma(t) * e)
            if orders[i] == 1:
                x, cache = self.step1(x, t, tn, cache)
            elif orders[i] == 2:
                x, cache = self.step2(x, t, tn, cache=cache)
            else:
                x, cache = self.step3(x, t, tn, cache=cache)
            # eta = 0: su = 0, the noise term adds nothing
        return x

    def adaptive(self, x, t_start, t_end, order=3, rtol=0.05, atol=0.0078, h_init=0.05,
                 pcoeff=0., icoeff=1., dcoeff=0., accept_safety=0.81):
        atol, rtol = torch.tensor(atol), torch.tensor(rtol)
        s = t_start
        x_prev = x
        h = h_init
        b1, b2, b3 = (pcoeff + icoeff + dcoeff) / order, -(pcoeff + 2 * dcoeff) / order, dcoeff / order
        errs = []
        steps = 0
        while s < t_end - 1e-5:
            cache = {}
            t = torch.minimum(t_end, s + h)
            e, cache = self.eps(cache, "eps", x, s)
            den = x - self.sigma(s) * e
            x_low, cache = self.step2(x, s, t, r1=1 / 3, cache=cache)
            x_high, cache = self.step3(x, s, t, cache=cache)
            delta = torch.maximum(atol, rtol * torch.maximum(x_low.abs(), x_prev.abs()))
            error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
            inv = 1 / (float(error) + 1e-8)
            if not errs:
                errs = [inv, inv, inv]
            errs[0] = inv
            factor = errs[0] ** b1 * errs[1] ** b2 * errs[2] ** b3
            factor = 1 + math.atan(factor - 1)
            accept = factor >= accept_safety
            if accept:
                errs[2] = errs[1]
                errs[1] = errs[0]
            h *= factor
            if accept:
                x_prev = x_low
                x = x_high
                s = t
            steps += 1
            self.cb(steps - 1, x, den)
        return x


def linspace(start, end, steps):
    """torch >= 2.0's CPU linspace (see make_sampling_goldens.py)."""
    start, end = float(start), float(end)
    if steps == 1:
        return torch.tensor([start], dtype=torch.float32)
    st = torch.tensor(start, dtype=torch.float32)
    en = torch.tensor(end, dtype=torch.float32)
    step = (en - st) / float(steps - 1)
    half = steps // 2
    out = []
    for i in range(steps):
        out.append(st + step * float(i) if i < half else en - step * float(steps - i - 1))
    return torch.stack(out)


def dpm_sigma_min(sigmas):
    smin = sigmas[-1]
    if smin == 0:
        smin = sigmas[-2]
    return smin


def dpm_fast(m, x, sigmas, cb, o):
    d = DPMSolver(m, cb)
    return d.fast(x, d.t(sigmas[0].clone()), d.t(dpm_sigma_min(sigmas).clone()), len(sigmas) - 1)


def dpm_adaptive(m, x, sigmas, cb, o):
    d = DPMSolver(m, cb)
    return d.adaptive(x, d.t(sigmas[0].clone()), d.t(dpm_sigma_min(sigmas).clone()))


def dpmpp_2s_ancestral(m, x, sigmas, cb, o):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    if m.flow:
        sigma_fn = lambda lb: (lb.exp() + 1) ** -1
        lambda_fn = lambda s: ((1 - s) / s).log()
        for i in range(len(sigmas) - 1):
            den = m(x, sigmas[i])
            ratio = 1 + (sigmas[i + 1] / sigmas[i] - 1) * eta
            sd = sigmas[i + 1] * ratio
            a1 = 1 - sigmas[i + 1]
            ad = 1 - sd
            renoise = (sigmas[i + 1] ** 2 - sd ** 2 * a1 ** 2 / ad ** 2) ** 0.5
            cb(i, x, den)
            if sigmas[i + 1] == 0:
                d = to_d(x, sigmas[i], den)
                x = x + d * (sd - sigmas[i])
            else:
                if sigmas[i] == 1.0:
                    sigma_s = torch.tensor(0.9999)
                else:
                    ti, td = lambda_fn(sigmas[i]), lambda_fn(sd)
                    h = td - ti
                    sigma_s = sigma_fn(ti + 0.5 * h)
                q = sigma_s / sigmas[i]
                u = q * x + (1 - q) * den
                D = m(u, sigma_s)
                q = sd / sigmas[i]
                x = q * x + (1 - q) * D
            if sigmas[i + 1] > 0 and eta > 0:
                x = (a1 / ad) * x + ns(sigmas[i], sigmas[i + 1]) * s_noise * renoise
        return x
    sigma_fn = lambda t: t.neg().exp()
    t_fn = lambda s: s.log().neg()
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        sd, su = get_ancestral_step(sigmas[i], sigmas[i + 1], eta)
        cb(i, x, den)
        if sd == 0:
            d = to_d(x, sigmas[i], den)
            x = x + d * (sd - sigmas[i])
        else:
            t, tn = t_fn(sigmas[i]), t_fn(sd)
            r = 1 / 2
            h = tn - t
            s = t + r * h
            x2 = (sigma_fn(s) / sigma_fn(t)) * x - (-h * r).expm1() * den
            den2 = m(x2, sigma_fn(s))
            x = (sigma_fn(tn) / sigma_fn(t)) * x - (-h).expm1() * den2
        if sigmas[i + 1] > 0:
            x = x + ns(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


def dpmpp_2s_ancestral_cfg_pp(m, x, sigmas, cb, o):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    sigma_fn = lambda t: t.neg().exp()
    t_fn = lambda s: s.log().neg()
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        sd, su = get_ancestral_step(sigmas[i], sigmas[i + 1], eta)
        cb(i, x, den)
        if sd == 0:
            d = to_d(x, sigmas[i], m.uncond)
            x = den + d * sd
        else:
            t, tn = t_fn(sigmas[i]), t_fn(sd)
            r = 1 / 2
            h = tn - t
            s = t + r * h
            x2 = (sigma_fn(s) / sigma_fn(t)) * (x + (den - m.uncond)) - (-h * r).expm1() * den
            den2 = m(x2, sigma_fn(s))
            x = (sigma_fn(tn) / sigma_fn(t)) * (x + (den - m.uncond)) - (-h).expm1() * den2
        if sigmas[i + 1] > 0:
            x = x + ns(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


def dpmpp_sde(m, x, sigmas, cb, o):
    eta, s_noise, r = o.get("eta", 1.0), o.get("s_noise", 1.0), o.get("r", 0.5)
    ns = tree_sampler(x, sigmas, SEED)
    sigmas = offset_first(m, sigmas)
    fac = 1 / (2 * r)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            ls, lt = lam_fn(m, sigmas[i]), lam_fn(m, sigmas[i + 1])
            h = lt - ls
            ls1 = ls + r * h
            s1 = sig_fn(m, ls1)
            alpha_s = sigmas[i] * ls.exp()
            alpha_s1 = s1 * ls1.exp()
            alpha_t = sigmas[i + 1] * lt.exp()
            sd, su = get_ancestral_step(ls.neg().exp(), ls1.neg().exp(), eta)
            h_ = sd.log().neg() - ls
            x2 = (alpha_s1 / alpha_s) * (-h_).exp() * x - alpha_s1 * (-h_).expm1() * den
            if eta > 0 and s_noise > 0:
                x2 = x2 + alpha_s1 * ns(sigmas[i], s1) * s_noise * su
            den2 = m(x2, s1)
            sd, su = get_ancestral_step(ls.neg().exp(), lt.neg().exp(), eta)
            h_ = sd.log().neg() - ls
            dd = (1 - fac) * den + fac * den2
            x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * dd
            if eta > 0 and s_noise > 0:
                x = x + alpha_t * ns(sigmas[i], sigmas[i + 1]) * s_noise * su
    return x


def dpmpp_2m(m, x, sigmas, cb, o):
    sigma_fn = lambda t: t.neg().exp()
    t_fn = lambda s: s.log().neg()
    old = None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        t, tn = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
        h = tn - t
        if old is None or sigmas[i + 1] == 0:
            x = (sigma_fn(tn) / sigma_fn(t)) * x - (-h).expm1() * den
        else:
            hl = t - t_fn(sigmas[i - 1])
            r = hl / h
            dd = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
            x = (sigma_fn(tn) / sigma_fn(t)) * x - (-h).expm1() * dd
        old = den
    return x


def dpmpp_2m_cfg_pp(m, x, sigmas, cb, o):
    t_fn = lambda s: s.log().neg()
    old_un = None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        un = m.uncond
        cb(i, x, den)
        t, tn = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
        h = tn - t
        if old_un is None or sigmas[i + 1] == 0:
            mix = -torch.exp(-h) * un
        else:
            hl = t - t_fn(sigmas[i - 1])
            r = hl / h
            mix = -torch.exp(-h) * un - torch.expm1(-h) * (1 / (2 * r)) * (den - old_un)
        x = den + mix + torch.exp(-h) * x
        old_un = un
    return x


def dpmpp_2m_sde(m, x, sigmas, cb, o, solver_type="midpoint"):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    solver_type = o.get("solver_type", solver_type)
    ns = tree_sampler(x, sigmas, SEED)
    sigmas = offset_first(m, sigmas)
    old = None
    h, h_last = None, None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            ls, lt = lam_fn(m, sigmas[i]), lam_fn(m, sigmas[i + 1])
            h = lt - ls
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lt.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * den
            if old is not None:
                r = h_last / h
                if solver_type == "heun":
                    x = x + alpha_t * ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (den - old)
                else:
                    x = x + 0.5 * alpha_t * (-h_eta).expm1().neg() * (1 / r) * (den - old)
            if eta > 0 and s_noise > 0:
                x = x + ns(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt() * s_noise
        old = den
        h_last = h
    return x


def dpmpp_2m_sde_heun(m, x, sigmas, cb, o):
    return dpmpp_2m_sde(m, x, sigmas, cb, o, solver_type="heun")


def dpmpp_3m_sde(m, x, sigmas, cb, o):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    ns = tree_sampler(x, sigmas, SEED)
    sigmas = offset_first(m, sigmas)
    d1, d2 = None, None
    h, h1, h2 = None, None, None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
        else:
            ls, lt = lam_fn(m, sigmas[i]), lam_fn(m, sigmas[i + 1])
            h = lt - ls
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lt.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * den
            if h2 is not None:
                r0 = h1 / h
                r1 = h2 / h
                d1_0 = (den - d1) / r0
                d1_1 = (d1 - d2) / r1
                dd1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                dd2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                phi_3 = phi_2 / h_eta - 0.5
                x = x + (alpha_t * phi_2) * dd1 - (alpha_t * phi_3) * dd2
            elif h1 is not None:
                r = h1 / h
                d = (den - d1) / r
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                x = x + (alpha_t * phi_2) * d
            if eta > 0 and s_noise > 0:
                x = x + ns(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt() * s_noise
        d1, d2 = den, d1
        h1, h2 = h, h1
    return x


def ddpm(m, x, sigmas, cb, o):
    ns = default_noise_sampler(x, SEED)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        sigma, sigma_prev = sigmas[i], sigmas[i + 1]
        xs = x / torch.sqrt(1.0 + sigmas[i] ** 2.0)
        noise = (x - den) / sigmas[i]
        ac = 1 / ((sigma * sigma) + 1)
        acp = 1 / ((sigma_prev * sigma_prev) + 1)
        alpha = ac / acp
        mu = (1.0 / alpha).sqrt() * (xs - (1 - alpha) * noise / (1 - ac).sqrt())
        if sigma_prev > 0:
            mu += ((1 - alpha) * (1. - acp) / (1. - ac)).sqrt() * ns(sigma, sigma_prev)
        x = mu
        if sigmas[i + 1] != 0:
            x *= torch.sqrt(1.0 + sigmas[i + 1] ** 2.0)
    return x


def lcm(m, x, sigmas, cb, o):
    ns = default_noise_sampler(x, SEED)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        x = den
        if sigmas[i + 1] > 0:
            x = m.noise_scaling(sigmas[i + 1], ns(sigmas[i], sigmas[i + 1]), x)
    return x


def ipndm(m, x, sigmas, cb, o, v=False):
    max_order = 4
    buf = []
    ts = sigmas
    for i in range(len(sigmas) - 1):
        tc, tn = sigmas[i], sigmas[i + 1]
        den = m(x, tc)
        cb(i, x, den)
        dc = (x - den) / tc
        order = min(max_order, i + 1)
        if tn == 0:
            xn = den
        elif order == 1:
            xn = x + (tn - tc) * dc
        elif not v:
            if order == 2:
                xn = x + (tn - tc) * (3 * dc - buf[-1]) / 2
            elif order == 3:
                xn = x + (tn - tc) * (23 * dc - 16 * buf[-1] + 5 * buf[-2]) / 12
            else:
                xn = x + (tn - tc) * (55 * dc - 59 * buf[-1] + 37 * buf[-2] - 9 * buf[-3]) / 24
        else:
            hn = tn - tc
            hn1 = tc - ts[i - 1]
            if order == 2:
                c1 = (2 + (hn / hn1)) / 2
                c2 = -(hn / hn1) / 2
                xn = x + (tn - tc) * (c1 * dc + c2 * buf[-1])
            elif order == 3:
                hn2 = ts[i - 1] - ts[i - 2]
                temp = (1 - hn / (3 * (hn + hn1)) * (hn * (hn + hn1)) / (hn1 * (hn1 + hn2))) / 2
                c1 = (2 + (hn / hn1)) / 2 + temp
                c2 = -(hn / hn1) / 2 - (1 + hn1 / hn2) * temp
                c3 = temp * hn1 / hn2
                xn = x + (tn - tc) * (c1 * dc + c2 * buf[-1] + c3 * buf[-2])
            else:
                hn2 = ts[i - 1] - ts[i - 2]
                hn3 = ts[i - 2] - ts[i - 3]
                temp1 = (1 - hn / (3 * (hn + hn1)) * (hn * (hn + hn1)) / (hn1 * (hn1 + hn2))) / 2
                temp2 = ((1 - hn / (3 * (hn + hn1))) / 2 + (1 - hn / (2 * (hn + hn1))) * hn / (6 * (hn + hn1 + hn2))) \
                    * (hn * (hn + hn1) * (hn + hn1 + hn2)) / (hn1 * (hn1 + hn2) * (hn1 + hn2 + hn3))
                c1 = (2 + (hn / hn1)) / 2 + temp1 + temp2
                c2 = -(hn / hn1) / 2 - (1 + hn1 / hn2) * temp1 - (1 + (hn1 / hn2) + (hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3)))) * temp2
                c3 = temp1 * hn1 / hn2 + ((hn1 / hn2) + (hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3))) * (1 + hn2 / hn3)) * temp2
                c4 = -temp2 * (hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3))) * hn1 / hn2
                xn = x + (tn - tc) * (c1 * dc + c2 * buf[-1] + c3 * buf[-2] + c4 * buf[-3])
        if len(buf) == max_order - 1:
            for k in range(max_order - 2):
                buf[k] = buf[k + 1]
            buf[-1] = dc
        else:
            buf.append(dc)
        x = xn
    return x


def ipndm_v(m, x, sigmas, cb, o):
    return ipndm(m, x, sigmas, cb, o, v=True)


def res_multistep(m, x, sigmas, cb, o, eta=1.0, cfg_pp=False):
    s_noise = o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    sigma_fn = lambda t: t.neg().exp()
    t_fn = lambda s: s.log().neg()
    phi1_fn = lambda t: torch.expm1(t) / t
    phi2_fn = lambda t: (phi1_fn(t) - 1.0) / t
    old_sd = None
    old = None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        un = m.uncond
        sd, su = get_ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        cb(i, x, den)
        if sd == 0 or old is None:
            if cfg_pp:
                d = to_d(x, sigmas[i], un)
                x = den + d * sd
            else:
                d = to_d(x, sigmas[i], den)
                x = x + d * (sd - sigmas[i])
        else:
            t, t_old, tn, tp = t_fn(sigmas[i]), t_fn(old_sd), t_fn(sd), t_fn(sigmas[i - 1])
            h = tn - t
            c2 = (tp - t_old) / h
            p1, p2 = phi1_fn(-h), phi2_fn(-h)
            b1 = torch.nan_to_num(p1 - p2 / c2, nan=0.0)
            b2 = torch.nan_to_num(p2 / c2, nan=0.0)
            if cfg_pp:
                x = x + (den - un)
                x = sigma_fn(h) * x + h * (b1 * un + b2 * old)
            else:
                x = sigma_fn(h) * x + h * (b1 * den + b2 * old)
        if sigmas[i + 1] > 0:
            x = x + ns(sigmas[i], sigmas[i + 1]) * s_noise * su
        old = un if cfg_pp else den
        old_sd = sd
    return x


def gradient_estimation(m, x, sigmas, cb, o, cfg_pp=False):
    ge_gamma = 2.
    old_d = None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        d = to_d(x, sigmas[i], m.uncond if cfg_pp else den)
        cb(i, x, den)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = den
        else:
            if cfg_pp:
                x = den + d * sigmas[i + 1]
            else:
                x = x + d * dt
            if i >= 1:
                x = x + (ge_gamma - 1) * (d - old_d) * dt
        old_d = d
    return x


def er_sde(m, x, sigmas, cb, o):
    s_noise = o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    scaler = lambda v: v * ((v ** 0.3).exp() + 10.0)
    pts = torch.arange(0, 200.0, dtype=torch.float32)
    sigmas = offset_first(m, sigmas)
    lams = lam_fn(m, sigmas).neg().exp()
    old, old_dd = None, None
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        stage = min(3, i + 1)
        if sigmas[i + 1] == 0:
            x = den
        else:
            ls, lt = lams[i], lams[i + 1]
            alpha_s = sigmas[i] / ls
            alpha_t = sigmas[i + 1] / lt
            r_alpha = alpha_t / alpha_s
            r = scaler(lt) / scaler(ls)
            x = r_alpha * r * x + alpha_t * (1 - r) * den
            if stage >= 2:
                dt = lt - ls
                step = -dt / 200.0
                pos = lt + pts * step
                sp = scaler(pos)
                s = torch.sum(1 / sp, dtype=torch.float64).float() * step
                dd = (den - old) / (ls - lams[i - 1])
                x = x + alpha_t * (dt + s * scaler(lt)) * dd
                if stage >= 3:
                    s_u = torch.sum((pos - ls) / sp, dtype=torch.float64).float() * step
                    du = (dd - old_dd) / ((ls - lams[i - 2]) / 2)
                    x = x + alpha_t * ((dt ** 2) / 2 + s_u * scaler(lt)) * du
                old_dd = dd
            if s_noise > 0:
                x = x + alpha_t * ns(sigmas[i], sigmas[i + 1]) * s_noise * (lt ** 2 - ls ** 2 * r ** 2).sqrt().nan_to_num(nan=0.0)
        old = den
    return x


def ei1(h):
    return torch.expm1(h)


def ei2(h):
    return (torch.expm1(h) - h) / h


def seeds_2(m, x, sigmas, cb, o, eta=None, s_noise=None, r=0.5, solver_type="phi_1"):
    eta = o.get("eta", 1.0) if eta is None else eta
    s_noise = o.get("s_noise", 1.0) if s_noise is None else s_noise
    ns = default_noise_sampler(x, SEED)
    inject = eta > 0 and s_noise > 0
    sigmas = offset_first(m, sigmas)
    fac = 1 / (2 * r)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
            continue
        ls, lt = lam_fn(m, sigmas[i]), lam_fn(m, sigmas[i + 1])
        h = lt - ls
        h_eta = h * (eta + 1)
        ls1 = torch.lerp(ls, lt, r)
        s1 = sig_fn(m, ls1)
        alpha_s1 = s1 * ls1.exp()
        alpha_t = sigmas[i + 1] * lt.exp()
        x2 = s1 / sigmas[i] * (-r * h * eta).exp() * x - alpha_s1 * ei1(-r * h_eta) * den
        if inject:
            sde = (-2 * r * h * eta).expm1().neg().sqrt() * ns(sigmas[i], s1)
            x2 = x2 + sde * s1 * s_noise
        den2 = m(x2, s1)
        if solver_type == "phi_1":
            dd = torch.lerp(den, den2, fac)
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * ei1(-h_eta) * dd
        else:
            b2 = ei2(-h_eta) / r
            b1 = ei1(-h_eta) - b2
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * den + b2 * den2)
        if inject:
            seg = (r - 1) * h * eta
            sde = sde * seg.exp()
            sde = sde + seg.mul(2).expm1().neg().sqrt() * ns(s1, sigmas[i + 1])
            x = x + sde * sigmas[i + 1] * s_noise
    return x


def exp_heun_2_x0(m, x, sigmas, cb, o):
    return seeds_2(m, x, sigmas, cb, o, eta=0.0, s_noise=0.0, r=1.0, solver_type="phi_2")


def exp_heun_2_x0_sde(m, x, sigmas, cb, o):
    return seeds_2(m, x, sigmas, cb, o, r=1.0, solver_type="phi_2")


def seeds_3(m, x, sigmas, cb, o):
    eta, s_noise = o.get("eta", 1.0), o.get("s_noise", 1.0)
    r_1, r_2 = 1. / 3, 2. / 3
    ns = default_noise_sampler(x, SEED)
    inject = eta > 0 and s_noise > 0
    sigmas = offset_first(m, sigmas)
    for i in range(len(sigmas) - 1):
        den = m(x, sigmas[i])
        cb(i, x, den)
        if sigmas[i + 1] == 0:
            x = den
            continue
        ls, lt = lam_fn(m, sigmas[i]), lam_fn(m, sigmas[i + 1])
        h = lt - ls
        h_eta = h * (eta + 1)
        ls1 = torch.lerp(ls, lt, r_1)
        ls2 = torch.lerp(ls, lt, r_2)
        s1, s2 = sig_fn(m, ls1), sig_fn(m, ls2)
        alpha_s1 = s1 * ls1.exp()
        alpha_s2 = s2 * ls2.exp()
        alpha_t = sigmas[i + 1] * lt.exp()
        x2 = s1 / sigmas[i] * (-r_1 * h * eta).exp() * x - alpha_s1 * ei1(-r_1 * h_eta) * den
        if inject:
            sde = (-2 * r_1 * h * eta).expm1().neg().sqrt() * ns(sigmas[i], s1)
            x2 = x2 + sde * s1 * s_noise
        den2 = m(x2, s1)
        a3_2 = r_2 / r_1 * ei2(-r_2 * h_eta)
        a3_1 = ei1(-r_2 * h_eta) - a3_2
        x3 = s2 / sigmas[i] * (-r_2 * h * eta).exp() * x - alpha_s2 * (a3_1 * den + a3_2 * den2)
        if inject:
            seg = (r_1 - r_2) * h * eta
            sde = sde * seg.exp()
            sde = sde + seg.mul(2).expm1().neg().sqrt() * ns(s1, s2)
            x3 = x3 + sde * s2 * s_noise
        den3 = m(x3, s2)
        b3 = ei2(-h_eta) / r_2
        b1 = ei1(-h_eta) - b3
        x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * den + b3 * den3)
        if inject:
            seg = (r_2 - 1) * h * eta
            sde = sde * seg.exp()
            sde = sde + seg.mul(2).expm1().neg().sqrt() * ns(s2, sigmas[i + 1])
            x = x + sde * sigmas[i + 1] * s_noise
    return x



# uni_pc (comfy/extra_samplers/uni_pc.py: SigmaConvert, model_wrapper "noise",
# UniPC.multistep_uni_pc_bh_update, UniPC.sample multistep, sample_unipc)

class SigmaConvert:
    def mlmc(self, sigma):
        return 0.5 * torch.log(1 / ((sigma * sigma) + 1))

    def alpha(self, t):
        return torch.exp(self.mlmc(t))

    def std(self, t):
        return torch.sqrt(1. - torch.exp(2. * self.mlmc(t)))

    def lam(self, t):
        m = self.mlmc(t)
        return m - 0.5 * torch.log(1. - torch.exp(2. * m))


def uni_pc(m, x, sigmas, cb, o, variant="bh1"):
    ns = SigmaConvert()
    timesteps = sigmas.clone()
    if timesteps[-1] == 0:
        timesteps[-1] = 0.001

    def model_fn(xx, t):
        inp = xx * ((t ** 2 + 1.0) ** 0.5)
        noise = (inp - m(inp, t)) / t
        return (xx - ns.std(t) * noise) / ns.alpha(t)

    def update(xx, mpl, tpl, t, order, use_corrector):
        tp0 = tpl[-1]
        lp0, lt = ns.lam(tp0), ns.lam(t)
        mp0 = mpl[-1]
        sp0, st = ns.std(tp0), ns.std(t)
        alpha_t = torch.exp(ns.mlmc(t))
        h = lt - lp0
        rks, D1s = [], []
        for i in range(1, order):
            rk = (ns.lam(tpl[-(i + 1)]) - lp0) / h
            rks.append(rk)
            D1s.append((mpl[-(i + 1)] - mp0) / rk)
        rks.append(torch.tensor(1.))
        rks = torch.stack(rks)
        hh = -h
        h_phi_1 = torch.expm1(hh)
        B_h = hh if variant == "bh1" else torch.expm1(hh)
        hh64 = hh.double()
        hpk = torch.expm1(hh64) / hh64 - 1
        B64 = hh64 if variant == "bh1" else torch.expm1(hh64)
        fact = 1
        R, b = [], []
        for i in range(1, order + 1):
            R.append(torch.pow(rks, i - 1))
            b.append(hpk * fact / B64)
            fact *= (i + 1)
            hpk = hpk / hh64 - 1 / fact
        R = torch.stack(R)
        b = torch.tensor(b, dtype=torch.float32)
        if len(D1s) > 0:
            D1s = torch.stack(D1s, dim=1)
            rhos_p = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1])
        else:
            D1s = None
        if use_corrector:
            rhos_c = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(R, b)
        x_t_ = (st / sp0) * xx - (alpha_t * h_phi_1) * mp0
        pred_res = torch.tensordot(D1s, rhos_p, dims=([1], [0])) if D1s is not None else 0
        x_t = x_t_ - (alpha_t * B_h) * pred_res
        model_t = None
        if use_corrector:
            model_t = model_fn(x_t, t)
            corr_res = torch.tensordot(D1s, rhos_c[:-1], dims=([1], [0])) if D1s is not None else 0
            x_t = x_t_ - (alpha_t * B_h) * (corr_res + rhos_c[-1] * (model_t - mp0))
        return x_t, model_t

    x = x / torch.sqrt(1.0 + timesteps[0] ** 2.0)
    steps = len(timesteps) - 1
    order = min(3, len(timesteps) - 2)
    for si in range(steps):
        if si == 0:
            mpl = [model_fn(x, timesteps[0])]
            tpl = [timesteps[0]]
        elif si < order:
            t = timesteps[si]
            x, mx = update(x, mpl, tpl, t, si, True)
            if mx is None:
                mx = model_fn(x, t)
            mpl.append(mx)
            tpl.append(t)
        else:
            extra = 1 if si == steps - 1 else 0
            for st in range(si, si + 1 + extra):
                t = timesteps[st]
                so = min(order, steps + 1 - st)
                x, mx = update(x, mpl, tpl, t, so, st != steps)
                for i in range(order - 1):
                    tpl[i] = tpl[i + 1]
                    mpl[i] = mpl[i + 1]
                tpl[-1] = t
                if st < steps:
                    if mx is None:
                        mx = model_fn(x, t)
                    mpl[-1] = mx
        cb(si, x, mpl[-1])
    return x / ns.alpha(timesteps[-1])


def uni_pc_bh2(m, x, sigmas, cb, o):
    return uni_pc(m, x, sigmas, cb, o, variant="bh2")


# deis (comfy/k_diffusion/deis.py, 'tab' mode; max_order 3)

def deis_coeff_list(sigmas, max_order, N=10000):
    eps_s, smin, smax = 1e-3, 0.002, 80
    bd = 2 * (np.log(torch.tensor(smin) ** 2 + 1) / eps_s - np.log(torch.tensor(smax) ** 2 + 1)) / (eps_s - 1)
    bmin = np.log(torch.tensor(smax) ** 2 + 1) - 0.5 * bd
    t_steps = ((bmin ** 2 + 2 * bd * (sigmas ** 2 + 1).log()).sqrt() - bmin) / bd
    beta_0, beta_1 = bmin, bd + bmin
    C = []
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        order = min(i + 1, max_order)
        if order == 1:
            C.append([])
            continue
        taus = linspace_vec(t_cur, t_next, N)
        dtau = (t_next - t_cur) / N
        prev_t = t_steps[[i - k for k in range(order)]]
        tt = taus.clone().requires_grad_(True)
        with torch.enable_grad():
            alpha = torch.exp(-0.5 * tt ** 2 * (beta_1 - beta_0) - tt * beta_0)
            alpha.log().sum().backward()
        alpha = alpha.detach()
        integrand = -0.5 * tt.grad / torch.sqrt(alpha * (1 - alpha))
        coeffs = []
        for j in range(order):
            poly = 1
            for k in range(order):
                if k == j:
                    continue
                poly *= (taus - prev_t[k]) / (prev_t[j] - prev_t[k])
            coeffs.append(torch.sum(integrand * poly, dtype=torch.float64).float() * dtau)
        C.append(coeffs)
    return C


def linspace_vec(start, end, steps):
    """torch >= 2.0's CPU linspace, vectorized (same per-element ops)."""
    st, en = start.float(), end.float()
    step = (en - st) / float(steps - 1)
    i = torch.arange(steps, dtype=torch.float32)
    half = steps // 2
    return torch.where(i < half, st + step * i, en - step * (float(steps - 1) - i))


def deis(m, x, sigmas, cb, o):
    max_order = 3
    C = deis_coeff_list(sigmas, max_order)
    buf = []
    for i in range(len(sigmas) - 1):
        tc, tn = sigmas[i], sigmas[i + 1]
        den = m(x, tc)
        cb(i, x, den)
        dc = (x - den) / tc
        order = min(max_order, i + 1)
        if tn <= 0:
            order = 1
        if order == 1:
            xn = x + (tn - tc) * dc
        elif order == 2:
            c0, c1 = C[i]
            xn = x + c0 * dc + c1 * buf[-1]
        else:
            c0, c1, c2 = C[i]
            xn = x + c0 * dc + c1 * buf[-1] + c2 * buf[-2]
        if len(buf) == max_order - 1:
            for k in range(max_order - 2):
                buf[k] = buf[k + 1]
            buf[-1] = dc
        else:
            buf.append(dc)
        x = xn
    return x


# sa_solver (comfy/k_diffusion/sampling.py sample_sa_solver, sa_solver.py)

def sd1_percent_to_sigma(p):
    """ModelSamplingDiscrete.percent_to_sigma for SD1 (float64 table, float32
    log-sigma interpolation; only used for the tau interval here)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1.0 - betas, dim=0)
    sig = ((1 - ac) / ac) ** 0.5
    log_sig = sig.log().float()
    t = torch.tensor((1.0 - p) * 999.0, dtype=torch.float32)
    lo, hi = int(t.floor()), int(t.ceil())
    w = t.frac()
    return float(((1 - w) * log_sig[lo] + w * log_sig[hi]).exp())


def model_percent_to_sigma(m, p):
    return m.percent_to_sigma(p) if m.flow else sd1_percent_to_sigma(p)


def sa_exp_coeffs(s, t, order, tau_t):
    tau_mul = 1 + tau_t ** 2
    h = t - s
    p = torch.arange(order, dtype=s.dtype)
    prod = (t ** p - s ** p * (-tau_mul * h).exp())
    depth = p.unsqueeze(1) - p.unsqueeze(0)
    lf = (p + 1).lgamma()
    mat = lf.unsqueeze(1) - lf.unsqueeze(0)
    if tau_t > 0:
        mat = mat - (depth * math.log(tau_mul))
    signs = torch.where(depth % 2 == 0, 1.0, -1.0)
    mat = (mat.exp() * signs).tril()
    return mat @ prod


def sa_b_coeffs(sigma_next, lams, ls, lt, tau_t):
    n = lams.shape[0]
    ec = sa_exp_coeffs(ls, lt, n, tau_t)
    vt = torch.vander(lams, n, increasing=True).T
    li = torch.linalg.solve(vt, ec)
    return sigma_next * lt.exp() * li


def sa_solver(m, x, sigmas, cb, o, use_pece=False):
    s_noise = o.get("s_noise", 1.0)
    ns = default_noise_sampler(x, SEED)
    sigmas = offset_first(m, sigmas)
    lambdas = lam_fn(m, sigmas)
    start_sigma = model_percent_to_sigma(m, 0.2)
    end_sigma = model_percent_to_sigma(m, 0.8)
    tau_func = lambda sg: 1.0 if start_sigma >= sg.item() > end_sigma else 0.0
    pred_o, corr_o = 3, 4
    max_used = max(pred_o, corr_o)
    x_pred = x
    h, tau_t, noise = 0.0, 0.0, 0.0
    pl = []
    lower_to_end = sigmas[-1].item() == 0
    for i in range(len(sigmas) - 1):
        den = m(x_pred, sigmas[i])
        cb(i, x_pred, den)
        pl.append(den)
        pl = pl[-max_used:]
        pou = min(pred_o, len(pl))
        cou = 0 if (i == 0 or (sigmas[i + 1] == 0 and not use_pece)) else min(corr_o, len(pl))
        if lower_to_end:
            pou = min(pou, len(sigmas) - 2 - i)
            cou = min(cou, len(sigmas) - 1 - i)
        if cou == 0:
            x = x_pred
        else:
            b = sa_b_coeffs(sigmas[i], lambdas[i - cou + 1:i + 1], lambdas[i - 1], lambdas[i], tau_t)
            pm = torch.stack(pl[-cou:], dim=1)
            corr = torch.tensordot(pm, b, dims=([1], [0]))
            x = sigmas[i] / sigmas[i - 1] * (-(tau_t ** 2) * h).exp() * x + corr
            if tau_t > 0 and s_noise > 0:
                x = x + noise
            if use_pece:
                den = m(x, sigmas[i])
                pl[-1] = den
        if sigmas[i + 1] == 0:
            x_pred = den
        else:
            tau_t = tau_func(sigmas[i + 1])
            b = sa_b_coeffs(sigmas[i + 1], lambdas[i - pou + 1:i + 1], lambdas[i], lambdas[i + 1], tau_t)
            pm = torch.stack(pl[-pou:], dim=1)
            pred = torch.tensordot(pm, b, dims=([1], [0]))
            h = lambdas[i + 1] - lambdas[i]
            x_pred = sigmas[i + 1] / sigmas[i] * (-(tau_t ** 2) * h).exp() * x + pred
            if tau_t > 0 and s_noise > 0:
                noise = ns(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * tau_t ** 2 * h).expm1().neg().sqrt() * s_noise
                x_pred = x_pred + noise
    return x_pred


def sa_solver_pece(m, x, sigmas, cb, o):
    return sa_solver(m, x, sigmas, cb, o, use_pece=True)

SAMPLERS = {
    "euler": euler,
    "euler_cfg_pp": euler_cfg_pp,
    "euler_ancestral": euler_ancestral,
    "euler_ancestral_cfg_pp": euler_ancestral_cfg_pp,
    "heun": heun,
    "heunpp2": heunpp2,
    "exp_heun_2_x0": exp_heun_2_x0,
    "exp_heun_2_x0_sde": exp_heun_2_x0_sde,
    "dpm_2": dpm_2,
    "dpm_2_ancestral": dpm_2_ancestral,
    "lms": lms,
    "dpm_fast": dpm_fast,
    "dpm_adaptive": dpm_adaptive,
    "dpmpp_2s_ancestral": dpmpp_2s_ancestral,
    "dpmpp_2s_ancestral_cfg_pp": dpmpp_2s_ancestral_cfg_pp,
    "dpmpp_sde": dpmpp_sde,
    "dpmpp_sde_gpu": dpmpp_sde,
    "dpmpp_2m": dpmpp_2m,
    "dpmpp_2m_cfg_pp": dpmpp_2m_cfg_pp,
    "dpmpp_2m_sde": dpmpp_2m_sde,
    "dpmpp_2m_sde_gpu": dpmpp_2m_sde,
    "dpmpp_2m_sde_heun": dpmpp_2m_sde_heun,
    "dpmpp_2m_sde_heun_gpu": dpmpp_2m_sde_heun,
    "dpmpp_3m_sde": dpmpp_3m_sde,
    "dpmpp_3m_sde_gpu": dpmpp_3m_sde,
    "ddpm": ddpm,
    "lcm": lcm,
    "ipndm": ipndm,
    "ipndm_v": ipndm_v,
    "res_multistep": lambda m, x, s, cb, o: res_multistep(m, x, s, cb, o, eta=0.0),
    "res_multistep_cfg_pp": lambda m, x, s, cb, o: res_multistep(m, x, s, cb, o, eta=0.0, cfg_pp=True),
    "res_multistep_ancestral": lambda m, x, s, cb, o: res_multistep(m, x, s, cb, o, eta=o.get("eta", 1.0)),
    "res_multistep_ancestral_cfg_pp": lambda m, x, s, cb, o: res_multistep(m, x, s, cb, o, eta=o.get("eta", 1.0), cfg_pp=True),
    "gradient_estimation": gradient_estimation,
    "gradient_estimation_cfg_pp": lambda m, x, s, cb, o: gradient_estimation(m, x, s, cb, o, cfg_pp=True),
    "er_sde": er_sde,
    "seeds_2": seeds_2,
    "seeds_3": seeds_3,
    "ddim": euler,
    "deis": deis,
    "sa_solver": sa_solver,
    "sa_solver_pece": sa_solver_pece,
    "uni_pc": uni_pc,
    "uni_pc_bh2": uni_pc_bh2,
}

# ---------------------------------------------------------------- cases


def f32list(t):
    """float32 values as their shortest round-trip decimal."""
    return [float(repr(np.float32(v))) for v in t.reshape(-1).tolist()]


def load_schedule(model, scheduler, steps):
    with open(os.path.join(GOLDEN, "sampling_schedulers.json")) as f:
        d = json.load(f)
    for e in d["cases"]:
        if (e["node"] == "KSampler" and e["model"] == model and e["scheduler"] == scheduler
                and e["steps"] == steps and e["denoise"] == 1.0 and not e["discard_penultimate"]):
            return e["sigmas"]
    raise KeyError((model, scheduler, steps))


def main():
    schedules = {
        "sd1_karras_20": ("sd1", load_schedule("sd1", "karras", 20)),
        "sd1_normal_20": ("sd1", load_schedule("sd1", "normal", 20)),
        "sd1_karras_3": ("sd1", load_schedule("sd1", "karras", 3)),
        "sd3_normal_20": ("sd3", load_schedule("sd3", "normal", 20)),
    }
    g = torch.Generator()
    g.manual_seed(7)
    base = torch.randn(SHAPE, generator=g)
    cases = []
    param_cases = [
        ("euler_ancestral", {"eta": 0.5, "s_noise": 0.8}),
        ("dpmpp_2m_sde", {"eta": 0.7, "s_noise": 1.0, "solver_type": "heun"}),
        ("dpmpp_sde", {"eta": 1.0, "s_noise": 0.9, "r": 0.3}),
        ("dpmpp_3m_sde", {"eta": 0.5, "s_noise": 1.0}),
        ("lms", {"order": 3}),
        ("dpmpp_2s_ancestral", {"eta": 0.6, "s_noise": 1.1}),
        ("euler_ancestral_cfg_pp", {"eta": 0.5, "s_noise": 1.0}),
    ]
    runs = [(name, {}) for name in SAMPLERS] + param_cases
    for sname, (model, sig) in schedules.items():
        sigmas = torch.tensor(sig, dtype=torch.float32)
        for name, params in runs:
            if params and sname not in ("sd1_karras_20", "sd3_normal_20"):
                continue
            m = Model(model == "sd3")
            x = base * sigmas[0]
            steps = []
            x = SAMPLERS[name](m, x, sigmas, lambda i, xx, d: steps.append(i), params)
            cases.append({"sampler": name, "schedule": sname, "params": params,
                          "calls": m.calls, "callbacks": len(steps), "x": f32list(x)})
    # default_noise_sampler, bit for bit: the first three draws
    x = torch.zeros(SHAPE)
    ns = default_noise_sampler(x, SEED)
    draws = [f32list(ns(None, None)) for _ in range(3)]
    # torchsde's BrownianTree, as ComfyUI builds it, and numpy's SeedSequence
    torchsde = import_torchsde()
    lo, hi = torch.tensor(0.0291675), torch.tensor(14.614642)
    tree = torchsde.BrownianTree(lo, torch.zeros(SHAPE), hi, entropy=SEED)
    incs = []
    for ta, tb in [(0.0291675, 14.614642), (0.5, 1.0), (1.0, 3.3), (3.3, 7.307321), (0.03, 0.031),
                   (7.0, 14.0), (0.2, 0.200003)]:
        ta32, tb32 = torch.tensor(ta), torch.tensor(tb)
        incs.append({"ta": float(ta32), "tb": float(tb32), "w": f32list(tree(ta32, tb32))})
    tnoise = f32list(tree_sampler(torch.zeros(SHAPE), torch.tensor([14.614642, 10.0, 0.0291675, 0.0]),
                                  SEED)(torch.tensor(14.614642), torch.tensor(10.0)))
    big = torchsde.BrownianTree(torch.tensor(0.0), torch.zeros(3), torch.tensor(1.0),
                                entropy=2 ** 40 + 12345)
    big_inc = f32list(big(torch.tensor(0.25), torch.tensor(0.8)))
    seedseq = []
    for ent, key in [(42, None), (42, (0, 0)), (42, (5, 3)), (2 ** 40 + 12345, (123456, 20)), (0, None)]:
        ss = np.random.SeedSequence(entropy=ent, spawn_key=key if key else (), pool_size=24)
        seedseq.append({"entropy": str(ent), "key": list(key) if key else [],
                        "words": [int(v) for v in ss.generate_state(4)]})
    out = {
        "torch": torch.__version__,
        "shape": SHAPE, "seed": SEED, "cfg": CFG, "base_seed": 7,
        "base": f32list(base),
        "schedules": {k: v[1] for k, v in schedules.items()},
        "schedule_models": {k: v[0] for k, v in schedules.items()},
        "noise_draws": draws,
        "tree": {"lo": float(lo), "hi": float(hi), "increments": incs,
                 "noise_14.614642_10.0": tnoise, "big_entropy_inc": big_inc,
                 "seed_sequence": seedseq},
        "cases": cases,
    }
    path = os.path.join(GOLDEN, "sampling_samplers.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", path, os.path.getsize(path), "bytes,", len(cases), "cases")


if __name__ == "__main__":
    main()

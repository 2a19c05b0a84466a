#!/usr/bin/python3
"""Golden references for vkflow's CPU sampling numerics (tests/sampling).

Regenerate (from the repository root):

    apt-get install -y python3-torch python3-numpy python3-scipy
    /usr/bin/python3 tests/reference/make_sampling_goldens.py

It writes tests/reference/golden/sampling_*.json.  CI never runs this script:
the tests read the committed files.  Debian 12 ships torch 1.13.1; the
script records torch.__version__ and the CPU kernel torch dispatched in
every file.  The scalar randn kernel is captured by re-running this script
under ATEN_CPU_CAPABILITY=default.

The scheduler references below restate ComfyUI's formulas (comfy/samplers.py,
comfy/model_sampling.py, comfy/k_diffusion/sampling.py,
comfy_extras/nodes_custom_sampler.py, nodes_align_your_steps.py) with the same
torch / numpy / Python-float operations, so that the dtype of every step is
the one ComfyUI uses.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

TORCH_LINSPACE = torch.linspace


def linspace(start, end, steps, dtype=torch.float32):
    """torch.linspace as PyTorch >= 2.0 computes it on CPU (pytorch#89048
    made the kernel scalar for every dtype): the first half counts up from
    start, the second half down from end.  torch 1.13 still vectorizes
    (base + i*step per 8 floats / 4 doubles), which differs in the last bit;
    `--native-linspace` keeps the installed torch's own linspace."""
    if "--native-linspace" in sys.argv:
        return TORCH_LINSPACE(start, end, steps, dtype=dtype)
    f = np.float32 if dtype == torch.float32 else np.float64
    start, end = f(start), f(end)
    if steps == 1:
        return torch.tensor([start], dtype=dtype)
    step = (end - start) / f(steps - 1)
    half = steps // 2
    vals = [start + step * f(i) if i < half else end - step * f(steps - i - 1) for i in range(steps)]
    return torch.tensor(np.array(vals, dtype=f), dtype=dtype)

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")

SEEDS = [0, 1, 2, 42, 2**32 + 5, 2**63 + 7, 2**64 - 1]
SIZES = list(range(1, 21)) + [31, 32, 33, 100, 261, 1000, 4 * 64 * 64]
BIG = [([4, 4, 128, 128], 0), ([4, 4, 128, 128], 2**64 - 1), ([1, 16, 21, 60, 104], 42)]
EDGE = 64  # values kept at each end of a big tensor


def fnv1a64(arr):
    """FNV-1a 64 over the little-endian bytes of a float32 array."""
    data = np.ascontiguousarray(arr, dtype="<f4").view(np.uint8)
    h = 0xcbf29ce484222325
    prime = 0x100000001b3
    # fold 8 bytes at a time with numpy would change the hash; stay byte-wise
    for b in data.tobytes():
        h ^= b
        h = (h * prime) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def bits(arr):
    return [int(x) for x in np.ascontiguousarray(arr, dtype="<f4").view(np.uint32)]


def tensor_record(t):
    a = t.contiguous().view(-1).numpy()
    rec = {"count": int(a.size)}
    if a.size <= 2 * EDGE:
        rec["bits"] = bits(a)
    else:
        rec["first"] = bits(a[:EDGE])
        rec["last"] = bits(a[-EDGE:])
        rec["fnv1a64"] = fnv1a64(a)
    return rec


def capability():
    return torch.__config__.show().split("CPU capability usage: ")[1].split("\n")[0].strip()


def randn_cases(big):
    cases = []
    for seed in SEEDS:
        for n in SIZES:
            torch.manual_seed(seed)
            r = tensor_record(torch.randn(n))
            r.update(seed=str(seed), shape=[n])
            cases.append(r)
    if big:
        for shape, seed in BIG:
            torch.manual_seed(seed)
            r = tensor_record(torch.randn(shape))
            r.update(seed=str(seed), shape=shape)
            cases.append(r)
    return cases


def generator_cases():
    out = []
    for seed in SEEDS:
        g = torch.Generator().manual_seed(seed)
        rec = {"seed": str(seed), "initial_seed": str(g.initial_seed())}
        # random() % 2^31 and random64() % 2^63, then uniform float / double
        rec["random_mod_2_31"] = [str(int(v)) for v in torch.randint(0, 2**31, (8,), generator=g, dtype=torch.int64)]
        rec["random64_mod_2_63"] = [str(int(v)) for v in torch.empty(8, dtype=torch.int64).random_(generator=g)]
        rec["uniform_float_bits"] = bits(torch.rand(8, generator=g).numpy())
        rec["uniform_double"] = [float(v) for v in torch.rand(8, generator=g, dtype=torch.float64)]
        rec["normal_double"] = [float(v) for v in torch.randn(5, generator=g, dtype=torch.float64)]
        out.append(rec)
    return out


def prepare_noise(shape, seed, noise_inds=None):
    """ComfyUI comfy.sample.prepare_noise on a latent of `shape`."""
    generator = torch.manual_seed(seed)
    if noise_inds is None:
        return torch.randn(shape, dtype=torch.float32, generator=generator, device="cpu")
    unique_inds, inverse = np.unique(noise_inds, return_inverse=True)
    noises = []
    for i in range(unique_inds[-1] + 1):
        noise = torch.randn([1] + list(shape)[1:], dtype=torch.float32, generator=generator, device="cpu")
        if i in unique_inds:
            noises.append(noise)
    noises = [noises[i] for i in inverse]
    return torch.cat(noises, axis=0)


NOISE_CASES = [
    ([1, 4, 8, 8], 5, None),
    ([2, 4, 8, 8], 7, None),
    ([3, 4, 5, 7], 2**64 - 1, None),
    ([3, 4, 8, 8], 123, [2, 0, 2]),
    ([4, 4, 6, 6], 9, [3, 1, 1, 0]),
    ([3, 1, 1, 3], 11, [1, 2, 0]),   # 3 values per draw: the cached-normal path
    ([2, 1, 1, 17], 12, [0, 1]),     # 17 per draw: block of 16 plus redrawn tail
    ([2, 16, 5, 4, 4], 13, None),    # video-shaped latent
]


def noise_cases():
    out = []
    for shape, seed, inds in NOISE_CASES:
        r = tensor_record(prepare_noise(shape, seed, inds))
        r.update(shape=shape, seed=str(seed), batch_index=inds)
        out.append(r)
    return out


# ---------------------------------------------------------------- model sampling

def rescale_zero_terminal_snr_sigmas(sigmas):
    alphas_cumprod = 1 / ((sigmas * sigmas) + 1)
    alphas_bar_sqrt = alphas_cumprod.sqrt()
    alphas_bar_sqrt_0 = alphas_bar_sqrt[0].clone()
    alphas_bar_sqrt_T = alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt -= (alphas_bar_sqrt_T)
    alphas_bar_sqrt *= alphas_bar_sqrt_0 / (alphas_bar_sqrt_0 - alphas_bar_sqrt_T)
    alphas_bar = alphas_bar_sqrt**2
    alphas_bar[-1] = 4.8973451890853435e-08
    return ((1 - alphas_bar) / alphas_bar) ** 0.5


class Discrete:
    kind = "discrete"

    def __init__(self, linear_start=0.00085, linear_end=0.012, timesteps=1000, zsnr=False):
        betas = linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps, dtype=torch.float64) ** 2
        alphas_cumprod = torch.cumprod(1. - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        if zsnr:
            sigmas = rescale_zero_terminal_snr_sigmas(sigmas)
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()

    @property
    def sigma_min(self):
        return self.sigmas[0]

    @property
    def sigma_max(self):
        return self.sigmas[-1]

    def timestep(self, sigma):
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape)

    def sigma(self, timestep):
        t = torch.clamp(timestep.float(), min=0, max=(len(self.sigmas) - 1))
        low_idx = t.floor().long()
        high_idx = t.ceil().long()
        w = t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low_idx] + w * self.log_sigmas[high_idx]
        return log_sigma.exp()

    def percent_to_sigma(self, percent):
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        percent = 1.0 - percent
        return self.sigma(torch.tensor(percent * 999.0)).item()


def time_snr_shift(alpha, t):
    if alpha == 1.0:
        return t
    return alpha * t / (1 + (alpha - 1) * t)


class Flow:
    kind = "flow"

    def __init__(self, shift=1.0, multiplier=1000, timesteps=1000):
        self.shift = shift
        self.multiplier = multiplier
        self.sigmas = self.sigma((torch.arange(1, timesteps + 1, 1) / timesteps) * multiplier)

    sigma_min = Discrete.sigma_min
    sigma_max = Discrete.sigma_max

    def timestep(self, sigma):
        return sigma * self.multiplier

    def sigma(self, timestep):
        return time_snr_shift(self.shift, timestep / self.multiplier)

    def percent_to_sigma(self, percent):
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return time_snr_shift(self.shift, 1.0 - percent)


def flux_time_shift(mu, sigma, t):
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** sigma)


class Flux:
    kind = "flux"

    def __init__(self, shift=1.15, timesteps=10000):
        self.shift = shift
        self.sigmas = self.sigma(torch.arange(1, timesteps + 1, 1) / timesteps)

    sigma_min = Discrete.sigma_min
    sigma_max = Discrete.sigma_max

    def timestep(self, sigma):
        return sigma

    def sigma(self, timestep):
        return flux_time_shift(self.shift, 1.0, timestep)

    def percent_to_sigma(self, percent):
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return flux_time_shift(self.shift, 1.0, 1.0 - percent)


MODELS = {
    "sd1": lambda: Discrete(),
    "sdxl_zsnr": lambda: Discrete(zsnr=True),
    "sd3": lambda: Flow(shift=3.0, multiplier=1000),
    "auraflow": lambda: Flow(shift=1.73, multiplier=1.0),
    "flux": lambda: Flux(shift=1.15),
}


def f32(x):
    """A float32 as the shortest decimal that reads back to it; NaN as null."""
    x = np.float32(x)
    return None if np.isnan(x) else float(repr(x).replace("np.float32(", "").rstrip(")"))


def floats(t):
    return [f32(x) for x in torch.as_tensor(t, dtype=torch.float32).view(-1).numpy()]


def table_record(ms):
    s = ms.sigmas
    idx = sorted(set(list(range(10)) + list(range(0, len(s), 97)) + list(range(len(s) - 10, len(s)))))
    rec = {"count": len(s), "fnv1a64": fnv1a64(s.numpy()), "index": idx, "sigmas": [f32(s[i]) for i in idx]}
    if hasattr(ms, "log_sigmas"):
        rec["log_fnv1a64"] = fnv1a64(ms.log_sigmas.numpy())
        rec["log_sigmas"] = [f32(ms.log_sigmas[i]) for i in idx]
    ts = [0.0, 0.25, 1.0, 17.5, 498.3, 998.9, 999.0, 1200.0]
    rec["sigma_at"] = [[t, float(ms.sigma(torch.tensor(t)))] for t in ts]
    sg = [float(s[0]), float(s[len(s) // 3]), float(s[-1]), 0.5, 1.0, 3.0]
    rec["timestep_of"] = [[x, float(ms.timestep(torch.tensor(x, dtype=torch.float32)))] for x in sg]
    rec["percent_to_sigma"] = [[p, float(ms.percent_to_sigma(p))] for p in [-1.0, 0.0, 0.1, 0.333, 0.5, 0.9, 1.0]]
    return rec


# ---------------------------------------------------------------- schedulers

def append_zero(x):
    return torch.cat([x, x.new_zeros([1])])


def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.):
    ramp = linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def get_sigmas_exponential(n, sigma_min, sigma_max):
    return append_zero(linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def get_sigmas_polyexponential(n, sigma_min, sigma_max, rho=1.):
    ramp = linspace(1, 0, n) ** rho
    return append_zero(torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min)))


def simple_scheduler(s, steps):
    sigs = []
    ss = len(s.sigmas) / steps
    for x in range(steps):
        sigs += [float(s.sigmas[-(1 + int(x * ss))])]
    sigs += [0.0]
    return torch.FloatTensor(sigs)


def ddim_scheduler(s, steps):
    x = 1
    if math.isclose(float(s.sigmas[x]), 0, abs_tol=0.00001):
        steps += 1
        sigs = []
    else:
        sigs = [0.0]
    ss = max(len(s.sigmas) // steps, 1)
    while x < len(s.sigmas):
        sigs += [float(s.sigmas[x])]
        x += ss
    return torch.FloatTensor(sigs[::-1])


def normal_scheduler(s, steps, sgm=False):
    start = s.timestep(s.sigma_max)
    end = s.timestep(s.sigma_min)
    append = True
    if sgm:
        timesteps = linspace(float(start), float(end), steps + 1)[:-1]
    else:
        if math.isclose(float(s.sigma(end)), 0, abs_tol=0.00001):
            steps += 1
            append = False
        timesteps = linspace(float(start), float(end), steps)
    sigs = [float(s.sigma(timesteps[x])) for x in range(len(timesteps))]
    if append:
        sigs += [0.0]
    return torch.FloatTensor(sigs)


def beta_scheduler(s, steps, alpha=0.6, beta=0.6):
    import scipy.stats
    total_timesteps = len(s.sigmas) - 1
    ts = 1 - np.linspace(0, 1, steps, endpoint=False)
    ts = np.rint(scipy.stats.beta.ppf(ts, alpha, beta) * total_timesteps)
    sigs = []
    last_t = -1
    for t in ts:
        if t != last_t:
            sigs += [float(s.sigmas[int(t)])]
        last_t = t
    sigs += [0.0]
    return torch.FloatTensor(sigs)


def linear_quadratic_schedule(s, steps, threshold_noise=0.025, linear_steps=None):
    if steps == 1:
        sched = [1.0, 0.0]
    else:
        if linear_steps is None:
            linear_steps = steps // 2
        lin = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quadratic_coef = diff / (linear_steps * quadratic_steps ** 2)
        linear_coef = threshold_noise / linear_steps - 2 * diff / (quadratic_steps ** 2)
        const = quadratic_coef * (linear_steps ** 2)
        quad = [quadratic_coef * (i ** 2) + linear_coef * i + const for i in range(linear_steps, steps)]
        sched = [1.0 - x for x in lin + quad + [1.0]]
    return torch.FloatTensor(sched) * s.sigma_max


def kl_optimal_scheduler(n, sigma_min, sigma_max):
    adj_idxs = torch.arange(n, dtype=torch.float).div_(n - 1)
    sigmas = adj_idxs.new_zeros(n + 1)
    sigmas[:-1] = (adj_idxs * math.atan(sigma_min) + (1 - adj_idxs) * math.atan(sigma_max)).tan_()
    return sigmas


SCHEDULERS = {
    "simple": lambda s, n: simple_scheduler(s, n),
    "sgm_uniform": lambda s, n: normal_scheduler(s, n, sgm=True),
    "karras": lambda s, n: get_sigmas_karras(n, float(s.sigma_min), float(s.sigma_max)),
    "exponential": lambda s, n: get_sigmas_exponential(n, float(s.sigma_min), float(s.sigma_max)),
    "ddim_uniform": lambda s, n: ddim_scheduler(s, n),
    "beta": lambda s, n: beta_scheduler(s, n),
    "normal": lambda s, n: normal_scheduler(s, n),
    "linear_quadratic": lambda s, n: linear_quadratic_schedule(s, n),
    "kl_optimal": lambda s, n: kl_optimal_scheduler(n, float(s.sigma_min), float(s.sigma_max)),
}
DISCARD = ("dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2")


def ksampler_sigmas(ms, scheduler, steps, denoise, discard):
    def calc(n):
        if discard:
            n += 1
        sig = SCHEDULERS[scheduler](ms, n)
        if discard:
            sig = torch.cat([sig[:-2], sig[-1:]])
        return sig
    if denoise is None or denoise > 0.9999:
        return calc(steps)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    return calc(int(steps / denoise))[-(steps + 1):]


def basic_scheduler(ms, scheduler, steps, denoise):
    total = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.FloatTensor([])
        total = int(steps / denoise)
    return SCHEDULERS[scheduler](ms, total)[-(steps + 1):]


def sd_turbo(ms, steps, denoise):
    start_step = 10 - int(10 * denoise)
    timesteps = torch.flip(torch.arange(1, 11) * 100 - 1, (0,))[start_step:start_step + steps]
    return append_zero(ms.sigma(timesteps))


AYS = {
    "SD1": [14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
            0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582],
    "SDXL": [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
             0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582],
    "SVD": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
}


def loglinear_interp(t_steps, num_steps):
    xs = np.linspace(0, 1, len(t_steps))
    ys = np.log(t_steps[::-1])
    new_xs = np.linspace(0, 1, num_steps)
    new_ys = np.interp(new_xs, xs, ys)
    return np.exp(new_ys)[::-1].copy()


def align_your_steps(model_type, steps, denoise):
    total_steps = steps
    if denoise < 1.0:
        if denoise <= 0.0:
            return torch.FloatTensor([])
        total_steps = round(steps * denoise)
    sigmas = AYS[model_type][:]
    if (steps + 1) != len(sigmas):
        sigmas = loglinear_interp(sigmas, steps + 1)
    sigmas = sigmas[-(total_steps + 1):]
    sigmas[-1] = 0
    return torch.FloatTensor(sigmas)


STEPS = [1, 2, 3, 20, 50]


def function_cases():
    """torch's float32 exp, tan and pow on many inputs (the vectorized SLEEF path:
    512 values, a multiple of 16)."""
    g = torch.Generator().manual_seed(1234)
    out = []
    x = torch.rand(512, generator=g) * 25 - 20
    out.append({"op": "exp", "x": bits(x.numpy()), "y": bits(x.exp().numpy())})
    t = torch.rand(512, generator=g) * 3.1 - 1.55
    out.append({"op": "tan", "x": bits(t.numpy()), "y": bits(t.tan().numpy())})
    base = torch.rand(512, generator=g) * 2.5 + 1e-3
    for e in [7.0, 2.5, 0.3, 1.0 / 7.0]:
        out.append({"op": "pow", "exponent": e, "x": bits(base.numpy()) if e == 7.0 else "same",
                    "y": bits((base ** e).numpy())})
    return out


def formula_cases():
    """EPS / V_PREDICTION / CONST formulas of comfy/model_sampling.py."""
    def reshape(sigma):
        return sigma.view(())

    def calc_input(pred, sigma, x):
        if pred == "flow":
            return x
        return x / (reshape(sigma) ** 2 + 1.0 ** 2) ** 0.5

    def calc_denoised(pred, sigma, out, x):
        sigma = reshape(sigma)
        if pred == "v":
            return x * 1.0 ** 2 / (sigma ** 2 + 1.0 ** 2) - out * sigma * 1.0 / (sigma ** 2 + 1.0 ** 2) ** 0.5
        return x - out * sigma

    def noise_scaling(pred, sigma, noise, latent, max_denoise):
        sigma = reshape(sigma)
        if pred == "flow":
            return sigma * (1.0 * noise) + (1.0 - sigma) * latent
        noise = noise * torch.sqrt(1.0 + sigma ** 2.0) if max_denoise else noise * sigma
        noise += latent
        return noise

    def inverse(pred, sigma, latent):
        return latent if pred != "flow" else latent / (1.0 - reshape(sigma))

    g = torch.Generator().manual_seed(99)
    x, out, noise, latent = (torch.randn(16, generator=g) * 3 for _ in range(4))
    cases = []
    for pred in ["eps", "v", "flow"]:
        for sigma in ([14.614642, 1.0, 0.0291675, 0.5] if pred != "flow" else [1.0, 0.75, 0.0319, 0.001]):
            st = torch.tensor([sigma], dtype=torch.float32)
            cases.append({"prediction": pred, "sigma": f32(st[0]),
                          "input": bits(calc_input(pred, st, x).numpy()),
                          "denoised": bits(calc_denoised(pred, st, out, x).numpy()),
                          "noise_scaling": bits(noise_scaling(pred, st, noise.clone(), latent, False).numpy()),
                          "noise_scaling_max": bits(noise_scaling(pred, st, noise.clone(), latent, True).numpy()),
                          "inverse": bits(inverse(pred, st, latent).numpy())})
    return {"x": bits(x.numpy()), "model_output": bits(out.numpy()), "noise": bits(noise.numpy()),
            "latent": bits(latent.numpy()), "cases": cases}


def scheduler_cases():
    models = {name: make() for name, make in MODELS.items()}
    tables = {name: table_record(ms) for name, ms in models.items()}
    cases = []
    for name, ms in models.items():
        if name in ("auraflow", "sdxl_zsnr"):
            continue  # its table is checked; its schedules add nothing over sd3's
        for sched in SCHEDULERS:
            for steps in STEPS:
                for denoise in [1.0, 0.5]:
                    cases.append({"node": "KSampler", "model": name, "scheduler": sched, "steps": steps,
                                  "denoise": denoise, "discard_penultimate": False,
                                  "sigmas": floats(ksampler_sigmas(ms, sched, steps, denoise, False))})
        for sched in SCHEDULERS:
            for steps, denoise in [(3, 1.0), (20, 1.0), (20, 0.75)]:
                cases.append({"node": "KSampler", "model": name, "scheduler": sched, "steps": steps,
                              "denoise": denoise, "discard_penultimate": True,
                              "sigmas": floats(ksampler_sigmas(ms, sched, steps, denoise, True))})
            for steps, denoise in [(7, 1.0), (10, 0.3), (20, 0.999)]:
                cases.append({"node": "BasicScheduler", "model": name, "scheduler": sched, "steps": steps,
                              "denoise": denoise, "sigmas": floats(basic_scheduler(ms, sched, steps, denoise))})
    smax, smin = 14.614642, 0.0291675  # the scheduler nodes' defaults
    for steps in STEPS:
        for rho in [7.0, 3.0, 1.0]:
            cases.append({"node": "KarrasScheduler", "steps": steps, "sigma_max": smax, "sigma_min": smin,
                          "rho": rho, "sigmas": floats(get_sigmas_karras(steps, smin, smax, rho))})
        cases.append({"node": "ExponentialScheduler", "steps": steps, "sigma_max": smax, "sigma_min": smin,
                      "sigmas": floats(get_sigmas_exponential(steps, smin, smax))})
        for rho in [1.0, 2.0, 0.5]:
            cases.append({"node": "PolyexponentialScheduler", "steps": steps, "sigma_max": smax,
                          "sigma_min": smin, "rho": rho,
                          "sigmas": floats(get_sigmas_polyexponential(steps, smin, smax, rho))})
        for a, b in [(0.6, 0.6), (0.5, 0.7), (2.0, 1.0)]:
            cases.append({"node": "BetaSamplingScheduler", "model": "sd1", "steps": steps, "alpha": a,
                          "beta": b, "sigmas": floats(beta_scheduler(models["sd1"], steps, a, b))})
        for model_type in AYS:
            for denoise in [1.0, 0.5, 0.0]:
                cases.append({"node": "AlignYourStepsScheduler", "model_type": model_type, "steps": steps,
                              "denoise": denoise, "sigmas": floats(align_your_steps(model_type, steps, denoise))})
    for model_type in AYS:
        cases.append({"node": "AlignYourStepsScheduler", "model_type": model_type, "steps": 10,
                      "denoise": 1.0, "sigmas": floats(align_your_steps(model_type, 10, 1.0))})
    for steps in range(1, 11):
        for denoise in [1.0, 0.5, 0.3]:
            cases.append({"node": "SDTurboScheduler", "model": "sd1", "steps": steps, "denoise": denoise,
                          "sigmas": floats(sd_turbo(models["sd1"], steps, denoise))})
    return tables, cases


def write(name, obj):
    path = os.path.join(GOLDEN, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print("wrote", os.path.relpath(path), os.path.getsize(path), "bytes")


def main():
    if "--schedulers-only" in sys.argv:
        json.dump({"cases": scheduler_cases()[1]}, sys.stdout)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--scalar-randn":
        json.dump({"capability": capability(), "cases": randn_cases(big=True)}, sys.stdout)
        return
    os.makedirs(GOLDEN, exist_ok=True)
    meta = {"torch": torch.__version__, "numpy": np.__version__, "capability": capability(),
            "generator": "tests/reference/make_sampling_goldens.py"}
    write("sampling_randn.json", dict(meta, kernel="avx2", cases=randn_cases(big=True),
                                      generators=generator_cases()))
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    scalar = json.loads(subprocess.run([sys.executable, os.path.abspath(__file__), "--scalar-randn"],
                                       env=env, check=True, capture_output=True).stdout)
    assert scalar["capability"] != meta["capability"], "ATEN_CPU_CAPABILITY=default had no effect"
    write("sampling_randn_scalar.json", dict(meta, capability=scalar["capability"], kernel="scalar",
                                             cases=scalar["cases"]))
    write("sampling_noise.json", dict(meta, cases=noise_cases()))
    tables, cases = scheduler_cases()
    write("sampling_schedulers.json", dict(meta, linspace="torch>=2.0 scalar kernel (emulated)",
                                           tables=tables, formulas=formula_cases(), functions=function_cases(),
                                           cases=cases))
    native = json.loads(subprocess.run([sys.executable, os.path.abspath(__file__), "--native-linspace",
                                        "--schedulers-only"], check=True, capture_output=True).stdout)
    diff = worst = total = 0
    for a, b in zip(cases, native["cases"]):
        for x, y in zip(a["sigmas"], b["sigmas"]):
            total += 1
            if x != y and x is not None:
                diff += 1
                worst = max(worst, abs(x - y) / abs(x))
    print("torch %s's own linspace changes %d of %d scheduler values, by at most %.3g relative"
          % (torch.__version__, diff, total, worst))


if __name__ == "__main__":
    main()

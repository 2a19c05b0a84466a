#!/usr/bin/env python3
"""Lua packs through the vkflow command line: --nodes and VKF_NODES_PATH,
broken packs reported by name, Lua nodes in `nodes --json` shaped like
built-ins, and a Lua sampler (lua/lua_samplers) inside the built-in
SamplerCustomAdvanced driver giving the built-in sampler's latent on a
synthesized tiny SD1.5 checkpoint (exit 77 without a Vulkan device)."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

VKFLOW = sys.argv[1]
ROOT = os.environ.get("VKF_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
PACKS = os.path.join(ROOT, "tests", "lua", "packs")
failures = checks = 0


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def vk(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([VKFLOW, *args], capture_output=True, text=True, env=e, timeout=300)
    return p.returncode, p.stdout, p.stderr


rc, out, err = vk("nodes", "--json", "--nodes", PACKS)
check(rc == 0, "nodes --json --nodes")
info = json.loads(out)
check("LuaTestEcho" in info and "LuaImageGrid" in info and "SlimDDPMSample" in info, "Lua nodes listed")
check(set(info["PrimitiveInt"].keys()) <= set(info["LuaTestEcho"].keys()), "the keys of a built-in")
times = info["LuaTestEcho"]["input"]["required"]["times"]
check(times[0] == "INT" and times[1]["default"] == 2 and times[1]["min"] == 1 and times[1]["max"] == 10,
      "INT spec")
for broken in ("broken_syntax", "broken_decl", "broken_dup"):
    check("Lua pack '%s'" % broken in err, "broken pack %s reported" % broken)
check("NeverRegistered" not in info, "broken pack skipped")
rc, out, err = vk("nodes", env={"VKF_NODES_PATH": "/nonexistent:" + PACKS})
check(rc == 0 and "LuaTestEcho" in out, "VKF_NODES_PATH")
rc, out, _ = vk("nodes")
check("LuaTestEcho" not in out and "LuaColorMatch" in out, "shipped packs only by default")

if vk("devices")[0] != 0:
    print("no Vulkan device: skipping the sampler runs")
    sys.exit(77 if failures == 0 else 1)

tmp = tempfile.mkdtemp(prefix="vkf-lua-cli-")
os.makedirs(os.path.join(tmp, "models", "checkpoints"))
rc, _, err = vk("synth-model", "--arch", "sd15", "--scale", "tiny", "--seed", "1", "-o",
                os.path.join(tmp, "models", "checkpoints", "tiny.safetensors"))
check(rc == 0, "synth-model: " + err)


def graph(lua, sampler, prefix):
    g = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a cat"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0],
                                                    "negative": ["3", 0], "cfg": 5.0}},
        "5": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}},
        "6": {"class_type": "LuaKarrasScheduler", "inputs": {"steps": 4, "sigma_max": 14.614642,
                                                             "sigma_min": 0.0291675, "rho": 7.0}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "LuaSamplerSelect" if lua else "KSamplerSelect",
              "inputs": {"sampler_name": sampler}},
        "9": {"class_type": "LuaSamplerCustomAdvanced" if lua else "SamplerCustomAdvanced",
              "inputs": {"noise": ["5", 0], "guider": ["4", 0], "sampler": ["8", 0],
                         "sigmas": ["6", 0], "latent_image": ["7", 0]}},
        "10": {"class_type": "SaveLatent", "inputs": {"samples": ["9", 0], "filename_prefix": prefix}},
    }
    path = os.path.join(tmp, prefix + ".json")
    with open(path, "w") as f:
        json.dump(g, f)
    return path


def latent(prefix):
    with open(os.path.join(tmp, "out", prefix + "_00001_.latent"), "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    s, e = h["latent_tensor"]["data_offsets"]
    return struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])


for sampler in ("euler", "dpmpp_2m"):
    files = [graph(True, sampler, "lua_" + sampler), graph(False, sampler, "ref_" + sampler)]
    rc, _, err = vk("run", *files, "--models", os.path.join(tmp, "models"),
                    "--output", os.path.join(tmp, "out"), "--quiet")
    check(rc == 0, "run %s: %s" % (sampler, err))
    if rc == 0:
        a, b = latent("lua_" + sampler), latent("ref_" + sampler)
        diff = max(abs(x - y) for x, y in zip(a, b))
        scale = max(abs(y) for y in b)
        print("%s: Lua sampler in SamplerCustomAdvanced vs built-in: max |diff| %g (max |x| %g)"
              % (sampler, diff, scale))
        check(len(a) == 256 and scale > 1 and diff <= 1e-5 * scale, "Lua %s equals built-in" % sampler)

shutil.rmtree(tmp)
print("test_lua_cli: %d of %d checks failed" % (failures, checks) if failures
      else "test_lua_cli: all %d checks passed" % checks)
sys.exit(1 if failures else 0)

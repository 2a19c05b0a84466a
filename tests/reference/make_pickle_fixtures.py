#!/usr/bin/env python3
"""Writes the PyTorch-checkpoint fixtures of tests/weights/data/ and the
pickle fuzz corpus tests/fuzz/corpus_pickle/, with the Python standard
library only (no torch needed).

How: torch.save (>= 1.6) writes a zip with `<archive>/data.pkl` (a protocol
2 pickle), one entry `<archive>/data/<key>` per storage and
`<archive>/version`.  Tensors pickle as
    torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
                                    requires_grad, OrderedDict())
and storages as the persistent id
    ('storage', torch.FloatStorage, key, 'cpu', numel).
We register stand-in modules `torch` and `torch._utils` in sys.modules so
that the standard pickler emits exactly those GLOBAL opcodes.

Checked against real torch: run with `--check` where torch is importable
(Debian python3-torch 1.13 was used): every fixture is loaded back with
torch.load(weights_only=True) and compared with the values below, and a
real torch.save of the same f32 state dict is written next to the fixtures
as torch_f32.pt, and torch_module.ckpt (a wrapped nn.Module state_dict), so
the C test also reads files torch itself produced.

Usage: python3 tests/reference/make_pickle_fixtures.py [--check]  (from the
repository root).
"""
import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "tests", "weights", "data")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus_pickle")


def fake_module(name):
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    return mod


TORCH_ONLY = "--torch-only" in sys.argv
if TORCH_ONLY:
    import torch as REAL_TORCH  # the cross-check runs in its own process
    sys.modules["_real_torch"] = REAL_TORCH
ftorch = fake_module("torch" if not TORCH_ONLY else "_fake_torch")
futils = fake_module("torch._utils" if not TORCH_ONLY else "_fake_torch._utils")
ftorch._utils = futils


def _global(mod, name, obj):
    obj.__module__ = mod.__name__
    obj.__qualname__ = name
    obj.__name__ = name
    setattr(mod, name, obj)
    return obj


def _rebuild_tensor_v2(*a):
    raise AssertionError


def _rebuild_parameter(*a):
    raise AssertionError


_global(futils, "_rebuild_tensor_v2", _rebuild_tensor_v2)
_global(futils, "_rebuild_parameter", _rebuild_parameter)

STORAGE_TYPES = {}
for n, fmt in [("FloatStorage", "f"), ("HalfStorage", "e"), ("BFloat16Storage", "bf16"),
               ("LongStorage", "q"), ("CharStorage", "b"), ("BoolStorage", "?"),
               ("DoubleStorage", "d"), ("IntStorage", "i")]:
    STORAGE_TYPES[n] = _global(ftorch, n, type(n, (), {}))


class Storage:
    def __init__(self, typename, key, values):
        self.type = STORAGE_TYPES[typename]
        self.typename = typename
        self.key = key
        self.values = list(values)

    def raw(self):
        fmts = {"FloatStorage": "f", "HalfStorage": "e", "LongStorage": "q",
                "CharStorage": "b", "BoolStorage": "?", "DoubleStorage": "d",
                "IntStorage": "i"}
        if self.typename == "BFloat16Storage":
            return b"".join(struct.pack("<f", v)[2:] for v in self.values)
        return struct.pack("<%d%s" % (len(self.values), fmts[self.typename]), *self.values)


class Tensor:
    def __init__(self, storage, offset, size, stride, param=False):
        self.args = (storage, offset, tuple(size), tuple(stride), False,
                     collections.OrderedDict())
        self.param = param

    def __reduce_ex__(self, proto):
        t = (_rebuild_tensor_v2, self.args)
        if self.param:
            return (_rebuild_parameter, (RebuiltTensor(t), False, collections.OrderedDict()))
        return t


class RebuiltTensor:
    def __init__(self, t):
        self.t = t

    def __reduce_ex__(self, proto):
        return self.t


def contiguous(shape):
    st, acc = [], 1
    for d in reversed(shape):
        st.insert(0, acc)
        acc *= d
    return st


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.type, obj.key, "cpu", len(obj.values))
        return None


def write_zip(path, pkl, storages, archive="archive", deflate=False):
    comp = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED

    def put(z, name, data):
        # A fixed timestamp keeps the fixtures byte-identical across runs.
        z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                   compress_type=comp)

    with zipfile.ZipFile(path, "w", comp) as z:
        put(z, archive + "/data.pkl", pkl)
        put(z, archive + "/byteorder", "little")
        for s in storages:
            put(z, archive + "/data/" + s.key, s.raw())
        put(z, archive + "/version", "3\n")


def write_zip64(path, entries):
    """A zip whose central directory uses zip64 fields throughout (sizes and
    offsets 0xffffffff, the real values in the zip64 extra field, a zip64
    end record and locator), as torch.save writes for files over 4 GiB."""
    out, cd = bytearray(), bytearray()
    for name, data in entries:
        off, crc, n = len(out), zlib.crc32(data), name.encode()
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                           0xFFFFFFFF, len(n), len(extra)) + n + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                          0xFFFFFFFF, 0xFFFFFFFF, len(n), len(cextra), 0, 0, 0, 0,
                          0xFFFFFFFF) + n + cextra
    cd_off = len(out)
    out += cd
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries),
                       len(entries), len(cd), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                       0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(out)
    with zipfile.ZipFile(path) as z:   # the standard library agrees
        assert [i.filename for i in z.infolist()] == [e[0] for e in entries]
        assert z.read(entries[-1][0]) == entries[-1][1]


def save(path, obj, storages, **kw):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    write_zip(path, buf.getvalue(), storages, **kw)


def raw_zip(path, pkl, storages=()):
    write_zip(path, pkl, storages)


# ---- valid fixtures ---------------------------------------------------------

def fixtures():
    out = {}
    s0 = Storage("FloatStorage", "0", [i * 0.5 for i in range(6)])
    s1 = Storage("FloatStorage", "1", [-1.0, 2.0, 3.5])
    sd = collections.OrderedDict()
    sd["layer.weight"] = Tensor(s0, 0, [2, 3], [3, 1])
    sd["layer.bias"] = Tensor(s1, 0, [3], [1])
    sd["scalar"] = Tensor(s1, 2, [], [])
    out["f32_state.pt"] = (sd, [s0, s1], {})
    out["f32_deflate.pt"] = (sd, [s0, s1], {"deflate": True})

    h = Storage("HalfStorage", "0", [0.5, -2.0, 65504.0, 1e-4, 3.0, 0.0, -0.25, 1.5])
    sdh = collections.OrderedDict()
    sdh["w"] = Tensor(h, 0, [4, 2], [2, 1])
    sdh["w_tail"] = Tensor(h, 4, [4], [1])      # a view sharing the storage
    out["f16_state.pt"] = (sdh, [h], {})

    # [3, 2] transpose of a [2, 3] row-major storage: stride (1, 3).
    n = Storage("FloatStorage", "0", [1, 2, 3, 4, 5, 6])
    sdn = collections.OrderedDict()
    sdn["t"] = Tensor(n, 0, [3, 2], [1, 3])
    sdn["col"] = Tensor(n, 1, [2], [3])        # column 1: 2, 5
    out["noncontig.pt"] = (sdn, [n], {})

    w0 = Storage("FloatStorage", "0", [1.0, 2.0])
    inner = collections.OrderedDict()
    inner["model.x"] = Tensor(w0, 0, [2], [1], param=True)
    wrap = {"state_dict": inner, "epoch": 7, "global_step": 1234, "name": "tiny"}
    out["wrapper.pt"] = (wrap, [w0], {})

    m = [Storage("LongStorage", "0", [-3, 1 << 40]), Storage("BFloat16Storage", "1", [1.0, -2.5]),
         Storage("CharStorage", "2", [-128, 127]), Storage("BoolStorage", "3", [True, False]),
         Storage("DoubleStorage", "4", [0.125]), Storage("IntStorage", "5", [-7])]
    sdm = collections.OrderedDict()
    for name, s in zip(["i64", "bf16", "i8", "bool", "f64", "i32"], m):
        sdm[name] = Tensor(s, 0, [len(s.values)], [1])
    out["mixed.pt"] = (sdm, m, {})
    return out


# ---- hostile pickles (raw opcodes) -----------------------------------------

def op_global(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def hostile():
    out = {}
    call = b"X\x0a\x00\x00\x00echo pwned\x85R."
    out["evil_os_system.pt"] = b"\x80\x02" + op_global("os", "system") + call
    out["evil_posix_system.pt"] = b"\x80\x02" + op_global("posix", "system") + call
    out["evil_builtins_eval.pt"] = b"\x80\x02" + op_global("builtins", "eval") + \
        b"X\x03\x00\x00\x001+1\x85R."
    out["evil_stack_global.pt"] = (b"\x80\x04\x8c\x02os\x8c\x06system\x93"
                                   b"\x8c\x0aecho pwned\x85R.")
    out["evil_nn_module.pt"] = b"\x80\x02" + op_global("torch.nn.modules.linear", "Linear") + \
        b")R."
    out["huge_memo.pt"] = b"\x80\x02}r\xff\xff\xff\xff."
    out["bad_memo_get.pt"] = b"\x80\x02}j\x10\x00\x00\x00."
    out["deep_nesting.pt"] = b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b"."
    out["many_marks.pt"] = b"\x80\x02" + b"(" * 100000 + b"."
    good = io.BytesIO()
    sd, st, _ = fixtures()["f32_state.pt"]
    Pickler(good, protocol=2).dump(sd)
    g = good.getvalue()
    out["truncated.pt"] = g[: len(g) // 2]
    out["no_stop.pt"] = g[:-1]
    out["bad_opcode.pt"] = b"\x80\x02}\xff."
    out["inst_opcode.pt"] = b"\x80\x02(ios\nsystem\nX\x02\x00\x00\x00id."
    out["build_on_global.pt"] = b"\x80\x02" + op_global("collections", "OrderedDict") + b"}b."
    out["reduce_storage_type.pt"] = b"\x80\x02" + op_global("torch", "FloatStorage") + b")R."
    out["top_is_list.pt"] = b"\x80\x02]."
    out["stack_underflow.pt"] = b"\x80\x02s."
    return out


def storage_oob(path):
    s = Storage("FloatStorage", "0", [1.0, 2.0])
    sd = collections.OrderedDict()
    sd["x"] = Tensor(s, 1, [4], [1])
    save(path, sd, [s])


def storage_missing(path):
    s = Storage("FloatStorage", "0", [1.0, 2.0])
    sd = collections.OrderedDict()
    sd["x"] = Tensor(s, 0, [2], [1])
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(sd)
    write_zip(path, buf.getvalue(), [])


def legacy(path):
    # torch < 1.6: a bare pickle stream starting with the magic number.
    with open(path, "wb") as f:
        f.write(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")


def check_with_torch(name, expect):
    t = sys.modules["_real_torch"]
    obj = t.load(os.path.join(DATA, name), weights_only=True)
    if "state_dict" in obj:
        obj = obj["state_dict"]
    for k, v in expect.items():
        got = obj[k].float().flatten().tolist()
        assert all(abs(a - b) <= 1e-3 * max(1, abs(b)) for a, b in zip(got, v)), (name, k, got, v)
    print("torch.load ok:", name)


def main():
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    for name, (obj, st, kw) in fixtures().items():
        save(os.path.join(DATA, name), obj, st, **kw)
    f32_storages = fixtures()["f32_state.pt"][1]
    for name, pkl in hostile().items():
        # The cut pickles keep their storages: only the pickle is broken.
        st = f32_storages if name in ("truncated.pt", "no_stop.pt") else ()
        raw_zip(os.path.join(DATA, name), pkl, st)
    storage_oob(os.path.join(DATA, "storage_oob.pt"))
    storage_missing(os.path.join(DATA, "storage_missing.pt"))
    legacy(os.path.join(DATA, "legacy.pt"))
    sd, st, _ = fixtures()["f32_state.pt"]
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(sd)
    write_zip64(os.path.join(DATA, "zip64.pt"),
                [("archive/data.pkl", buf.getvalue())] +
                [("archive/data/" + s.key, s.raw()) for s in st] +
                [("archive/version", b"3\n")])
    with open(os.path.join(DATA, "f32_state.pt"), "rb") as f:
        whole = f.read()
    with open(os.path.join(DATA, "truncated_zip.pt"), "wb") as f:
        f.write(whole[: len(whole) - 30])
    # The corpus: every .pt fixture.
    for name in sorted(os.listdir(DATA)):
        if name.endswith(".pt"):
            with open(os.path.join(DATA, name), "rb") as f:
                data = f.read()
            with open(os.path.join(CORPUS, name[:-3]), "wb") as f:
                f.write(data)
    if "--check" in sys.argv:
        import subprocess
        subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-only"], check=True)


def torch_check():
    t = REAL_TORCH
    if True:
        check_with_torch("f32_state.pt", {"layer.weight": [0, .5, 1, 1.5, 2, 2.5],
                                          "layer.bias": [-1, 2, 3.5], "scalar": [3.5]})
        check_with_torch("f32_deflate.pt", {"layer.bias": [-1, 2, 3.5]})
        check_with_torch("zip64.pt", {"layer.bias": [-1, 2, 3.5]})
        check_with_torch("f16_state.pt", {"w_tail": [3, 0, -.25, 1.5]})
        check_with_torch("noncontig.pt", {"t": [1, 4, 2, 5, 3, 6], "col": [2, 5]})
        check_with_torch("wrapper.pt", {"model.x": [1, 2]})
        check_with_torch("mixed.pt", {"i64": [-3, 1 << 40], "bf16": [1, -2.5], "i8": [-128, 127],
                                      "bool": [1, 0], "f64": [.125], "i32": [-7]})
        for name in ["evil_os_system.pt", "evil_builtins_eval.pt", "evil_stack_global.pt"]:
            try:
                t.load(os.path.join(DATA, name), weights_only=True)
                raise AssertionError(name + " loaded")
            except pickle.UnpicklingError:
                print("torch.load refuses:", name)
        sd = collections.OrderedDict()
        sd["layer.weight"] = t.arange(6, dtype=t.float32).reshape(2, 3) * 0.5
        sd["layer.bias"] = t.tensor([-1.0, 2.0, 3.5])
        sd["half"] = t.tensor([[1.0, -2.0], [0.5, 65504.0]], dtype=t.float16)
        sd["t_view"] = sd["layer.weight"].t()
        t.save(sd, os.path.join(DATA, "torch_f32.pt"))
        # A module's state_dict: OrderedDict with a `_metadata` attribute
        # (BUILD), an int64 scalar (num_batches_tracked), a Parameter.
        t.manual_seed(0)
        m = t.nn.Sequential(t.nn.Conv2d(3, 4, 3), t.nn.BatchNorm2d(4), t.nn.Linear(4, 2))
        t.save({"state_dict": m.state_dict(), "epoch": 3, "p": t.nn.Parameter(t.ones(2))},
               os.path.join(DATA, "torch_module.ckpt"))
        print("wrote torch_f32.pt with", t.__version__)


if __name__ == "__main__":
    if TORCH_ONLY:
        torch_check()
    else:
        main()

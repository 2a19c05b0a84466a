#!/usr/bin/env python3
"""Writes the seed corpus tests/fuzz/corpus_safetensors/ (stdlib only):
valid files covering every dtype, metadata and scalars, and one file per
hostile-header case that tests/weights/test_safetensors.c checks.

Usage: python3 tests/reference/make_safetensors_corpus.py  (from anywhere)
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz",
                   "corpus_safetensors")


def st(header, data=b"", hlen=None):
    h = header if isinstance(header, bytes) else header.encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def valid(tensors, meta=None):
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape,
                     "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr, separators=(",", ":"))
    h += " " * (-len(h) % 8)
    return st(h, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "all_dtypes": valid([
            ("f32", "F32", [2], struct.pack("<2f", 1.5, -2)),
            ("f16", "F16", [2], struct.pack("<2e", 1, 65504)),
            ("bf16", "BF16", [1, 1], b"\x80\x3f"),
            ("f64", "F64", [1], struct.pack("<d", 0.1)),
            ("e4m3", "F8_E4M3", [4], b"\x38\x7e\x7f\x01"),
            ("e5m2", "F8_E5M2", [4], b"\x3c\x7c\x7d\x01"),
            ("i8", "I8", [2], b"\x80\x7f"), ("u8", "U8", [1], b"\xff"),
            ("i16", "I16", [1], b"\x00\x80"), ("i32", "I32", [1], b"\xff\xff\xff\xff"),
            ("i64", "I64", [1], b"\x01" * 8), ("bool", "BOOL", [2], b"\x01\x00"),
            ("scalar", "F32", [], struct.pack("<f", 3)), ("empty", "F16", [0, 3], b""),
        ], {"format": "pt", "k": "v"}),
        "taesd_like": valid([("1.weight", "BF16", [4, 1, 1, 1], b"\x80\x3f" * 4),
                             ("19.weight", "BF16", [3, 4, 1, 1], b"\x00\x40" * 12)]),
        "empty_header": st("{}"),
        "len_past_end": st("{}", hlen=1000),
        "overlap": st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12),
        "out_of_order": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', b"\0" * 8),
        "gap": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8),
        "size_mismatch": st('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b"\0" * 8),
        "negative_dim": st('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', b"\0" * 8),
        "overflow_dims": st('{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],'
                            '"data_offsets":[0,8]}}', b"\0" * 8),
        "duplicate": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                        '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8),
        "unknown_dtype": st('{"a":{"dtype":"F4","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
        "non_utf8": st(b'{"a\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
        "meta_not_string": st('{"__metadata__":{"a":1}}'),
        "deep_json": st("{" + '"a":[' * 2000 + "]" * 2000 + "}"),
        "truncated": valid([("x", "F32", [4], b"\0" * 16)])[:-3],
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

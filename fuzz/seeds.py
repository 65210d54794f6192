#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/weights_loader/ (`seed-*`): small weight files (the
tiny config of tests/data/tiny-av.weights.safetensors with one or two tensors, valid and broken in
known ways), each behind the 4 zero bytes that select the target's `Raw` input. The other seeds of
fuzz/corpus/ are inputs the fuzzer found (kept by `cargo fuzz cmin`) and past crashes.

    python3 fuzz/seeds.py
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz/corpus/weights_loader"


def tiny_meta():
    b = (ROOT / "tests/data/tiny-av.weights.safetensors").read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8 : 8 + n])["__metadata__"]


def safetensors(meta, tensors):
    """tensors: [(name, dtype, shape, data bytes)]"""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    meta = tiny_meta()
    f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
    two = [("fuse.bias", "F32", [1], f32(0.5)), ("fuse.weight", "F16", [1, 2], b"\x00\x3c\x00\xc0")]
    cfg = json.loads(meta["config"])
    seeds = {
        "valid": safetensors(meta, two),
        "bf16": safetensors(meta, [("x", "BF16", [2, 1], b"\x80\x3f\x00\x40")]),
        "no-metadata": safetensors(None, two),
        "bad-version": safetensors({**meta, "format_version": "2"}, two),
        "part-mvit": safetensors({**meta, "part": "mvit"}, two),
        "bad-dtype": safetensors(meta, [("x", "I64", [1], b"\x00" * 8)]),
        "bad-config": safetensors({**meta, "config": json.dumps({**cfg, "height": 100})}, two),
        "config-missing-field": safetensors({**meta, "config": json.dumps({k: v for k, v in cfg.items() if k != "neck_dim"})}, two),
        "empty-shape": safetensors(meta, [("x", "F32", [0, 3], b"")]),
        "truncated": safetensors(meta, two)[:-3],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (OUT / f"seed-{name}").write_bytes(b"\x00\x00\x00\x00" + data)
    print(f"{len(seeds)} seeds in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Minimal, deterministic safetensors reader/writer (F32, F16, BF16, F64; I64 for integer
buffers such as permutations and MADE degrees).

The writer sorts tensors by name and writes a compact header so that the same
tensors always produce the same bytes. bfloat16 is handled here because numpy has
no native bfloat16 type.
"""
from __future__ import annotations

import json
import struct
from typing import Dict, Tuple

import numpy as np

DTYPES = ("f32", "f16", "bf16")

_ST_NAME = {"f32": "F32", "f16": "F16", "bf16": "BF16", "f64": "F64", "i64": "I64"}


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest, ties to even); returns uint16 bits."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def round_to_dtype(a: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values as they are after a round trip through `dtype` (f32, f16 or bf16)."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "f32":
        return a.copy()
    if dtype == "f16":
        return a.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return from_bf16_bits(to_bf16_bits(a)).reshape(a.shape)
    raise ValueError(f"unknown weight dtype {dtype!r}; supported: {', '.join(DTYPES)}")


def _encode(a: np.ndarray, dtype: str) -> bytes:
    if dtype == "f32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "f64":
        return np.ascontiguousarray(a, dtype="<f8").tobytes()
    if dtype == "i64":
        return np.ascontiguousarray(a, dtype="<i8").tobytes()
    if dtype == "f16":
        a32 = np.asarray(a, dtype=np.float32)
        with np.errstate(over="raise"):
            h = a32.astype("<f2")
        if not np.all(np.isfinite(h)):
            raise ValueError("value out of float16 range")
        return np.ascontiguousarray(h).tobytes()
    if dtype == "bf16":
        return np.ascontiguousarray(to_bf16_bits(a), dtype="<u2").tobytes()
    raise ValueError(f"unknown dtype {dtype!r}")


def save(path: str, tensors: Dict[str, Tuple[np.ndarray, str]], metadata: Dict[str, str] | None = None) -> None:
    """Write `tensors` (name -> (array, dtype)) to `path`."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr, dtype = tensors[name]
        arr = np.asarray(arr)
        if not np.all(np.isfinite(arr)):
            bad = int(np.argmax(~np.isfinite(arr.reshape(-1))))
            raise ValueError(f"tensor {name!r} has a non-finite value at flat index {bad}")
        data = _encode(arr, dtype)
        header[name] = {
            "dtype": _ST_NAME[dtype],
            "shape": [int(s) for s in arr.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    hb = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


_INT = {"I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1"}


def load(path: str) -> Dict[str, np.ndarray]:
    """Read a safetensors file; F16/BF16 are converted to float32, F64 stays float64, integer
    tensors become int64."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a : base + b]
        shape = tuple(info["shape"])
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        elif dt == "F64":
            arr = np.frombuffer(buf, dtype="<f8").astype(np.float64)
        elif dt == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = from_bf16_bits(np.frombuffer(buf, dtype="<u2"))
        elif dt in _INT:
            arr = np.frombuffer(buf, dtype=_INT[dt]).astype(np.int64)
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dt}")
        out[name] = arr.reshape(shape)
    return out


def dtypes(path: str) -> Dict[str, str]:
    """The dtype string of each tensor of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}

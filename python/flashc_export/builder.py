"""Graph builder: collects nodes and tensors of one flashc/1 spec."""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import st

FORMAT = "flashc/1"


class ExportError(ValueError):
    """A model (or a part of it) cannot be expressed in the flashc/1 spec."""


def _sanitize(base: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_").lower()
    return s or "node"


def dumps(obj, indent: str = "") -> str:
    """JSON with one object key per line, lists of scalars and small objects inline."""
    inner = indent + "  "
    if isinstance(obj, dict):
        flat = json.dumps(obj, ensure_ascii=False)
        if not any(isinstance(v, (dict, list)) and v for v in obj.values()) and len(flat) <= 100:
            return flat
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" + ("\n" if not indent else "")
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return json.dumps(obj, ensure_ascii=False)
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in obj) + "\n" + indent + "]"
    return json.dumps(obj, ensure_ascii=False)


class GraphBuilder:
    """Accumulates the graph of a spec. Value names are unique; tensor names are `<node>/<field>`."""

    def __init__(self, dtype: str = "f32"):
        if dtype not in st.DTYPES:
            raise ExportError(f"unknown weight dtype {dtype!r}; supported: {', '.join(st.DTYPES)}")
        self.dtype = dtype
        self.nodes: List[dict] = []
        self.tensors: Dict[str, np.ndarray] = {}
        # Integer buffers (permutations, MADE degrees), written as int64.
        self.int_tensors: Dict[str, np.ndarray] = {}
        self.widths: Dict[str, int] = {}
        self._used: set = set()

    # -- names ---------------------------------------------------------------
    def fresh(self, base: str) -> str:
        base = _sanitize(base)
        name, i = base, 1
        while name in self._used:
            name = f"{base}_{i}"
            i += 1
        self._used.add(name)
        return name

    def declare(self, name: str, width: int) -> str:
        """Declare an input or noise value with an exact name."""
        if name in self._used:
            raise ExportError(f"value name {name!r} is used twice")
        self._used.add(name)
        self.widths[name] = int(width)
        return name

    def tensor(self, node: str, field: str, value) -> str:
        name = f"{node}/{field}"
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            bad = int(np.argmax(~np.isfinite(arr.reshape(-1))))
            raise ExportError(f"node {node!r}: tensor {name!r} has a non-finite value at flat index {bad}")
        self.tensors[name] = np.asarray(value, dtype=np.float32)
        return name

    def int_tensor(self, node: str, field: str, value) -> str:
        name = f"{node}/{field}"
        arr = np.asarray(value)
        if arr.dtype.kind not in "iub" and not np.all(arr == np.round(arr)):
            raise ExportError(f"node {node!r}: tensor {name!r} must hold integers")
        self.int_tensors[name] = arr.astype(np.int64)
        return name

    # -- nodes ---------------------------------------------------------------
    def node(self, op: str, base: str, width: int, input: Optional[str] = None,
             inputs: Optional[Sequence[str]] = None, tensors: Optional[dict] = None, **fields) -> str:
        name = self.fresh(base)
        n = {"name": name, "op": op}
        if input is not None:
            if input not in self.widths:
                raise ExportError(f"internal: node {name!r} reads undefined value {input!r}")
            n["input"] = input
        if inputs is not None:
            for v in inputs:
                if v not in self.widths:
                    raise ExportError(f"internal: node {name!r} reads undefined value {v!r}")
            n["inputs"] = list(inputs)
        for field, value in (tensors or {}).items():
            n[field] = self.tensor(name, field, value)
        for k, v in fields.items():
            if v is not None:
                n[k] = v
        self.nodes.append(n)
        self.widths[name] = int(width)
        return name

    def width(self, value: str) -> int:
        return self.widths[value]

    # -- helpers used by several exporters ------------------------------------
    def dense(self, base, x, kernel, bias=None, activation=None) -> str:
        kernel = np.asarray(kernel)
        if kernel.ndim != 2 or kernel.shape[0] != self.width(x):
            raise ExportError(f"layer {base!r}: kernel shape {list(kernel.shape)} does not match input width {self.width(x)}")
        t = {"kernel": kernel}
        if bias is not None:
            t["bias"] = np.asarray(bias).reshape(-1)
        act = activation if activation and activation.get("kind") != "linear" else None
        return self.node("dense", base, kernel.shape[1], input=x, tensors=t, activation=act)

    def activation(self, base, x, act: dict) -> str:
        if act["kind"] == "linear":
            return x
        return self.node("activation", base, self.width(x), input=x, activation=act)

    def permute(self, base, x, order: Sequence[int]) -> str:
        """Column routing y[:, j] = x[:, order[j]], expressed as a dense layer with a 0/1 kernel
        (exact in floating point for finite inputs)."""
        n_in = self.width(x)
        order = [int(i) for i in order]
        if order == list(range(n_in)):
            return x
        k = np.zeros((n_in, len(order)), dtype=np.float32)
        for j, i in enumerate(order):
            k[i, j] = 1.0
        return self.dense(base, x, k)

    # -- output --------------------------------------------------------------
    def write(self, path_prefix: str, name: str, inputs: List[dict], noise: Optional[dict],
              outputs: List[dict], description: Optional[str] = None, ode: Optional[dict] = None) -> dict:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ExportError(f"model name {name!r} must match [a-z][a-z0-9_]* (it becomes a Rust type and a C symbol)")
        d = os.path.dirname(path_prefix)
        if d:
            os.makedirs(d, exist_ok=True)
        wfile = os.path.basename(path_prefix) + ".safetensors"
        spec = {"format": FORMAT, "name": name}
        if description:
            spec["description"] = description
        spec["weights"] = wfile
        spec["inputs"] = inputs
        if noise is not None:
            spec["noise"] = noise
        spec["graph"] = self.nodes
        spec["outputs"] = outputs
        if ode is not None:
            spec["ode"] = dict(ode)
        from .validate import validate_spec  # local import: avoid a cycle

        shapes = {k: list(v.shape) for k, v in self.tensors.items()}
        shapes.update({k: list(v.shape) for k, v in self.int_tensors.items()})
        problems = validate_spec(spec, shapes)
        if problems:
            raise ExportError("exported spec is invalid:\n  " + "\n  ".join(problems))
        saved = {k: (v, self.dtype) for k, v in self.tensors.items()}
        saved.update({k: (v, "i64") for k, v in self.int_tensors.items()})
        st.save(path_prefix + ".safetensors", saved, metadata={"format": FORMAT, "producer": "flashc-export"})
        with open(path_prefix + ".json", "w") as f:
            f.write(dumps(spec))
        return spec

    def rounded(self, name: str) -> np.ndarray:
        """Tensor `name` as the transpiler will see it after dtype conversion."""
        return st.round_to_dtype(self.tensors[name], self.dtype)

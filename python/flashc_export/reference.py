"""Reference interpreter of a flashc/1 spec in float64 numpy.

It follows docs/spec.md literally (sklearn semantics for the quantile transform) and is meant
for cross-checks against the source frameworks, not for speed.
"""
from __future__ import annotations

import json
import math
import os
from typing import Optional

import numpy as np
from scipy import special

from . import st
from .validate import validate_spec

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def act(a: dict, x: np.ndarray) -> np.ndarray:
    k = a["kind"]
    if k == "linear":
        return x
    if k == "relu":
        return np.maximum(x, 0.0)
    if k == "leaky_relu":
        return np.where(x >= 0, x, a["alpha"] * x)
    if k == "elu":
        return np.where(x > 0, x, a["alpha"] * np.expm1(np.minimum(x, 0.0)))
    if k == "selu":
        return a["scale"] * np.where(x > 0, x, a["alpha"] * np.expm1(np.minimum(x, 0.0)))
    if k == "silu":
        return x * special.expit(x)
    if k == "gelu":
        if a["approximate"] == "tanh":
            return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))
        return x * special.ndtr(x)
    if k == "tanh":
        return np.tanh(x)
    if k == "sigmoid":
        return special.expit(x)
    if k == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if k == "softplus":
        b, t = a["beta"], a["threshold"]
        sp = np.logaddexp(0.0, b * x) / b
        return sp if t is None else np.where(x * b > t, x, sp)
    raise ValueError(f"unknown activation {k!r}")


def _quantile_forward(x, q, ref, dist, bt):
    x = x.copy()
    lo_x, hi_x = q[0], q[-1]
    if dist == "normal":
        lo = x - bt < lo_x
        hi = x + bt > hi_x
    else:
        lo = x == lo_x
        hi = x == hi_x
    y = 0.5 * (np.interp(x, q, ref) - np.interp(-x, -q[::-1], -ref[::-1]))
    y[hi] = 1.0
    y[lo] = 0.0
    if dist == "normal":
        y = special.ndtri(y)
        eps = np.spacing(1.0)
        y = np.clip(y, special.ndtri(bt - eps), special.ndtri(1.0 - (bt - eps)))
    return y


def _quantile_inverse(y, q, ref, dist, bt):
    u = special.ndtr(y) if dist == "normal" else y.copy()
    if dist == "normal":
        lo = u - bt < 0.0
        hi = u + bt > 1.0
    else:
        lo = u == 0.0
        hi = u == 1.0
    x = np.interp(u, ref, q)
    x[hi] = q[-1]
    x[lo] = q[0]
    return x


def _preproc(node, x, T):
    op, inv = node["op"], node["direction"] == "inverse"
    cols = node.get("columns") or list(range(x.shape[1]))
    out = x.copy()
    s = x[:, cols]
    if op == "standard_scaler":
        m, sc = T[node["mean"]], T[node["scale"]]
        r = s * sc + m if inv else (s - m) / sc
    elif op == "min_max":
        mn, sc = T[node["min"]], T[node["scale"]]
        r = (s - mn) / sc if inv else s * sc + mn
    elif op == "logit":
        a = float(node["scale"])
        r = 1.0 / (1.0 + np.exp(-s / a)) if inv else a * np.log(s / (1.0 - s))
    elif op == "decorrelate":
        M = T[node["matrix"]]
        mean = T[node["mean"]] if "mean" in node else np.zeros(M.shape[0])
        r = s @ np.linalg.inv(M) + mean if inv else (s - mean) @ M
    elif op == "quantile":
        Q, ref = T[node["quantiles"]], T[node["references"]]
        dist, bt = node["output_distribution"], float(node["bounds_threshold"])
        r = np.empty_like(s)
        for j in range(s.shape[1]):
            f = _quantile_inverse if inv else _quantile_forward
            r[:, j] = f(s[:, j], Q[:, j], ref, dist, bt)
    else:
        raise ValueError(op)
    out[:, cols] = r
    return out


def evaluate_spec(spec: dict, tensors: dict, inputs: np.ndarray, noise: Optional[np.ndarray] = None) -> np.ndarray:
    T = {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}
    inputs = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    V = {}
    c = 0
    for inp in spec["inputs"]:
        n = len(inp["columns"])
        V[inp["name"]] = inputs[:, c : c + n]
        c += n
    if c != inputs.shape[1]:
        raise ValueError(f"inputs have {inputs.shape[1]} columns, spec expects {c}")
    if "noise" in spec:
        if noise is None:
            raise ValueError("this model needs noise")
        noise = np.atleast_2d(np.asarray(noise, dtype=np.float64))
        if noise.shape != (inputs.shape[0], spec["noise"]["dim"]):
            raise ValueError(f"noise shape {noise.shape}, expected {(inputs.shape[0], spec['noise']['dim'])}")
        V[spec["noise"]["name"]] = noise
    for node in spec["graph"]:
        op = node["op"]
        if op in ("add", "mul", "concat"):
            xs = [V[v] for v in node["inputs"]]
        else:
            x = V[node["input"]]
        if op == "dense":
            y = x @ T[node["kernel"]]
            if "bias" in node:
                y = y + T[node["bias"]]
            y = act(node.get("activation", {"kind": "linear"}), y)
        elif op == "activation":
            y = act(node["activation"], x)
        elif op == "add":
            y = xs[0] + xs[1]
        elif op == "mul":
            y = xs[0] * xs[1]
        elif op == "concat":
            y = np.concatenate(xs, axis=1)
        elif op == "batchnorm":
            y = (x - T[node["mean"]]) / np.sqrt(T[node["var"]] + node["eps"]) * T[node["gamma"]] + T[node["beta"]]
        elif op == "flow":
            from .flow import evaluate_flow

            y = evaluate_flow(node, T, x, V[node["context"]] if "context" in node else None)
        elif op == "layernorm":
            mu = x.mean(axis=1, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
            y = (x - mu) / np.sqrt(var + node["eps"])
            if "gamma" in node:
                y = y * T[node["gamma"]] + T[node["beta"]]
        else:
            y = _preproc(node, x, T)
        V[node["name"]] = y
    return np.concatenate([V[o["value"]] for o in spec["outputs"]], axis=1)


def evaluate(spec_path: str, inputs: np.ndarray, noise: Optional[np.ndarray] = None) -> np.ndarray:
    """Evaluate the model `spec_path` (JSON; weights next to it) on `inputs` [N, n_in] (+ `noise`) in float64."""
    with open(spec_path) as f:
        spec = json.load(f)
    tensors = st.load(os.path.join(os.path.dirname(os.path.abspath(spec_path)), spec["weights"]))
    problems = validate_spec(spec, {k: list(v.shape) for k, v in tensors.items()}, where=spec_path)
    if problems:
        raise ValueError("invalid spec:\n  " + "\n  ".join(problems))
    return evaluate_spec(spec, tensors, inputs, noise)

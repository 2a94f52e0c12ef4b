"""Validation of a flashc/1 spec against docs/spec.md (all problems are collected)."""
from __future__ import annotations

import json
import os
import re
from typing import Dict, List, Optional

from . import st

FORMATS = ("flashc/1",)

ACTIVATIONS = {
    "linear": {},
    "relu": {},
    "leaky_relu": {"alpha": "number"},
    "elu": {"alpha": "number"},
    "selu": {"alpha": "number", "scale": "number"},
    "silu": {},
    "gelu": {"approximate": ("none", "tanh")},
    "tanh": {},
    "sigmoid": {},
    "softmax": {},
    "softplus": {"beta": "number", "threshold": "number_or_null"},
}

PREPROC_OPS = ("standard_scaler", "min_max", "quantile", "logit", "decorrelate")
OPS = ("dense", "activation", "add", "mul", "concat", "batchnorm", "layernorm") + PREPROC_OPS + ("flow",)
ODE_METHODS = ("euler", "midpoint", "rk4", "rk4_classic", "dopri5")
ODE_KEYS = ("method", "steps", "rtol", "atol", "state", "time")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_activation(act, where: str) -> List[str]:
    p = []
    if not isinstance(act, dict) or "kind" not in act:
        return [f"{where}: activation must be an object with a \"kind\""]
    kind = act["kind"]
    if kind not in ACTIVATIONS:
        return [f"{where}: unknown activation kind {kind!r}; supported: {', '.join(ACTIVATIONS)}"]
    req = ACTIVATIONS[kind]
    for k in act:
        if k != "kind" and k not in req:
            p.append(f"{where}: activation {kind!r} has unknown parameter {k!r}")
    for k, t in req.items():
        if k not in act:
            p.append(f"{where}: activation {kind!r} needs parameter {k!r}")
            continue
        v = act[k]
        if t == "number" and not _is_num(v):
            p.append(f"{where}: activation {kind!r} parameter {k!r} must be a number")
        elif t == "number_or_null" and not (v is None or _is_num(v)):
            p.append(f"{where}: activation {kind!r} parameter {k!r} must be a number or null")
        elif isinstance(t, tuple) and v not in t:
            p.append(f"{where}: activation {kind!r} parameter {k!r} must be one of {list(t)}")
    return p


def validate_spec(spec: dict, shapes: Optional[Dict[str, List[int]]] = None, where: str = "spec",
                  values: Optional[dict] = None) -> List[str]:
    """Return the list of problems of `spec` (empty when valid). `shapes` maps tensor names to shapes;
    when given, every tensor reference is checked for presence and shape. `values` (optional) maps
    tensor names to arrays, for the checks that need the values (a flow's LU factors)."""
    P: List[str] = []
    if spec.get("format") not in FORMATS:
        P.append(f"{where}: format {spec.get('format')!r} is not supported; supported: {list(FORMATS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        P.append(f"{where}: name {name!r} must match [a-z][a-z0-9_]*")
    if not isinstance(spec.get("weights"), str):
        P.append(f"{where}: \"weights\" must be a file name")
    allowed_top = {"format", "name", "description", "weights", "inputs", "noise", "graph", "outputs", "ode"}
    for k in spec:
        if k not in allowed_top:
            P.append(f"{where}: unknown top-level key {k!r}")
    widths: Dict[str, int] = {}

    def define(v, w, what):
        if not isinstance(v, str) or not v:
            P.append(f"{where}: {what} has no valid name")
            return
        if v in widths:
            P.append(f"{where}: value name {v!r} ({what}) is defined twice")
        widths[v] = w

    inputs = spec.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        P.append(f"{where}: \"inputs\" must be a non-empty list")
        inputs = []
    for i, inp in enumerate(inputs):
        cols = inp.get("columns") if isinstance(inp, dict) else None
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
            P.append(f"{where}: input #{i} needs a non-empty list of column names")
            cols = []
        define(inp.get("name") if isinstance(inp, dict) else None, len(cols), f"input #{i}")
    noise = spec.get("noise")
    if noise is not None:
        if not isinstance(noise, dict) or not isinstance(noise.get("dim"), int) or noise["dim"] <= 0:
            P.append(f"{where}: noise needs a positive integer \"dim\"")
        elif noise.get("distribution") not in ("normal", "uniform"):
            P.append(f"{where}: noise distribution must be \"normal\" or \"uniform\"")
        else:
            define(noise.get("name"), noise["dim"], "noise")

    def tensor(node, field, shape):
        tname = node.get(field)
        nm = node.get("name")
        if not isinstance(tname, str):
            P.append(f"{where}: node {nm!r} (op {node.get('op')}): field {field!r} must name a tensor")
            return
        if shapes is None:
            return
        if tname not in shapes:
            P.append(f"{where}: node {nm!r} (op {node.get('op')}): tensor {tname!r} is missing from the weights")
        elif list(shapes[tname]) != list(shape):
            P.append(f"{where}: node {nm!r} (op {node.get('op')}): tensor {tname!r} has shape {list(shapes[tname])}, expected {list(shape)}")

    graph = spec.get("graph")
    if not isinstance(graph, list):
        P.append(f"{where}: \"graph\" must be a list")
        graph = []
    for node in graph:
        if not isinstance(node, dict):
            P.append(f"{where}: graph entries must be objects")
            continue
        nm, op = node.get("name"), node.get("op")
        w = f"{where}: node {nm!r} (op {op})"
        if op not in OPS:
            P.append(f"{w}: unknown op; supported: {', '.join(OPS)}")
            continue
        ins = []
        if op in ("add", "mul", "concat"):
            ins = node.get("inputs")
            pair = op in ("add", "mul")
            if not isinstance(ins, list) or len(ins) < 2 or (pair and len(ins) != 2):
                P.append(f"{w}: needs \"inputs\" ({'exactly 2' if pair else 'at least 2'} values)")
                ins = []
        else:
            ins = [node.get("input")]
        bad = [v for v in ins if v not in widths]
        if bad:
            P.append(f"{w}: reads {bad}, not defined before this node")
            define(nm, 0, f"node {nm!r}")
            continue
        n = widths[ins[0]] if ins else 0
        out = n
        if op == "flow":
            from .flow import validate_flow  # local import: flow imports reference, which imports this

            fp, out = validate_flow(node, widths, shapes, w, values)
            P += fp
        elif op == "dense":
            kshape = shapes.get(node.get("kernel")) if shapes and isinstance(node.get("kernel"), str) else None
            n_out = kshape[1] if kshape and len(kshape) == 2 else None
            if n_out is None and shapes and isinstance(node.get("bias"), str) and node["bias"] in shapes:
                n_out = shapes[node["bias"]][0]
            if n_out is None and shapes is not None:
                P.append(f"{w}: cannot determine the output width (kernel missing)")
                n_out = 0
            tensor(node, "kernel", [n, n_out])
            if "bias" in node:
                tensor(node, "bias", [n_out])
            if "activation" in node:
                P += check_activation(node["activation"], w)
            out = n_out if n_out is not None else 0
        elif op == "activation":
            P += check_activation(node.get("activation"), w)
        elif op in ("add", "mul"):
            if len(ins) == 2 and widths[ins[0]] != widths[ins[1]]:
                P.append(f"{w}: inputs have widths {widths[ins[0]]} and {widths[ins[1]]}")
        elif op == "concat":
            out = sum(widths[v] for v in ins)
        elif op == "batchnorm":
            for f in ("gamma", "beta", "mean", "var"):
                tensor(node, f, [n])
            if not _is_num(node.get("eps")) or node["eps"] < 0:
                P.append(f"{w}: \"eps\" is required (a non-negative number)")
        elif op == "layernorm":
            if ("gamma" in node) != ("beta" in node):
                P.append(f"{w}: give both gamma and beta or neither")
            if "gamma" in node:
                tensor(node, "gamma", [n])
                tensor(node, "beta", [n])
            if not _is_num(node.get("eps")) or node["eps"] < 0:
                P.append(f"{w}: \"eps\" is required (a non-negative number)")
        else:  # preprocessing
            if node.get("direction") not in ("forward", "inverse"):
                P.append(f"{w}: \"direction\" must be \"forward\" or \"inverse\"")
            cols = node.get("columns")
            if cols is None:
                m = n
            else:
                if (not isinstance(cols, list) or not cols or not all(isinstance(c, int) and 0 <= c < n for c in cols)
                        or len(set(cols)) != len(cols)):
                    P.append(f"{w}: \"columns\" must be distinct column indices in [0, {n})")
                    cols = []
                m = len(cols)
            if op == "standard_scaler":
                tensor(node, "mean", [m])
                tensor(node, "scale", [m])
            elif op == "min_max":
                tensor(node, "min", [m])
                tensor(node, "scale", [m])
            elif op == "quantile":
                q = node.get("quantiles")
                nq = shapes.get(q, [0])[0] if shapes and isinstance(q, str) else 0
                if shapes is not None and nq < 2:
                    P.append(f"{w}: quantiles need at least 2 rows")
                tensor(node, "quantiles", [nq, m])
                tensor(node, "references", [nq])
                if node.get("output_distribution") not in ("normal", "uniform"):
                    P.append(f"{w}: output_distribution must be \"normal\" or \"uniform\"")
                bt = node.get("bounds_threshold")
                if not _is_num(bt) or not (0 < bt < 0.5):
                    P.append(f"{w}: bounds_threshold is required (a number in (0, 0.5); sklearn uses 1e-7)")
            elif op == "logit":
                if not _is_num(node.get("scale")) or node["scale"] == 0:
                    P.append(f"{w}: \"scale\" must be a non-zero number")
            elif op == "decorrelate":
                tensor(node, "matrix", [m, m])
                if "mean" in node:
                    tensor(node, "mean", [m])
        define(nm, out, f"node {nm!r}")

    outs = spec.get("outputs")
    if not isinstance(outs, list) or not outs:
        P.append(f"{where}: \"outputs\" must be a non-empty list")
        outs = []
    for i, o in enumerate(outs):
        v = o.get("value") if isinstance(o, dict) else None
        if v not in widths:
            P.append(f"{where}: output #{i} names value {v!r}, which is not defined")
            continue
        cols = o.get("columns")
        if not isinstance(cols, list) or len(cols) != widths[v]:
            P.append(f"{where}: output #{i} ({v!r}) needs {widths[v]} column names, has "
                     f"{len(cols) if isinstance(cols, list) else 'none'}")
    if "ode" in spec:
        P += check_ode(spec, where)
    return P


def check_ode(spec: dict, where: str = "spec") -> List[str]:
    """Problems of the optional "ode" section (docs/flow-matching.md)."""
    ode = spec["ode"]
    w = f"{where}: ode"
    if not isinstance(ode, dict):
        return [f"{w}: the section must be an object"]
    P = [f"{w}: unknown key {k!r}; the section takes {', '.join(ODE_KEYS)}" for k in ode if k not in ODE_KEYS]
    method = ode.get("method")
    if method not in ODE_METHODS:
        P.append(f"{w}: method {method!r} is not supported; supported: {', '.join(ODE_METHODS)}")
    elif method == "dopri5":
        if "steps" in ode:
            P.append(f"{w}: \"steps\" is given for the adaptive method dopri5")
        for k in ("rtol", "atol"):
            v = ode.get(k)
            if not _is_num(v) or not (v >= 0 and v < float("inf")):
                P.append(f"{w}: dopri5 needs {k!r}, a finite number >= 0")
        if ode.get("rtol") == 0 and ode.get("atol") == 0:
            P.append(f"{w}: rtol and atol are both 0")
    else:
        steps = ode.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            P.append(f"{w}: the fixed-step method {method} needs \"steps\", a positive integer")
        for k in ("rtol", "atol"):
            if k in ode:
                P.append(f"{w}: {k!r} is given for the fixed-step method {method}")
    columns = [c for i in spec.get("inputs") or [] if isinstance(i, dict) for c in i.get("columns") or []]
    state, time = ode.get("state"), ode.get("time")
    if not isinstance(state, list) or not state or not all(isinstance(c, str) for c in state):
        P.append(f"{w}: \"state\" must be a non-empty list of input column names")
        state = []
    if len(set(state)) != len(state):
        P.append(f"{w}: \"state\" lists a column twice")
    if not isinstance(time, str):
        P.append(f"{w}: \"time\" must be an input column name")
    elif time in state:
        P.append(f"{w}: {time!r} is both a state column and the time column")
    for c in state + ([time] if isinstance(time, str) else []):
        if columns.count(c) != 1:
            P.append(f"{w}: column {c!r} must be exactly one of the input columns (found {columns.count(c)})")
    n_out = sum(len(o.get("columns") or []) for o in spec.get("outputs") or [] if isinstance(o, dict))
    if state and len(state) != n_out:
        P.append(f"{w}: \"state\" lists {len(state)} columns, the outputs (dx/dt) have {n_out}")
    if spec.get("noise") is not None:
        P.append(f"{w}: a vector field takes no noise")
    return P


def validate_files(spec_path: str) -> List[str]:
    """Validate a spec file and its weights file."""
    with open(spec_path) as f:
        spec = json.load(f)
    wpath = os.path.join(os.path.dirname(spec_path), spec.get("weights", ""))
    tensors = st.load(wpath)
    return validate_spec(spec, {k: list(v.shape) for k, v in tensors.items()}, where=spec_path, values=tensors)

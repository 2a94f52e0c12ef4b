"""The `flow` op of a flashc/1 spec (docs/flows.md): structural validation and a float64
reference evaluation (nflows' algorithms: MADE passes on the masked weights, the inverse of an
autoregressive transform by D full passes)."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

MODES = ("sample", "log_prob")
KINDS = ("permutation", "batchnorm", "affine_autoregressive", "rqs_autoregressive", "lu_linear", "affine_coupling",
         "rqs_coupling")
SCALE_KINDS = ("softplus", "soft_clip_exp", "sigmoid", "atan")


def _act(a: dict, x: np.ndarray) -> np.ndarray:
    from .reference import act

    return act(a, x)


# -- validation -------------------------------------------------------------------------------

class _Check:
    def __init__(self, where: str, shapes: Optional[Dict[str, List[int]]]):
        self.where = where
        self.shapes = shapes
        self.problems: List[str] = []

    def p(self, msg: str):
        self.problems.append(f"{self.where}: {msg}")

    def tensor(self, obj: dict, key: str, path: str, shape=None) -> Optional[List[int]]:
        name = obj.get(key)
        if not isinstance(name, str):
            self.p(f"{path}: field {key!r} must name a tensor")
            return None
        if self.shapes is None:
            return None
        if name not in self.shapes:
            self.p(f"{path}: tensor {name!r} is missing from the weights")
            return None
        got = list(self.shapes[name])
        if shape is not None and got != list(shape):
            self.p(f"{path}: tensor {name!r} has shape {got}, expected {list(shape)}")
        return got

    def masked(self, obj, path, n_in, degrees=True) -> Optional[int]:
        if not isinstance(obj, dict):
            self.p(f"{path} must be an object")
            return None
        shp = self.tensor(obj, "weight", path)
        n_out = shp[0] if shp and len(shp) == 2 else None
        if shp is not None and (len(shp) != 2 or shp[1] != n_in):
            self.p(f"{path}: weight has shape {shp}, expected [n_out, {n_in}]")
        self.tensor(obj, "bias", path, [n_out] if n_out is not None else None)
        if degrees or "degrees" in obj:
            self.tensor(obj, "degrees", path, [n_out] if n_out is not None else None)
        return n_out if self.shapes is not None else 0

    def norm(self, obj, path, n):
        if not isinstance(obj, dict):
            self.p(f"{path} must be an object")
            return
        for f in ("gamma", "beta", "mean", "var"):
            self.tensor(obj, f, path, [n] if n else None)
        if not isinstance(obj.get("eps"), (int, float)) or obj["eps"] < 0:
            self.p(f"{path}: \"eps\" is required (a non-negative number)")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_scale(c: "_Check", s, path: str):
    """The `scale` object of an affine transform: its kind and constants (the scale must stay > 0)."""
    if not isinstance(s, dict) or s.get("kind") not in SCALE_KINDS:
        c.p(f"{path}: \"scale\" must be an object whose \"kind\" is one of {list(SCALE_KINDS)}")
        return
    k = s["kind"]
    need = {"softplus": ("threshold", "eps"), "soft_clip_exp": ("bound",), "sigmoid": ("factor", "offset", "eps"),
            "atan": ("factor", "min")}[k]
    allowed = set(need) | {"kind"} | ({"min", "max"} if k in ("softplus", "atan") else set())
    missing = [f for f in need if f not in s]
    if missing:
        c.p(f"{path}.scale: scale {k!r} needs {missing}")
        return
    extra = sorted(set(s) - allowed)
    if extra:
        c.p(f"{path}.scale: unknown field(s) {extra} for scale {k!r}")
    bad = [f for f in allowed - {"kind"} if f in s and s[f] is not None and not (_num(s[f]) or (f == "threshold" and isinstance(s[f], (int, float))))]
    if bad:
        c.p(f"{path}.scale: {sorted(bad)} must be numbers")
        return
    lo, hi = s.get("min"), s.get("max")
    if k == "softplus" and not (s["eps"] > 0 and (hi is None or hi > 0) and (lo is None or hi is None or lo <= hi)):
        c.p(f"{path}.scale: softplus needs eps > 0 and min <= max with max > 0 (the scale must be positive)")
    elif k == "soft_clip_exp" and not s["bound"] > 0:
        c.p(f"{path}.scale: the bound must be > 0")
    elif k == "sigmoid" and not (s["factor"] >= 0 and s["eps"] > 0):
        c.p(f"{path}.scale: sigmoid needs factor >= 0 and eps > 0 (the scale must be positive)")
    elif k == "atan" and not (s["factor"] > 0 and lo > 0 and (hi is None or hi >= lo)):
        c.p(f"{path}.scale: atan needs factor > 0 and 0 < min <= max (the scale must be positive)")


def _check_shift(c: "_Check", t: dict, path: str):
    if "shift_offset" in t and not _num(t["shift_offset"]):
        c.p(f"{path}: \"shift_offset\" must be a finite number")
    if "shift_clamp" in t:
        sc = t["shift_clamp"]
        if not (isinstance(sc, dict) and set(sc) == {"min", "max", "inverse"} and _num(sc["min"]) and _num(sc["max"])
                and sc["min"] <= sc["max"] and isinstance(sc["inverse"], bool)):
            c.p(f"{path}.shift_clamp: must be {{\"min\": number, \"max\": number >= min, \"inverse\": true or false}}")


def _check_lu(c: "_Check", t: dict, path: str, d: int, values):
    """Shapes and, when the values are known, the structure of an LU-linear transform."""
    c.tensor(t, "lower", f"{path}.lower", [d, d])
    c.tensor(t, "upper", f"{path}.upper", [d, d])
    c.tensor(t, "bias", f"{path}.bias", [d])
    if values is None:
        return
    L, U = values.get(t.get("lower")), values.get(t.get("upper"))
    if L is None or U is None or np.shape(L) != (d, d) or np.shape(U) != (d, d):
        return
    L, U = np.asarray(L, dtype=np.float64), np.asarray(U, dtype=np.float64)
    bad_diag, bad_up = np.flatnonzero(np.diag(L) != 1), np.argwhere(np.triu(L, 1) != 0)
    if len(bad_diag) or len(bad_up):
        if len(bad_diag):
            i = j = int(bad_diag[0])
            why = "a diagonal entry is not 1"
        else:
            i, j = map(int, bad_up[0])
            why = "an entry above the diagonal is not 0"
        c.p(f"{path}.lower: tensor {t['lower']!r} [{i}, {j}] = {L[i, j]}: L is not unit lower-triangular: {why} "
            f"({len(bad_diag) + len(bad_up)} such entries)")
    bad = np.argwhere(np.tril(U, -1) != 0)
    if len(bad):
        i, j = map(int, bad[0])
        c.p(f"{path}.upper: tensor {t['upper']!r} [{i}, {j}] = {U[i, j]}: U is not upper-triangular "
            f"({len(bad)} nonzero entries below the diagonal)")
    diag = np.diag(U)
    bad = np.flatnonzero(~(np.isfinite(diag) & (diag > 0)))
    if len(bad):
        i = int(bad[0])
        c.p(f"{path}.upper: tensor {t['upper']!r}: non-invertible LU: diagonal entry {i} = {diag[i]} "
            f"({len(bad)} diagonal entries are not finite and > 0)")


def validate_flow(node: dict, widths: Dict[str, int], shapes, where: str, values=None) -> Tuple[List[str], int]:
    """Problems of a flow node and its output width. `widths` holds the widths of defined values;
    `values` (optional) maps tensor names to arrays, for the checks that need the values."""
    c = _Check(where, shapes)
    d = widths.get(node.get("input"), 0)
    ctx = node.get("context")
    cw = widths.get(ctx) if ctx is not None else None
    if ctx is not None and cw is None:
        c.p(f"context {ctx!r} is not defined before this node")
    if node.get("mode") not in MODES:
        c.p(f"\"mode\" must be one of {list(MODES)}")
    if node.get("base") != "standard_normal":
        c.p("\"base\" must be \"standard_normal\"")
    ts = node.get("transforms")
    if not isinstance(ts, list) or not ts:
        c.p("\"transforms\" must be a non-empty list")
        ts = []
    for i, t in enumerate(ts):
        path = f"transforms[{i}]"
        if not isinstance(t, dict) or t.get("kind") not in KINDS:
            c.p(f"{path}: \"kind\" must be one of {list(KINDS)}")
            continue
        k = t["kind"]
        if k == "permutation":
            c.tensor(t, "permutation", path, [d])
        elif k == "batchnorm":
            for f in ("weight", "bias", "mean", "var"):
                c.tensor(t, f, path, [d])
            if not isinstance(t.get("eps"), (int, float)) or t["eps"] < 0:
                c.p(f"{path}: \"eps\" is required (a non-negative number)")
        elif k == "lu_linear":
            _check_lu(c, t, path, d, values)
        elif k in ("affine_coupling", "rqs_coupling"):
            _check_coupling(c, t, path, d, cw, values)
        else:
            n_params = 2
            if k == "rqs_autoregressive":
                n_params = _check_spline(c, t.get("spline"), f"{path}.spline")
                if n_params is None:
                    continue
            else:
                if t.get("params") not in (["scale", "shift"], ["shift", "scale"]):
                    c.p(f"{path}: \"params\" must be [\"scale\", \"shift\"] or [\"shift\", \"scale\"]")
                _check_scale(c, t.get("scale"), path)
                _check_shift(c, t, path)
            m = t.get("made")
            if not isinstance(m, dict):
                c.p(f"{path}: \"made\" must be an object")
                continue
            mp = f"{path}.made"
            if m.get("kind") not in ("residual", "feedforward"):
                c.p(f"{mp}: \"kind\" must be \"residual\" or \"feedforward\"")
            if "input_degrees" in m:
                c.tensor(m, "input_degrees", mp, [d])
            h = c.masked(m.get("initial"), f"{mp}.initial", d)
            if "context" in m:
                if cw is None:
                    c.p(f"{mp}.context: the MADE is conditional but the flow has no \"context\"")
                else:
                    c.tensor(m["context"], "weight", f"{mp}.context", [h, cw] if h else None)
            for j, b in enumerate(m.get("blocks", [])):
                bp = f"{mp}.blocks[{j}]"
                if not isinstance(b, dict):
                    c.p(f"{bp} must be an object")
                    continue
                if m.get("kind") == "residual":
                    lins = b.get("linear")
                    if not isinstance(lins, list) or len(lins) != 2:
                        c.p(f"{bp}: \"linear\" must list 2 layers")
                        continue
                    for q, n in enumerate(b.get("batchnorm", [])):
                        c.norm(n, f"{bp}.batchnorm[{q}]", h)
                    t0 = c.masked(lins[0], f"{bp}.linear[0]", h)
                    if "context" in b and cw is not None:
                        c.tensor(b["context"], "weight", f"{bp}.context", [t0, cw] if t0 else None)
                    c.masked(lins[1], f"{bp}.linear[1]", t0)
                else:
                    if "batchnorm" in b:
                        c.norm(b["batchnorm"], f"{bp}.batchnorm", h)
                    h = c.masked(b.get("linear"), f"{bp}.linear", h)
            out = c.masked(m.get("final"), f"{mp}.final", h, degrees=False)
            if out is not None and shapes is not None and out != n_params * d:
                c.p(f"{mp}.final: {out} outputs, expected {n_params * d} ({n_params} parameters per feature"
                    + (", 3K - 1 for K bins)" if k == "rqs_autoregressive" else ")"))
    return c.problems, (d if node.get("mode") == "sample" else 1)


def _check_coupling(c: "_Check", t: dict, path: str, d: int, cw: Optional[int], values):
    """A coupling layer: its identity/transform columns (a partition of 0..D when the values are
    known), its elementwise transform and its ResidualNet's shapes."""
    if t["kind"] == "rqs_coupling":
        m = _check_spline(c, t.get("spline"), f"{path}.spline")
        if m is None:
            return
    else:
        _check_scale(c, t.get("scale"), path)
        m = 2
    sh = {key: c.tensor(t, key, f"{path}.{key}") for key in ("identity", "transform")}
    for key, v in sh.items():
        if v is not None and len(v) != 1:
            c.p(f"{path}.{key}: tensor {t[key]!r} has shape {v}, expected a list of columns [n]")
            return
    if values is not None and t.get("identity") in values and t.get("transform") in values:
        cols = [int(v) for v in np.ravel(values[t["identity"]])] + [int(v) for v in np.ravel(values[t["transform"]])]
        if sorted(cols) != list(range(d)) or len(np.ravel(values[t["transform"]])) == 0:
            c.p(f"{path}: identity and transform columns {cols} are not a partition of 0..{d} with at least one "
                "transformed column")
    if c.shapes is None or sh["identity"] is None or sh["transform"] is None:
        return
    ni, nt = sh["identity"][0], sh["transform"][0]
    net = t.get("net")
    if not isinstance(net, dict):
        c.p(f"{path}: \"net\" must be an object")
        return
    np_ = f"{path}.net"
    ini = net.get("initial")
    shp = c.tensor(ini, "weight", f"{np_}.initial") if isinstance(ini, dict) else None
    if shp is None or len(shp) != 2 or shp[1] != ni + (cw or 0):
        c.p(f"{np_}.initial: weight has shape {shp}, expected [hidden, {ni + (cw or 0)}] (identity columns + context)")
        return
    h = shp[0]
    if "bias" in ini:
        c.tensor(ini, "bias", f"{np_}.initial", [h])
    for j, b in enumerate(net.get("blocks", [])):
        bp = f"{np_}.blocks[{j}]"
        if not isinstance(b, dict) or not isinstance(b.get("linear"), list) or len(b["linear"]) != 2:
            c.p(f"{bp}: \"linear\" must list 2 layers")
            continue
        for q, n in enumerate(b.get("batchnorm", [])):
            c.norm(n, f"{bp}.batchnorm[{q}]", h)
        for q in range(2):
            c.tensor(b["linear"][q], "weight", f"{bp}.linear[{q}]", [h, h])
        if "context" in b:
            if cw is None:
                c.p(f"{bp}.context: the net is conditional but the flow has no \"context\"")
            else:
                c.tensor(b["context"], "weight", f"{bp}.context", [h, cw])
    fin = net.get("final")
    if isinstance(fin, dict):
        c.tensor(fin, "weight", f"{np_}.final", [nt * m, h])
        if "bias" in fin:
            c.tensor(fin, "bias", f"{np_}.final", [nt * m])
    else:
        c.p(f"{np_}: \"final\" must be an object")


def _check_spline(c: _Check, s, path: str) -> Optional[int]:
    """Problems of a spline object; its parameters per feature (3K - 1), or None."""
    if not isinstance(s, dict) or s.get("style") not in ("nflows", "zuko"):
        c.p(f"{path}: must be an object with \"style\" \"nflows\" or \"zuko\"")
        return None
    k = s.get("bins")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 512:
        c.p(f"{path}: \"bins\" must be an integer from 1 to 512")
        return None
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)  # noqa: E731
    if not (num(s.get("bound")) and s["bound"] > 0):
        c.p(f"{path}: \"bound\" must be a number > 0")
    if "divisor" in s and not (num(s["divisor"]) and s["divisor"] > 0):
        c.p(f"{path}: \"divisor\" must be a number > 0")
    if s["style"] == "nflows":
        for f in ("min_bin_width", "min_bin_height"):
            if not (num(s.get(f)) and 0 <= s[f] and s[f] * k < 1):
                c.p(f"{path}: \"{f}\" must be >= 0 with {f} * bins < 1")
        if not (num(s.get("min_derivative")) and 0 <= s["min_derivative"] < 1):
            c.p(f"{path}: \"min_derivative\" must be in [0, 1)")
    elif not (num(s.get("slope")) and 0 < s["slope"] < 1):
        c.p(f"{path}: \"slope\" must be in (0, 1)")
    return 3 * k - 1


# -- reference evaluation ---------------------------------------------------------------------

def _linear(obj, T, x):
    y = x @ T[obj["weight"]].T
    if "bias" in obj:
        y = y + T[obj["bias"]]
    return y


def _norm(n, T, x):
    return (x - T[n["mean"]]) / np.sqrt(T[n["var"]] + n["eps"]) * T[n["gamma"]] + T[n["beta"]]


def made(m: dict, T, x: np.ndarray, c: Optional[np.ndarray]) -> np.ndarray:
    """The MADE's outputs [N, D·m] at x [N, D]."""
    a = m["activation"]
    h = _linear(m["initial"], T, x)
    if "context" in m:
        h = h + _act(m["context"]["activation"], _linear(m["context"], T, c))
    if m["kind"] == "feedforward":
        h = _act(a, h)
    for b in m["blocks"]:
        if m["kind"] == "residual":
            t = h
            if "batchnorm" in b:
                t = _norm(b["batchnorm"][0], T, t)
            t = _linear(b["linear"][0], T, _act(a, t))
            if "context" in b:
                t = t + _linear(b["context"], T, c)
            if "batchnorm" in b:
                t = _norm(b["batchnorm"][1], T, t)
            h = h + _linear(b["linear"][1], T, _act(a, t))
        else:
            t = _norm(b["batchnorm"], T, h) if "batchnorm" in b else h
            h = _act(a, _linear(b["linear"], T, t))
    return _linear(m["final"], T, h)


def _clamp(x: np.ndarray, lo, hi) -> np.ndarray:
    """torch.clamp: min(max(x, lo), hi), either bound optional."""
    if lo is not None:
        x = np.maximum(x, lo)
    if hi is not None:
        x = np.minimum(x, hi)
    return x


def _scale(s: dict, u: np.ndarray) -> np.ndarray:
    k = s["kind"]
    if k == "softplus":
        return _clamp(np.where(u > s["threshold"], u, np.logaddexp(0.0, u)) + s["eps"], s.get("min"), s.get("max"))
    if k == "sigmoid":
        return s["factor"] / (1.0 + np.exp(-(u + s["offset"]))) + s["eps"]
    if k == "atan":
        return _clamp(s["factor"] * np.arctan(u / s["factor"]), s["min"], s.get("max"))
    return np.exp(u / (1.0 + np.abs(u) / s["bound"]))


def _shift(t: dict, v: np.ndarray, inverse: bool) -> np.ndarray:
    v = v + t.get("shift_offset", 0.0)
    sc = t.get("shift_clamp")
    if sc is not None and (not inverse or sc["inverse"]):
        v = _clamp(v, sc["min"], sc["max"])
    return v


def _affine_params(t, T, x, c, inverse=False):
    p = made(t["made"], T, x, c).reshape(x.shape[0], x.shape[1], 2)
    si = 0 if t["params"] == ["scale", "shift"] else 1
    return _scale(t["scale"], p[..., si]), _shift(t, p[..., 1 - si], inverse)


def _lu(t, T):
    return (np.asarray(T[t["lower"]], dtype=np.float64), np.asarray(T[t["upper"]], dtype=np.float64),
            np.asarray(T[t["bias"]], dtype=np.float64))


def _lu_forward(t, T, x):
    """nflows LULinear: y = L·(U·x) + bias, log|det| = Σ ln U_ii."""
    L, U, b = _lu(t, T)
    y = (x @ U.T) @ L.T + b
    return y, np.full(x.shape[0], np.sum(np.log(np.diag(U))))


def _lu_inverse(t, T, y):
    """Two triangular solves: forward substitution with the unit L, back substitution with U."""
    L, U, b = _lu(t, T)
    d = y.shape[1]
    w = y - b
    for i in range(d):
        w[:, i] = w[:, i] - w[:, :i] @ L[i, :i]
    x = np.zeros_like(w)
    for i in reversed(range(d)):
        x[:, i] = (w[:, i] - x[:, i + 1:] @ U[i, i + 1:]) / U[i, i]
    return x


def _softmax(u):
    e = np.exp(u - u.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _knots(s: dict, p: np.ndarray):
    """Knots (x [..., K+1], y [..., K+1], derivatives [..., K+1]) from parameters [..., 3K-1]."""
    k, b, div = s["bins"], float(s["bound"]), float(s.get("divisor", 1.0))
    uw, uh, ud = p[..., :k] / div, p[..., k:2 * k] / div, p[..., 2 * k:]
    pad0 = lambda a: np.concatenate([np.zeros(a.shape[:-1] + (1,)), a], axis=-1)  # noqa: E731
    ones = np.ones(p.shape[:-1] + (1,))
    if s["style"] == "nflows":
        def knots(u, mn):
            cum = pad0(np.cumsum(mn + (1 - mn * k) * _softmax(u), axis=-1))
            x = 2 * b * cum - b
            x[..., 0], x[..., -1] = -b, b
            return x
        md = s["min_derivative"]
        end = md + np.logaddexp(0.0, np.log(np.exp(1 - md) - 1))
        d = np.concatenate([end * ones, md + np.logaddexp(0.0, ud), end * ones], axis=-1)
        return knots(uw, s["min_bin_width"]), knots(uh, s["min_bin_height"]), d
    ls = np.log(s["slope"])
    knots = lambda u: b * (2 * pad0(np.cumsum(_softmax(u / (1 + np.abs(2 * u / ls))), axis=-1)) - 1)  # noqa: E731
    d = np.concatenate([ones, np.exp(ud / (1 + np.abs(ud / ls))), ones], axis=-1)
    return knots(uw), knots(uh), d


def _spline(s: dict, p: np.ndarray, v: np.ndarray, inverse: bool):
    """The spline (or its inverse) of v [N, D] with parameters [N, D, 3K-1]: (out, log|T'| [N, D])."""
    xs, ys, ds = _knots(s, p)
    k = s["bins"]
    kn = ys if inverse else xs
    if s["style"] == "nflows":
        inside = (v >= -s["bound"]) & (v <= s["bound"])
        idx = np.sum(v[..., None] >= kn[..., :k], axis=-1) - 1
    else:
        inside = (kn[..., 0] < v) & ~(kn[..., k] < v)
        idx = np.sum(kn[..., :k] < v[..., None], axis=-1) - 1
    idx = np.clip(idx, 0, k - 1)[..., None]
    g = lambda a, o=0: np.take_along_axis(a, idx + o, axis=-1)[..., 0]  # noqa: E731
    x0, w, y0, h, d0, d1 = g(xs), g(xs, 1) - g(xs), g(ys), g(ys, 1) - g(ys), g(ds), g(ds, 1)
    delta = h / w
    gg = d0 + d1 - 2 * delta
    if inverse:
        dy = v - y0
        a = dy * gg + h * (delta - d0)
        bq = h * d0 - dy * gg
        cq = -delta * dy
        theta = 2 * cq / (-bq - np.sqrt(np.maximum(bq * bq - 4 * a * cq, 0.0)))
        out = theta * w + x0
    else:
        theta = (v - x0) / w
        t = theta * (1 - theta)
        out = y0 + h * (delta * theta ** 2 + d0 * t) / (delta + gg * t)
    t = theta * (1 - theta)
    with np.errstate(invalid="ignore", divide="ignore"):  # rows outside the spline are masked below
        lj = np.log(delta ** 2 * (d1 * theta ** 2 + 2 * delta * t + d0 * (1 - theta) ** 2)) - 2 * np.log(delta + gg * t)
    if inverse:
        lj = -lj
    return np.where(inside, out, v), np.where(inside, lj, 0.0)


def _spline_params(t, T, x, c):
    n = 3 * t["spline"]["bins"] - 1
    return made(t["made"], T, x, c).reshape(x.shape[0], x.shape[1], n)


def _residual_net(net: dict, T, x: np.ndarray, c: Optional[np.ndarray]) -> np.ndarray:
    """nflows' ResidualNet at cat(x, c): [N, n_out]."""
    a = net["activation"]
    h = _linear(net["initial"], T, x if c is None else np.concatenate([x, c], axis=1))
    for b in net["blocks"]:
        t = h
        if "batchnorm" in b:
            t = _norm(b["batchnorm"][0], T, t)
        t = _linear(b["linear"][0], T, _act(a, t))
        if "batchnorm" in b:
            t = _norm(b["batchnorm"][1], T, t)
        t = _linear(b["linear"][1], T, _act(a, t))
        if "context" in b:
            t = t / (1.0 + np.exp(-_linear(b["context"], T, c)))
        h = h + t
    return _linear(net["final"], T, h)


def _coupling(t, T, v, c, inverse: bool):
    """A coupling layer forward (data -> noise) or inverted: (out, log|det| of that direction)."""
    idc, trc = T[t["identity"]].astype(int).ravel(), T[t["transform"]].astype(int).ravel()
    p = _residual_net(t["net"], T, v[:, idc], c)
    n = len(trc)
    out = v.copy()
    if t["kind"] == "affine_coupling":
        shift, s = p[:, :n], _scale(t["scale"], p[:, n:])
        out[:, trc] = (v[:, trc] - shift) / s if inverse else v[:, trc] * s + shift
        ld = np.log(s).sum(axis=1)
        return out, (-ld if inverse else ld)
    m = 3 * t["spline"]["bins"] - 1
    y, lj = _spline(t["spline"], p.reshape(v.shape[0], n, m), v[:, trc], inverse)
    out[:, trc] = y
    return out, lj.sum(axis=1)


def _forward(t, T, x, c):
    k = t["kind"]
    if k in ("affine_coupling", "rqs_coupling"):
        return _coupling(t, T, x, c, False)
    if k == "permutation":
        return x[:, T[t["permutation"]].astype(int)], np.zeros(x.shape[0])
    if k == "batchnorm":
        w, sd = T[t["weight"]], np.sqrt(T[t["var"]] + t["eps"])
        y = w * (x - T[t["mean"]]) / sd + T[t["bias"]]
        return y, np.full(x.shape[0], np.sum(np.log(w) - np.log(sd)))
    if k == "rqs_autoregressive":
        y, lj = _spline(t["spline"], _spline_params(t, T, x, c), x, False)
        return y, lj.sum(axis=1)
    if k == "lu_linear":
        return _lu_forward(t, T, x)
    s, shift = _affine_params(t, T, x, c)
    return s * x + shift, np.log(s).sum(axis=1)


def _inverse(t, T, y, c):
    k = t["kind"]
    if k == "permutation":
        return y[:, np.argsort(T[t["permutation"]].astype(int))]
    if k == "batchnorm":
        return (y - T[t["bias"]]) / T[t["weight"]] * np.sqrt(T[t["var"]] + t["eps"]) + T[t["mean"]]
    if k == "lu_linear":
        return _lu_inverse(t, T, y)
    if k in ("affine_coupling", "rqs_coupling"):
        return _coupling(t, T, y, c, True)[0]
    x = np.zeros_like(y)
    if k == "rqs_autoregressive":
        for _ in range(y.shape[1]):
            x = _spline(t["spline"], _spline_params(t, T, x, c), y, True)[0]
        return x
    for _ in range(y.shape[1]):
        s, shift = _affine_params(t, T, x, c, inverse=True)
        x = (y - shift) / s
    return x


def evaluate_flow(node: dict, T, x: np.ndarray, c: Optional[np.ndarray]) -> np.ndarray:
    if node["mode"] == "sample":
        for t in reversed(node["transforms"]):
            x = _inverse(t, T, x, c)
        return x
    ld = np.zeros(x.shape[0])
    for t in node["transforms"]:
        x, l = _forward(t, T, x, c)
        ld = ld + l
    d = x.shape[1]
    return (-0.5 * np.sum(x * x, axis=1) - 0.5 * d * np.log(2 * np.pi) + ld)[:, None]


# -- writing ----------------------------------------------------------------------------------

def write_flow_specs(b, path_prefix: str, name: str, transforms: List[dict], cols: Sequence[str],
                     ctx_cols: Sequence[str], log_prob: bool = True, description: Optional[str] = None) -> List[dict]:
    """Writes the sampling spec `path_prefix.json` (model `name`: context + base noise `z` ->
    samples), the weights `path_prefix.safetensors` and, with `log_prob`, `<dir>/<name>_log_prob.json`
    (model `<name>_log_prob`: x + context -> log p(x | context)) reading the same weights. `b` is the
    GraphBuilder holding the tensors, with "context" and "z" declared. Returns the specs."""
    from .builder import ExportError, dumps
    from .validate import validate_spec

    d = len(cols)

    def node(value: str, input: str, mode: str) -> dict:
        return {"name": value, "op": "flow", "input": input, "context": "context", "mode": mode,
                "base": "standard_normal", "transforms": transforms}

    b.nodes = [node("x", "z", "sample")]
    b.widths["x"] = d
    spec = b.write(path_prefix, name, [{"name": "context", "columns": list(ctx_cols)}],
                   {"name": "z", "dim": d, "distribution": "normal"}, [{"value": "x", "columns": list(cols)}], description)
    specs = [spec]
    if log_prob:
        lp = {"format": spec["format"], "name": f"{name}_log_prob"}
        if description:
            lp["description"] = description + " (log density)"
        lp["weights"] = spec["weights"]
        lp["inputs"] = [{"name": "x", "columns": list(cols)}, {"name": "context", "columns": list(ctx_cols)}]
        lp["graph"] = [node("log_prob", "x", "log_prob")]
        lp["outputs"] = [{"value": "log_prob", "columns": ["log_prob"]}]
        shapes = {k: list(v.shape) for k, v in b.tensors.items()}
        shapes.update({k: list(v.shape) for k, v in b.int_tensors.items()})
        problems = validate_spec(lp, shapes)
        if problems:
            raise ExportError("exported log-prob spec is invalid:\n  " + "\n  ".join(problems))
        with open(os.path.join(os.path.dirname(path_prefix), f"{name}_log_prob.json"), "w") as f:
            f.write(dumps(lp))
        specs.append(lp)
    return specs

"""zuko exporter: a trained `zuko.flows.MAF` (masked autoregressive flow with affine transforms)
or `zuko.flows.NSF` (rational-quadratic splines) as flashc/1 `flow` nodes (docs/flows.md).

    from flashc_export import zuko as fxz
    fxz.export("models/jets", "jets", flow, columns=[...], context_columns=[...])

writes the same three files as `flashc_export.nflows.export`. zuko's transforms map data to noise
(`flow(c).log_prob(x)` = base log density of `transform(x)` + log-det); sampling is
`flow(c).transform.inv(z)`.

Supported: `zuko.flows.MAF` and `zuko.flows.NSF` (or a `Flow` of `MaskedAutoregressiveTransform`s
with zuko's default `MonotonicAffineTransform` or a `MonotonicRQSTransform`, `passes` = features, a `MaskedMLP` hyper-network without residual
blocks) and a `DiagNormal` base with loc 0 and scale 1. The hyper-network reads `cat(x, c)`; its
first layer is split into the masked part on `x` and the context part, and the degree of every
hidden unit is derived from the masks: the largest degree (order + 1) of the inputs it reads.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

from .builder import ExportError, GraphBuilder
from .flow import write_flow_specs

SUPPORTED = ("MaskedAutoregressiveTransform (MonotonicAffineTransform or MonotonicRQSTransform, passes = features, "
             "MaskedMLP without residual)",)


def _univariate(t, where: str):
    """The flow-node fields of the transform's univariate transformation (without "made"), and
    its parameters per feature."""
    import functools

    from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

    shapes = [tuple(s) for s in t.shapes]
    u = t.univariate
    if u is MonotonicAffineTransform and shapes == [(), ()]:
        return {"kind": "affine_autoregressive", "params": ["shift", "scale"],
                "scale": {"kind": "soft_clip_exp", "bound": -math.log(1e-3)}}, 2
    f, kw = (u.func, dict(u.keywords)) if isinstance(u, functools.partial) and not u.args else (u, {})
    if f is MonotonicRQSTransform and len(shapes) == 3 and shapes[0] == shapes[1] and len(shapes[0]) == 1 \
            and shapes[2] == (shapes[0][0] - 1,) and set(kw) <= {"slope", "bound"}:
        k = shapes[0][0]
        return {"kind": "rqs_autoregressive",
                "spline": {"style": "zuko", "bins": k, "bound": float(kw.get("bound", 5.0)),
                           "slope": float(kw.get("slope", 1e-3))}}, 3 * k - 1
    raise ExportError(f"{where}: the univariate transformation {u!r} with parameter shapes {shapes} is not supported; "
                      "use MonotonicAffineTransform (zuko MAF) or MonotonicRQSTransform (zuko NSF)")


def _np(t):
    return t.detach().cpu().double().numpy()


def _degrees(mask: np.ndarray, din: np.ndarray) -> np.ndarray:
    """The degree of each output unit of a masked layer: the largest degree it reads (0 if none)."""
    m = mask.astype(bool)
    return np.where(m.any(axis=1), np.max(np.where(m, din[None, :], 0), axis=1), 0).astype(np.int64)


def check_flow(flow) -> int:
    """Checks the flow's base; returns D."""
    from zuko.distributions import DiagNormal
    from zuko.lazy import Flow, UnconditionalDistribution

    if not isinstance(flow, Flow):
        raise ExportError(f"expected a zuko Flow (e.g. zuko.flows.MAF), got {type(flow).__name__}")
    base = flow.base
    if not isinstance(base, UnconditionalDistribution) or base.f is not DiagNormal:
        raise ExportError(f"base {base!r} is not supported; the base must be UnconditionalDistribution(DiagNormal, loc, scale)")
    loc, scale = _np(base.loc), _np(base.scale)
    if loc.ndim != 1 or np.any(loc != 0) or np.any(scale != 1):
        raise ExportError("the base DiagNormal must have loc 0 and scale 1 (a standard normal)")
    return int(loc.shape[0])


def transforms_json(b: GraphBuilder, flow, d: int, c: int, prefix: str = "flow") -> List[dict]:
    import torch.nn as nn
    from zuko.flows.autoregressive import MaskedAutoregressiveTransform
    from zuko.lazy import LazyComposedTransform
    from zuko.nn import MaskedLinear, MaskedMLP

    from .torch import _module_activation

    ts = flow.transform.transforms if isinstance(flow.transform, LazyComposedTransform) else [flow.transform]
    out = []
    for i, t in enumerate(ts):
        where, path = f"transforms[{i}] ({type(t).__name__})", f"t{i}"
        if not isinstance(t, MaskedAutoregressiveTransform):
            raise ExportError(f"{where}: zuko transform {type(t).__module__}.{type(t).__name__} is not supported; "
                              f"supported: {', '.join(SUPPORTED)}")
        head, n_params = _univariate(t, where)
        if t.order is None or t.passes != d:
            raise ExportError(f"{where}: only fully autoregressive transforms (passes = {d} features, no adjacency) are supported")
        order = t.order.detach().cpu().numpy().astype(np.int64)
        if sorted(order.tolist()) != list(range(d)):
            raise ExportError(f"{where}: the order {order.tolist()} is not a permutation of 0..{d - 1}")
        hyper = t.hyper
        if not isinstance(hyper, MaskedMLP):
            raise ExportError(f"{where}: the hyper-network {type(hyper).__name__} is not a MaskedMLP")
        layers = list(hyper)
        lins = [m for m in layers if isinstance(m, MaskedLinear)]
        acts = [m for m in layers if not isinstance(m, MaskedLinear)]
        if len(layers) != 2 * len(lins) - 1 or any(not isinstance(m, MaskedLinear) for m in layers[0::2]) or len(lins) < 2:
            raise ExportError(f"{where}: the MaskedMLP must alternate MaskedLinear and activation layers (no residual blocks)")
        act = _module_activation(acts[0])
        if act is None or any(_module_activation(a) != act for a in acts):
            raise ExportError(f"{where}: hyper-network activations {[type(a).__name__ for a in acts]} are not supported "
                              "(one activation module for every layer)")
        din = np.concatenate([order + 1, np.zeros(c, dtype=np.int64)])
        W = [_np(m.weight * m.mask) for m in lins]
        masks = [m.mask.detach().cpu().numpy() for m in lins]
        degs = []
        prev = din
        for mk in masks[:-1]:
            deg = _degrees(mk, prev)
            degs.append(deg)
            prev = deg
        if W[0].shape[1] != d + c:
            raise ExportError(f"{where}: the hyper-network reads {W[0].shape[1]} inputs, expected {d} features + {c} context")
        if W[-1].shape[0] != n_params * d:
            raise ExportError(f"{where}: the hyper-network gives {W[-1].shape[0]} outputs, expected {n_params * d}")
        T = lambda p, v: b.tensor(prefix, f"{path}/{p}", v)  # noqa: E731
        I = lambda p, v: b.int_tensor(prefix, f"{path}/{p}", v)  # noqa: E731
        made = {"kind": "feedforward", "activation": act, "input_degrees": I("made/input_degrees", order + 1),
                "initial": {"weight": T("made/initial/weight", W[0][:, :d]), "bias": T("made/initial/bias", _np(lins[0].bias)),
                            "degrees": I("made/initial/degrees", degs[0])}}
        if c:
            made["context"] = {"weight": T("made/context/weight", W[0][:, d:]), "activation": {"kind": "linear"}}
        made["blocks"] = [{"linear": {"weight": T(f"made/blocks/{j}/weight", W[j + 1]), "bias": T(f"made/blocks/{j}/bias", _np(lins[j + 1].bias)),
                                      "degrees": I(f"made/blocks/{j}/degrees", degs[j + 1])}} for j in range(len(lins) - 2)]
        made["final"] = {"weight": T("made/final/weight", W[-1]), "bias": T("made/final/bias", _np(lins[-1].bias))}
        out.append(dict(head, made=made))
    return out


def export(path_prefix: str, name: str, flow, *, columns: Sequence[str], context_columns: Sequence[str],
           log_prob: bool = True, dtype: str = "f32", description: Optional[str] = None):
    """Export a zuko MAF. Writes `path_prefix.safetensors`, `path_prefix.json` (model `name`:
    samples `x = T⁻¹(z; context)`) and, with `log_prob`, `<dir>/<name>_log_prob.json`. Returns the
    written specs."""
    d = check_flow(flow)
    cols = [str(x) for x in columns]
    if len(cols) != d:
        raise ExportError(f"columns has {len(cols)} names, the flow has {d} features")
    ctx_cols = [str(x) for x in context_columns or []]
    if not ctx_cols:
        raise ExportError("give context_columns: a flashc/1 model needs an input, so only conditional flows are exported")
    b = GraphBuilder(dtype)
    b.declare("context", len(ctx_cols))
    b.declare("z", d)
    transforms = transforms_json(b, flow, d, len(ctx_cols))
    return write_flow_specs(b, path_prefix, name, transforms, cols, ctx_cols, log_prob, description)

"""nflows exporter: a trained `nflows.flows.Flow` (its `CompositeTransform` tree) as flashc/1
`flow` nodes (docs/flows.md).

    from flashc_export import nflows as fxn
    fxn.export("models/jets", "jets", flow, columns=[...], context_columns=[...])

writes `models/jets.safetensors`, `models/jets.json` (sampling: context + base noise `z` ->
samples, i.e. `flow._transform.inverse(z, context)`) and `models/jets_log_prob.json`
(x + context -> `flow.log_prob(x, context)`), both reading the same weights.

Supported: `CompositeTransform` (nested), `MaskedAffineAutoregressiveTransform` and
`MaskedPiecewiseRationalQuadraticAutoregressiveTransform` with linear tails (MADE with
residual or feed-forward blocks, context, batch norm), `AffineCouplingTransform` and
`PiecewiseRationalQuadraticCouplingTransform` with linear tails (conditioner `ResidualNet`), `RandomPermutation` /
`ReversePermutation` / `Permutation`, `BatchNorm`, `LULinear`; base `StandardNormal`; no embedding net.
Anything else is an `ExportError` naming the module and where it sits.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from .builder import ExportError, GraphBuilder
from .flow import write_flow_specs

SUPPORTED = ("CompositeTransform", "MaskedAffineAutoregressiveTransform",
             "MaskedPiecewiseRationalQuadraticAutoregressiveTransform (tails='linear')", "AffineCouplingTransform",
             "PiecewiseRationalQuadraticCouplingTransform (tails='linear')", "RandomPermutation", "ReversePermutation",
             "Permutation", "BatchNorm", "LULinear")


def _np(t):
    return t.detach().cpu().double().numpy()


def activation_of(fn, where: str) -> dict:
    """The spec activation of a MADE's activation (a function such as F.relu, or a module)."""
    import torch
    import torch.nn.functional as F

    from .torch import _module_activation

    if isinstance(fn, torch.nn.Module):
        a = _module_activation(fn)
        if a is not None:
            return a
    table = {F.relu: {"kind": "relu"}, torch.relu: {"kind": "relu"}, torch.tanh: {"kind": "tanh"},
             F.tanh: {"kind": "tanh"}, torch.sigmoid: {"kind": "sigmoid"}, F.sigmoid: {"kind": "sigmoid"},
             F.silu: {"kind": "silu"}, F.elu: {"kind": "elu", "alpha": 1.0},
             F.gelu: {"kind": "gelu", "approximate": "none"}, F.leaky_relu: {"kind": "leaky_relu", "alpha": 0.01},
             F.softplus: {"kind": "softplus", "beta": 1.0, "threshold": 20.0}}
    for f, a in table.items():
        if fn is f:
            return dict(a)
    raise ExportError(f"{where}: activation {getattr(fn, '__name__', fn)!r} is not supported; use F.relu, torch.tanh, "
                      "torch.sigmoid, F.silu, F.elu, F.gelu, F.leaky_relu, F.softplus or an equivalent nn module")


class _Writer:
    """Turns the modules of one flow into the JSON of its transforms, tensors into `b`."""

    def __init__(self, b: GraphBuilder, prefix: str):
        self.b = b
        self.prefix = prefix
        self.context = 0

    def t(self, path: str, value) -> str:
        return self.b.tensor(self.prefix, path, _np(value))

    def i(self, path: str, value) -> str:
        return self.b.int_tensor(self.prefix, path, value.detach().cpu().numpy())

    def masked(self, layer, path: str, degrees: bool = True) -> dict:
        o = {"weight": self.t(f"{path}/weight", layer.weight * layer.mask), "bias": self.t(f"{path}/bias", layer.bias)}
        if degrees:
            o["degrees"] = self.i(f"{path}/degrees", layer.degrees)
        return o

    def linear(self, layer, path: str) -> dict:
        o = {"weight": self.t(f"{path}/weight", layer.weight)}
        if layer.bias is not None:
            o["bias"] = self.t(f"{path}/bias", layer.bias)
        return o

    def norm(self, bn, path: str, where: str) -> dict:
        if not bn.track_running_stats or bn.running_mean is None or not bn.affine:
            raise ExportError(f"{where}: BatchNorm1d must be affine and track running statistics")
        return {"gamma": self.t(f"{path}/gamma", bn.weight), "beta": self.t(f"{path}/beta", bn.bias),
                "mean": self.t(f"{path}/mean", bn.running_mean), "var": self.t(f"{path}/var", bn.running_var),
                "eps": float(bn.eps)}

    def made(self, made, path: str, where: str, features: int) -> dict:
        from nflows.transforms.made import MaskedFeedforwardBlock, MaskedResidualBlock

        act = activation_of(made.activation, where)
        n_in = made.initial_layer.mask.shape[1]
        if n_in != features:
            raise ExportError(f"{where}: the MADE has {n_in} inputs, the flow {features} features")
        # nflows' input degrees are always 1..D: "input_degrees" is omitted.
        m = {"kind": "residual" if made.use_residual_blocks else "feedforward", "activation": act,
             "initial": self.masked(made.initial_layer, f"{path}/initial")}
        if hasattr(made, "context_layer"):
            m["context"] = dict(self.linear(made.context_layer, f"{path}/context"), activation=act)
        blocks = []
        for j, blk in enumerate(made.blocks):
            bp, bw = f"{path}/blocks/{j}", f"{where}.blocks[{j}]"
            if isinstance(blk, MaskedResidualBlock):
                o = {}
                if blk.use_batch_norm:
                    o["batchnorm"] = [self.norm(blk.batch_norm_layers[q], f"{bp}/batchnorm/{q}", bw) for q in range(2)]
                o["linear"] = [self.masked(blk.linear_layers[q], f"{bp}/linear/{q}") for q in range(2)]
                if hasattr(blk, "context_layer"):
                    o["context"] = self.linear(blk.context_layer, f"{bp}/context")
            elif isinstance(blk, MaskedFeedforwardBlock):
                o = {}
                if blk.batch_norm is not None:
                    o["batchnorm"] = self.norm(blk.batch_norm, f"{bp}/batchnorm", bw)
                o["linear"] = self.masked(blk.linear, f"{bp}/linear")
            else:
                raise ExportError(f"{bw}: MADE block {type(blk).__name__} is not supported")
            blocks.append(o)
        m["blocks"] = blocks
        m["final"] = self.masked(made.final_layer, f"{path}/final", degrees=False)
        return m

    def residual_net(self, net, path: str, where: str, n_in: int, context: int) -> dict:
        """nflows' ResidualNet reading cat(x[identity], context)."""
        from nflows.nn.nets import ResidualNet

        if type(net) is not ResidualNet:
            raise ExportError(f"{where}: the transform net {type(net).__name__} is not nflows' ResidualNet")
        if net.context_features is None:
            raise ExportError(f"{where}: the ResidualNet has no context_features, but the flow is conditional (nflows "
                              "concatenates the context to its input)")
        w = net.initial_layer.weight
        if net.context_features != context or w.shape[1] != n_in + context:
            raise ExportError(f"{where}: the initial layer reads {w.shape[1]} columns ({net.context_features} context), "
                              f"expected {n_in} identity columns + {context} context")
        acts = {id(b.activation) for b in net.blocks}
        act = activation_of(net.blocks[0].activation, where) if net.blocks else {"kind": "relu"}
        if len(acts) > 1:
            raise ExportError(f"{where}: the blocks use different activations")
        o = {"activation": act, "initial": {"weight": self.t(f"{path}/initial/weight", w)}}
        if net.initial_layer.bias is not None:
            o["initial"]["bias"] = self.t(f"{path}/initial/bias", net.initial_layer.bias)
        blocks = []
        for j, blk in enumerate(net.blocks):
            bp, bw = f"{path}/blocks/{j}", f"{where}.blocks[{j}]"
            b = {}
            if blk.use_batch_norm:
                b["batchnorm"] = [self.norm(blk.batch_norm_layers[q], f"{bp}/batchnorm/{q}", bw) for q in range(2)]
            b["linear"] = [self.linear(blk.linear_layers[q], f"{bp}/linear/{q}") for q in range(2)]
            if hasattr(blk, "context_layer"):
                b["context"] = self.linear(blk.context_layer, f"{bp}/context")
            blocks.append(b)
        o["blocks"] = blocks
        o["final"] = self.linear(net.final_layer, f"{path}/final")
        return o

    def coupling(self, t, path: str, where: str, features: int, context: int) -> dict:
        from nflows.transforms.coupling import AffineCouplingTransform

        if t.features != features:
            raise ExportError(f"{where}: the coupling layer has {t.features} features, the flow {features}")
        if t.unconditional_transform is not None:
            raise ExportError(f"{where}: apply_unconditional_transform=True is not supported")
        o = {"identity": self.i(f"{path}/identity", t.identity_features),
             "transform": self.i(f"{path}/transform", t.transform_features)}
        net = self.residual_net(t.transform_net, f"{path}/net", f"{where}.transform_net", t.num_identity_features, context)
        if type(t) is AffineCouplingTransform:
            # nflows 0.14 `_scale_and_shift`: shift = params[:, :n], scale = sigmoid(params[:, n:] + 2) + 1e-3.
            return {"kind": "affine_coupling", **o, "scale": {"kind": "sigmoid", "factor": 1.0, "offset": 2.0, "eps": 1e-3},
                    "net": net}
        if t.tails != "linear":
            raise ExportError(f"{where}: tails={t.tails!r} is not supported; use tails='linear' (identity outside "
                              "[-tail_bound, tail_bound])")
        # nflows divides the width and height logits by sqrt(hidden_features) of the ResidualNet.
        return {"kind": "rqs_coupling", **o,
                "spline": {"style": "nflows", "bins": int(t.num_bins), "bound": float(t.tail_bound),
                           "divisor": float(np.sqrt(t.transform_net.hidden_features)),
                           "min_bin_width": float(t.min_bin_width), "min_bin_height": float(t.min_bin_height),
                           "min_derivative": float(t.min_derivative)},
                "net": net}

    def transform(self, t, i: int, features: int) -> dict:
        from nflows.transforms.autoregressive import (
            MaskedAffineAutoregressiveTransform, MaskedPiecewiseRationalQuadraticAutoregressiveTransform)
        from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform
        from nflows.transforms.lu import LULinear
        from nflows.transforms.made import MADE
        from nflows.transforms.normalization import BatchNorm
        from nflows.transforms.permutations import Permutation

        where, path = f"transforms[{i}] ({type(t).__name__})", f"t{i}"
        if isinstance(t, Permutation):
            if t._dim != 1:
                raise ExportError(f"{where}: only permutations of dim 1 (the features) are supported")
            return {"kind": "permutation", "permutation": self.i(f"{path}/permutation", t._permutation)}
        if isinstance(t, BatchNorm):
            if t.training:
                raise ExportError(f"{where}: BatchNorm must be in eval mode (call flow.eval())")
            return {"kind": "batchnorm", "weight": self.t(f"{path}/weight", t.weight), "bias": self.t(f"{path}/bias", t.bias),
                    "mean": self.t(f"{path}/mean", t.running_mean), "var": self.t(f"{path}/var", t.running_var),
                    "eps": float(t.eps)}
        if type(t) is LULinear:
            if t.features != features:
                raise ExportError(f"{where}: LULinear has {t.features} features, the flow {features}")
            import torch

            # L (unit diagonal) and U (diagonal softplus(unconstrained_upper_diag) + eps) exactly as
            # nflows builds them, in float32, for its forward pass and its triangular solves.
            with torch.no_grad():
                lower, upper = t._create_lower_upper()
            return {"kind": "lu_linear", "lower": self.t(f"{path}/lower", lower), "upper": self.t(f"{path}/upper", upper),
                    "bias": self.t(f"{path}/bias", t.bias)}
        if type(t) is MaskedAffineAutoregressiveTransform:
            net = t.autoregressive_net
            if not isinstance(net, MADE):
                raise ExportError(f"{where}: the autoregressive net {type(net).__name__} is not nflows' MADE")
            return {"kind": "affine_autoregressive", "params": ["scale", "shift"],
                    "scale": {"kind": "softplus", "threshold": 20.0, "eps": float(t._epsilon)},
                    "made": self.made(net, f"{path}/made", f"{where}.made", features)}
        if type(t) is MaskedPiecewiseRationalQuadraticAutoregressiveTransform:
            net = t.autoregressive_net
            if not isinstance(net, MADE):
                raise ExportError(f"{where}: the autoregressive net {type(net).__name__} is not nflows' MADE")
            if t.tails != "linear":
                raise ExportError(f"{where}: tails={t.tails!r} is not supported; use tails='linear' (identity outside "
                                  "[-tail_bound, tail_bound])")
            # nflows divides the width and height logits by sqrt(hidden_features) only when the net
            # has that attribute (its MADE does not).
            div = float(np.sqrt(net.hidden_features)) if hasattr(net, "hidden_features") else 1.0
            return {"kind": "rqs_autoregressive",
                    "spline": {"style": "nflows", "bins": int(t.num_bins), "bound": float(t.tail_bound), "divisor": div,
                               "min_bin_width": float(t.min_bin_width), "min_bin_height": float(t.min_bin_height),
                               "min_derivative": float(t.min_derivative)},
                    "made": self.made(net, f"{path}/made", f"{where}.made", features)}
        if type(t) in (AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform):
            return self.coupling(t, path, where, features, self.context)
        raise ExportError(f"{where}: nflows transform {type(t).__module__}.{type(t).__name__} is not supported; "
                          f"supported: {', '.join(SUPPORTED)}")


def flatten(transform) -> List:
    """The transforms of a (nested) CompositeTransform, in order."""
    from nflows.transforms.base import CompositeTransform

    if isinstance(transform, CompositeTransform):
        out = []
        for t in transform._transforms:
            out += flatten(t)
        return out
    return [transform]


def transforms_json(b: GraphBuilder, flow, features: int, prefix: str = "flow", context: int = 0) -> List[dict]:
    """The `transforms` list of a flow node for `flow` (tensors added to `b`); `context`: the
    width of the flow's context (coupling nets read it)."""
    w = _Writer(b, prefix)
    w.context = context
    return [w.transform(t, i, features) for i, t in enumerate(flatten(flow._transform))]


def check_flow(flow) -> int:
    """Checks the parts of an nflows Flow other than its transforms; returns D."""
    import torch
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow

    if not isinstance(flow, Flow):
        raise ExportError(f"expected an nflows.flows.Flow, got {type(flow).__name__}")
    if flow.training:
        raise ExportError("the flow is in training mode: call flow.eval() before exporting (batch norms)")
    if not isinstance(flow._embedding_net, torch.nn.Identity):
        raise ExportError(f"embedding net {type(flow._embedding_net).__name__} is not supported: export it as a "
                          "separate network, or pass the embedded context")
    dist = flow._distribution
    if type(dist) is not StandardNormal or len(dist._shape) != 1:
        raise ExportError(f"base distribution {type(dist).__name__} is not supported; the base must be a 1-D StandardNormal")
    return int(dist._shape[0])


def export(path_prefix: str, name: str, flow, *, columns: Sequence[str], context_columns: Optional[Sequence[str]] = None,
           log_prob: bool = True, dtype: str = "f32", description: Optional[str] = None):
    """Export an nflows Flow (in eval mode). Writes `path_prefix.safetensors`, `path_prefix.json`
    (model `name`: samples `x = T⁻¹(z; context)` from the base noise `z`, a normal noise input of
    D columns) and, with `log_prob`, `<dir>/<name>_log_prob.json` (model `<name>_log_prob`:
    `log p(x | context)` of inputs `x` and `context`). Returns the written specs."""
    d = check_flow(flow)
    cols = [str(c) for c in columns]
    if len(cols) != d:
        raise ExportError(f"columns has {len(cols)} names, the flow has {d} features")
    ctx_cols = [str(c) for c in context_columns or []]
    if not ctx_cols:
        raise ExportError("give context_columns: a flashc/1 model needs an input, so only conditional flows are exported")
    b = GraphBuilder(dtype)
    b.declare("context", len(ctx_cols))
    b.declare("z", d)
    transforms = transforms_json(b, flow, d, context=len(ctx_cols))
    return write_flow_specs(b, path_prefix, name, transforms, cols, ctx_cols, log_prob, description)

"""PyTorch exporter: torch.fx symbolic tracing of nn.Module graphs."""
from __future__ import annotations

import operator

import numpy as np

from .builder import ExportError, GraphBuilder

SUPPORTED_MODULES = ("Linear", "ReLU", "LeakyReLU", "ELU", "SELU", "SiLU", "GELU", "Tanh", "Sigmoid", "Softmax(dim=-1)",
                     "Softplus", "BatchNorm1d (eval)", "LayerNorm (last dim)", "GLU(dim=-1)", "Identity", "Dropout")
SUPPORTED_FUNCTIONS = ("x + y (operator.add, torch.add)", "x * y of two tensors (operator.mul, torch.mul)",
                       "torch.cat(dim=-1)", "torch.relu", "torch.tanh", "torch.sigmoid",
                       "torch.nn.functional.{relu,silu,gelu,elu,selu,leaky_relu,softplus,sigmoid,tanh}",
                       "torch.nn.functional.glu(dim=-1)")
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _np(t):
    return t.detach().cpu().double().numpy()


def _module_activation(m):
    import torch.nn as nn

    if isinstance(m, nn.ReLU):
        return {"kind": "relu"}
    if isinstance(m, nn.LeakyReLU):
        return {"kind": "leaky_relu", "alpha": float(m.negative_slope)}
    if isinstance(m, nn.ELU):
        return {"kind": "elu", "alpha": float(m.alpha)}
    if isinstance(m, nn.SELU):
        return {"kind": "selu", "alpha": SELU_ALPHA, "scale": SELU_SCALE}
    if isinstance(m, nn.SiLU):
        return {"kind": "silu"}
    if isinstance(m, nn.GELU):
        return {"kind": "gelu", "approximate": "tanh" if m.approximate == "tanh" else "none"}
    if isinstance(m, nn.Tanh):
        return {"kind": "tanh"}
    if isinstance(m, nn.Sigmoid):
        return {"kind": "sigmoid"}
    if isinstance(m, nn.Softplus):
        return {"kind": "softplus", "beta": float(m.beta), "threshold": float(m.threshold)}
    return None


def _function_activation(node):
    import torch
    import torch.nn.functional as F

    t = node.target
    kw = dict(node.kwargs)
    extra = list(node.args[1:])
    if t in (torch.relu, F.relu):
        return {"kind": "relu"}
    if t in (torch.tanh, F.tanh):
        return {"kind": "tanh"}
    if t in (torch.sigmoid, F.sigmoid):
        return {"kind": "sigmoid"}
    if t is F.silu:
        return {"kind": "silu"}
    if t is F.selu:
        return {"kind": "selu", "alpha": SELU_ALPHA, "scale": SELU_SCALE}
    if t is F.gelu:
        approx = kw.get("approximate", extra[0] if extra else "none")
        return {"kind": "gelu", "approximate": "tanh" if approx == "tanh" else "none"}
    if t is F.elu:
        return {"kind": "elu", "alpha": float(kw.get("alpha", extra[0] if extra else 1.0))}
    if t is F.leaky_relu:
        return {"kind": "leaky_relu", "alpha": float(kw.get("negative_slope", extra[0] if extra else 0.01))}
    if t is F.softplus:
        beta = kw.get("beta", extra[0] if extra else 1.0)
        thr = kw.get("threshold", extra[1] if len(extra) > 1 else 20.0)
        return {"kind": "softplus", "beta": float(beta), "threshold": float(thr)}
    return None


def _is_last_dim(dim, ndim=2):
    return dim in (-1, ndim - 1)


class _Cat:
    """A torch.cat whose concat node is written only if something other than a GLU reads it (a GLU
    of `cat([h, g])` is `h * sigmoid(g)` and needs no concat)."""

    def __init__(self, name, parts):
        self.name, self.parts, self.value = name, parts, None


def _glu(b: GraphBuilder, base: str, x, where: str) -> str:
    """`a * sigmoid(g)` with a, g the first and second half of `x`'s columns."""
    if isinstance(x, _Cat) and len(x.parts) == 2 and b.width(x.parts[0]) == b.width(x.parts[1]):
        a, g = x.parts
    else:
        v = x if isinstance(x, str) else _materialize(b, x)
        n = b.width(v)
        if n % 2:
            raise ExportError(f"{where}: GLU of a tensor of odd width {n}")
        a = b.permute(base + "_value", v, range(n // 2))
        g = b.permute(base + "_gate", v, range(n // 2, n))
    gate = b.activation(base + "_sigmoid", g, {"kind": "sigmoid"})
    return b.node("mul", base, b.width(a), inputs=[a, gate])


def _materialize(b: GraphBuilder, x) -> str:
    if isinstance(x, _Cat):
        if x.value is None:
            x.value = b.node("concat", x.name, sum(b.width(p) for p in x.parts), inputs=list(x.parts))
        return x.value
    return x


def add_torch(b: GraphBuilder, module, x) -> str:
    """Append the nodes of torch `module` (evaluated in eval mode) applied to value `x`, or to the
    values of list `x`, one per argument of `forward` (e.g. `forward(x, context, t)`)."""
    import torch
    import torch.fx as fx
    import torch.nn as nn
    import torch.nn.functional as F

    xs = [x] if isinstance(x, str) else list(x)

    if not isinstance(module, nn.Module):
        raise ExportError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if module.training:
        raise ExportError("the PyTorch module is in training mode; call module.eval() before exporting")
    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:  # tracing failures come from data-dependent control flow
        raise ExportError(f"torch.fx could not trace {type(module).__name__}: {e}; "
                          "only static graphs of supported modules can be exported") from e
    mods = dict(gm.named_modules())
    values = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(xs):
        names = ", ".join(p.target for p in placeholders)
        raise ExportError(f"PyTorch module {type(module).__name__} takes {len(placeholders)} input(s) ({names}); "
                          f"the export gives it {len(xs)}: pass one input (columns as a list) per argument of forward "
                          f"(columns as a dict, in the order of the arguments)")
    feed = dict(zip(placeholders, xs))
    result = None
    for node in gm.graph.nodes:
        where = f"torch.fx node {node.name!r} ({node.op} {node.target})"

        def arg(a, lazy=False):
            if not isinstance(a, fx.Node) or a not in values:
                raise ExportError(f"{where}: argument {a!r} is not a tensor computed from the inputs")
            return values[a] if lazy else _materialize(b, values[a])

        if node.op == "placeholder":
            values[node] = feed[node]
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise ExportError(f"{where}: the module must return a single tensor")
            result = arg(out)
        elif node.op == "call_module":
            m = mods[node.target]
            cls = type(m).__name__
            where = f"PyTorch module {node.target!r} (class {cls}, fx node {node.name!r})"
            if len(node.args) != 1 or node.kwargs:
                raise ExportError(f"{where}: expected a single tensor argument")
            lazy = arg(node.args[0], lazy=True)
            nm = node.target.replace(".", "_")
            if isinstance(m, (nn.Identity, nn.Dropout)):
                values[node] = lazy
                continue
            if isinstance(m, nn.GLU):
                if not _is_last_dim(m.dim):
                    raise ExportError(f"{where}: only GLU over the last dimension is supported (dim={m.dim})")
                values[node] = _glu(b, nm, lazy, where)
                continue
            v = _materialize(b, lazy)
            a = _module_activation(m)
            if a is not None:
                values[node] = b.activation(nm, v, a)
            elif isinstance(m, nn.Linear):
                values[node] = b.dense(nm, v, _np(m.weight).T, _np(m.bias) if m.bias is not None else None)
            elif isinstance(m, nn.Softmax):
                if not _is_last_dim(m.dim):
                    raise ExportError(f"{where}: only softmax over the last dimension is supported (dim={m.dim})")
                values[node] = b.activation(nm, v, {"kind": "softmax"})
            elif isinstance(m, nn.BatchNorm1d):
                if not m.track_running_stats or m.running_mean is None:
                    raise ExportError(f"{where}: BatchNorm1d without running statistics cannot be evaluated in inference mode")
                n = m.num_features
                gamma = _np(m.weight) if m.affine else np.ones(n)
                beta = _np(m.bias) if m.affine else np.zeros(n)
                values[node] = b.node("batchnorm", nm, n, input=v,
                                      tensors={"gamma": gamma, "beta": beta, "mean": _np(m.running_mean),
                                               "var": _np(m.running_var)}, eps=float(m.eps))
            elif isinstance(m, nn.LayerNorm):
                if len(m.normalized_shape) != 1:
                    raise ExportError(f"{where}: only LayerNorm over the last dimension is supported")
                n = m.normalized_shape[0]
                t = {}
                if m.elementwise_affine:
                    t = {"gamma": _np(m.weight),
                         "beta": _np(m.bias) if getattr(m, "bias", None) is not None else np.zeros(n)}
                values[node] = b.node("layernorm", nm, n, input=v, tensors=t, eps=float(m.eps))
            else:
                raise ExportError(f"unsupported {where}; supported modules: {', '.join(SUPPORTED_MODULES)}; "
                                  f"functions: {', '.join(SUPPORTED_FUNCTIONS)}")
        elif node.op == "call_function":
            t = node.target
            if t in (operator.add, torch.add):
                if len(node.args) != 2 or (node.kwargs and set(node.kwargs) != {"alpha"}) or node.kwargs.get("alpha", 1) != 1:
                    raise ExportError(f"{where}: only `a + b` of two tensors is supported")
                a0, a1 = arg(node.args[0]), arg(node.args[1])
                if b.width(a0) != b.width(a1):
                    raise ExportError(f"{where}: adding tensors of widths {b.width(a0)} and {b.width(a1)}")
                values[node] = b.node("add", node.name, b.width(a0), inputs=[a0, a1])
            elif t in (operator.mul, torch.mul):
                if len(node.args) != 2 or node.kwargs or not all(isinstance(a, fx.Node) for a in node.args):
                    raise ExportError(f"{where}: only `a * b` of two tensors of the same width is supported "
                                      "(no scalar factors: fold them into the neighbouring Linear layer)")
                a0, a1 = arg(node.args[0]), arg(node.args[1])
                if b.width(a0) != b.width(a1):
                    raise ExportError(f"{where}: multiplying tensors of widths {b.width(a0)} and {b.width(a1)} "
                                      "(broadcasting is not supported)")
                values[node] = b.node("mul", node.name, b.width(a0), inputs=[a0, a1])
            elif t is F.glu:
                dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else -1)
                if not _is_last_dim(dim):
                    raise ExportError(f"{where}: only F.glu over the last dimension (dim=-1 or 1) is supported, got dim={dim}")
                values[node] = _glu(b, node.name, arg(node.args[0], lazy=True), where)
            elif t is torch.cat:
                seq = node.args[0]
                dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
                if not _is_last_dim(dim):
                    raise ExportError(f"{where}: only torch.cat along the last dimension (dim=-1 or 1) is supported, got dim={dim}")
                vs = [arg(s) for s in seq]
                values[node] = _Cat(node.name, vs)
            else:
                a = _function_activation(node)
                if a is None:
                    raise ExportError(f"unsupported {where}; supported functions: {', '.join(SUPPORTED_FUNCTIONS)}")
                values[node] = b.activation(node.name, arg(node.args[0]), a)
        else:
            raise ExportError(f"unsupported {where}: {node.op} nodes (tensor methods, attributes) are not supported; "
                              f"use modules ({', '.join(SUPPORTED_MODULES)}) or functions ({', '.join(SUPPORTED_FUNCTIONS)})")
    return result

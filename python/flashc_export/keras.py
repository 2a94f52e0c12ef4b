"""Keras 3 exporter (Sequential and Functional models)."""
from __future__ import annotations

import numpy as np

from .builder import ExportError, GraphBuilder

SUPPORTED_LAYERS = ("InputLayer", "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax",
                    "BatchNormalization", "LayerNormalization", "Add", "Concatenate", "Dropout",
                    "nested Sequential/Functional models")
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def gelu_tanh(x):
    """GELU with the tanh approximation, usable as a Keras activation (`activation=gelu_tanh`)
    and recognised by the exporter."""
    import keras

    return keras.activations.gelu(x, approximate=True)


def _activation_table():
    import keras

    A = keras.activations
    t = {
        A.linear: {"kind": "linear"},
        A.relu: {"kind": "relu"},
        A.tanh: {"kind": "tanh"},
        A.sigmoid: {"kind": "sigmoid"},
        A.softmax: {"kind": "softmax"},
        A.elu: {"kind": "elu", "alpha": 1.0},
        A.selu: {"kind": "selu", "alpha": SELU_ALPHA, "scale": SELU_SCALE},
        A.silu: {"kind": "silu"},
        A.gelu: {"kind": "gelu", "approximate": "none"},
        A.softplus: {"kind": "softplus", "beta": 1.0, "threshold": None},
        A.leaky_relu: {"kind": "leaky_relu", "alpha": 0.2},
        gelu_tanh: {"kind": "gelu", "approximate": "tanh"},
    }
    if hasattr(A, "swish"):
        t[A.swish] = {"kind": "silu"}
    return t


def keras_activation(fn, where: str) -> dict:
    for f, a in _activation_table().items():
        if fn is f:
            return dict(a)
    name = getattr(fn, "__name__", repr(fn))
    raise ExportError(f"{where}: activation {name!r} is not supported; supported: linear, relu, leaky_relu, elu, selu, "
                      "silu/swish, gelu, flashc_export.keras.gelu_tanh, tanh, sigmoid, softmax, softplus")


def _last_axis(layer, axis, ndim=2):
    ax = axis
    if isinstance(ax, (list, tuple)):
        if len(ax) != 1:
            return False
        ax = ax[0]
    return ax in (-1, ndim - 1)


def _np(v):
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float64)


def _layer(b: GraphBuilder, layer, xs):
    """Nodes for one layer; `xs` are the input value names. Returns the output value name."""
    import keras

    cls = type(layer).__name__
    nm = layer.name
    where = f"Keras layer {nm!r} (class {cls})"
    L = keras.layers
    if isinstance(layer, keras.Model):
        if len(xs) != 1:
            raise ExportError(f"{where}: nested models must have one input")
        return add_keras(b, layer, xs[0])
    if isinstance(layer, L.InputLayer):
        return xs[0]
    if isinstance(layer, (L.Add, L.Concatenate)):
        if len(xs) < 2:
            raise ExportError(f"{where}: needs at least two inputs")
        if isinstance(layer, L.Add):
            acc = xs[0]
            for i, v in enumerate(xs[1:]):
                if b.width(v) != b.width(acc):
                    raise ExportError(f"{where}: inputs have widths {b.width(acc)} and {b.width(v)}")
                acc = b.node("add", nm if i == len(xs) - 2 else f"{nm}_part", b.width(acc), inputs=[acc, v])
            return acc
        if not _last_axis(layer, layer.axis):
            raise ExportError(f"{where}: only concatenation along the last axis is supported (axis={layer.axis})")
        return b.node("concat", nm, sum(b.width(v) for v in xs), inputs=list(xs))
    if len(xs) != 1:
        raise ExportError(f"{where}: expected one input, got {len(xs)}")
    x = xs[0]
    if isinstance(layer, L.Dense):
        k = _np(layer.kernel)
        if k.ndim != 2:
            raise ExportError(f"{where}: only 2-D kernels are supported")
        bias = _np(layer.bias) if layer.use_bias else None
        if getattr(layer, "lora_enabled", False):
            raise ExportError(f"{where}: LoRA-enabled Dense layers are not supported; merge the LoRA weights first")
        return b.dense(nm, x, k, bias, keras_activation(layer.activation, where))
    if isinstance(layer, L.Activation):
        return b.activation(nm, x, keras_activation(layer.activation, where))
    if isinstance(layer, L.LeakyReLU):
        return b.activation(nm, x, {"kind": "leaky_relu", "alpha": float(layer.negative_slope)})
    if isinstance(layer, L.ELU):
        return b.activation(nm, x, {"kind": "elu", "alpha": float(layer.alpha)})
    if isinstance(layer, L.ReLU):
        if layer.max_value is not None or float(layer.threshold) != 0.0:
            raise ExportError(f"{where}: ReLU with max_value or threshold is not supported")
        ns = float(layer.negative_slope)
        return b.activation(nm, x, {"kind": "leaky_relu", "alpha": ns} if ns else {"kind": "relu"})
    if isinstance(layer, L.Softmax):
        if not _last_axis(layer, layer.axis):
            raise ExportError(f"{where}: only softmax over the last axis is supported (axis={layer.axis})")
        return b.activation(nm, x, {"kind": "softmax"})
    if isinstance(layer, L.Dropout):
        return x  # identity at inference
    if isinstance(layer, L.BatchNormalization):
        if not _last_axis(layer, layer.axis):
            raise ExportError(f"{where}: only axis=-1 is supported (axis={layer.axis})")
        if getattr(layer, "renorm", False):
            raise ExportError(f"{where}: batch renormalisation is not supported")
        n = b.width(x)
        gamma = _np(layer.gamma) if layer.scale else np.ones(n)
        beta = _np(layer.beta) if layer.center else np.zeros(n)
        return b.node("batchnorm", nm, n, input=x,
                      tensors={"gamma": gamma, "beta": beta, "mean": _np(layer.moving_mean),
                               "var": _np(layer.moving_variance)}, eps=float(layer.epsilon))
    if isinstance(layer, L.LayerNormalization):
        if not _last_axis(layer, layer.axis):
            raise ExportError(f"{where}: only axis=-1 is supported (axis={layer.axis})")
        if getattr(layer, "rms_scaling", False):
            raise ExportError(f"{where}: rms_scaling=True is not supported")
        n = b.width(x)
        t = {}
        if layer.scale or layer.center:
            t = {"gamma": _np(layer.gamma) if layer.scale else np.ones(n),
                 "beta": _np(layer.beta) if layer.center else np.zeros(n)}
        return b.node("layernorm", nm, n, input=x, tensors=t, eps=float(layer.epsilon))
    raise ExportError(f"unsupported {where}; supported layers: {', '.join(SUPPORTED_LAYERS)}")


def add_keras(b: GraphBuilder, model, x: str) -> str:
    """Append the nodes of Keras `model` applied to value `x`; returns the output value."""
    import keras

    if not isinstance(model, keras.Model):
        raise ExportError(f"expected a keras.Model, got {type(model).__name__}")
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = _layer(b, layer, [x])
        return x
    if not hasattr(model, "_nodes_by_depth"):
        raise ExportError(f"Keras model {model.name!r} (class {type(model).__name__}) is a subclassed model; "
                          "only Sequential and Functional models can be exported")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"Keras model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "exactly one of each is supported (concatenate inputs before the model)")
    if b.width(x) != model.inputs[0].shape[-1]:
        raise ExportError(f"Keras model {model.name!r} expects {model.inputs[0].shape[-1]} input columns, got {b.width(x)}")
    values = {id(model.inputs[0]): x}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            op = node.operation
            if isinstance(op, keras.layers.InputLayer):
                continue
            try:
                xs = [values[id(t)] for t in node.input_tensors]
            except KeyError:
                raise ExportError(f"Keras layer {op.name!r} reads a tensor that is not computed from the model input")
            outs = node.output_tensors
            if len(outs) != 1:
                raise ExportError(f"Keras layer {op.name!r} (class {type(op).__name__}) has {len(outs)} outputs")
            if not isinstance(op, keras.layers.Layer):
                raise ExportError(f"unsupported Keras operation {getattr(op, 'name', op)!r} (class {type(op).__name__}); "
                                  f"supported layers: {', '.join(SUPPORTED_LAYERS)}")
            values[id(outs[0])] = _layer(b, op, xs)
    return values[id(model.outputs[0])]

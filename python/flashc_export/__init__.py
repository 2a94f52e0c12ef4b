"""flashc_export: write Keras, PyTorch and scikit-learn models as flashc/1 specs (JSON + safetensors).

    import flashc_export as fx
    fx.export("models/acc", "acc", columns=[...], preprocess=ct, net=keras_model,
              output_columns=["p_acc"])

The graph of the written spec is: preprocessing forward on the inputs -> (concat noise) ->
network -> postprocessing inverse. See python/README.md and docs/spec.md.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from .builder import FORMAT, ExportError, GraphBuilder
from .st import round_to_dtype
from .sklearn import Decorrelate, logit

__all__ = ["export", "ExportError", "GraphBuilder", "Decorrelate", "logit", "round_to_dtype", "FORMAT", "add_net",
           "add_transformer"]
__version__ = "0.1.0"


def _framework(net) -> str:
    mod = type(net).__module__
    for base in type(net).__mro__:
        m = base.__module__ or ""
        if m.startswith("keras") or m.startswith("tf_keras") or m.startswith("tensorflow"):
            return "keras"
        if m.startswith("torch"):
            return "torch"
    raise ExportError(f"network of class {type(net).__name__} (module {mod}) is neither a Keras model nor a torch.nn.Module")


def add_net(b: GraphBuilder, net, x) -> str:
    """Append a Keras model or a PyTorch module applied to value `x` (a PyTorch module may also
    take a list of values, one per argument of its `forward`)."""
    if _framework(net) == "keras":
        from .keras import add_keras

        if not isinstance(x, str):
            if len(x) != 1:
                raise ExportError("a Keras model is exported with one input; give `columns` as a list "
                                  "(multi-input models are supported for PyTorch modules)")
            x = x[0]
        return add_keras(b, net, x)
    from .torch import add_torch

    return add_torch(b, net, x)


def add_transformer(b: GraphBuilder, tr, x: str, direction: str) -> str:
    from .sklearn import add_transformer as _add

    return _add(b, tr, x, direction)


def export(path_prefix: str, name: str, *, columns, inputs: str = "inputs",
           preprocess=None, net=None, postprocess=None, postprocess_direction: str = "inverse",
           noise_dim: int = 0, noise_distribution: str = "normal", noise_name: str = "noise",
           output_columns: Optional[Sequence[str]] = None, dtype: str = "f32",
           description: Optional[str] = None, ode: Optional[dict] = None) -> dict:
    """Export one model to `path_prefix.json` + `path_prefix.safetensors`.

    - `inputs`: name of the input value; `columns`: its column names (the input width).
    - Several inputs (a PyTorch module whose `forward` takes several tensors, e.g.
      `forward(x, context, t)`): `columns` is a dict `{input name: column names}`, one entry per
      argument of `forward`, in order; the caller's row is their columns concatenated in that
      order. `preprocess` is then a dict `{input name: transformer}` for the inputs it applies to.
    - `ode`: for a flow-matching vector field, how it is integrated (the spec's "ode" section,
      docs/flow-matching.md), e.g. `{"method": "rk4", "steps": 5, "state": [...], "time": "t"}`.
    - `preprocess`: fitted sklearn transformer applied forward (`transform`) to the inputs.
    - `noise_dim`: if > 0, a noise input of that width (`noise_distribution` "normal" or "uniform")
      is concatenated after the preprocessed inputs.
    - `net`: a Keras 3 model or a PyTorch module (in eval mode).
    - `postprocess`: fitted sklearn transformer applied to the network output, by default in the
      inverse direction (`inverse_transform`; a ColumnTransformer is inverted part by part).
    - `output_columns`: output column names (default y0, y1, ...).
    - `dtype`: weight dtype in the safetensors file: "f32", "f16" or "bf16".
    Returns the spec (a dict)."""
    b = GraphBuilder(dtype)
    if isinstance(columns, Mapping):
        return _export_multi(b, path_prefix, name, columns, preprocess, net, postprocess, postprocess_direction,
                             noise_dim, output_columns, description, ode)
    cols = [str(c) for c in columns]
    if len(set(cols)) != len(cols):
        raise ExportError("input column names must be unique")
    x = b.declare(inputs, len(cols))
    if preprocess is not None:
        x = add_transformer(b, preprocess, x, "forward")
    noise = None
    if noise_dim:
        if noise_distribution not in ("normal", "uniform"):
            raise ExportError("noise_distribution must be 'normal' or 'uniform'")
        nz = b.declare(noise_name, int(noise_dim))
        noise = {"name": nz, "dim": int(noise_dim), "distribution": noise_distribution}
        x = b.node("concat", "net_input", b.width(x) + int(noise_dim), inputs=[x, nz])
    if net is not None:
        x = add_net(b, net, x)
    if postprocess is not None:
        x = add_transformer(b, postprocess, x, postprocess_direction)
    if x == inputs:
        raise ExportError("the model is empty (no preprocessing, network or postprocessing)")
    n_out = b.width(x)
    oc = [str(c) for c in output_columns] if output_columns is not None else [f"y{i}" for i in range(n_out)]
    if len(oc) != n_out:
        raise ExportError(f"output_columns has {len(oc)} names, the model has {n_out} outputs")
    return b.write(path_prefix, name, [{"name": inputs, "columns": cols}], noise,
                   [{"value": x, "columns": oc}], description, ode)


def _export_multi(b, path_prefix, name, columns, preprocess, net, postprocess, postprocess_direction, noise_dim,
                  output_columns, description, ode) -> dict:
    """`export` with several inputs (`columns` a mapping input name -> column names)."""
    if not columns:
        raise ExportError("`columns` is an empty dict; give one entry per input")
    if noise_dim:
        raise ExportError("noise is not supported together with several inputs; draw it outside and pass it as an "
                          "input, or use one input")
    if net is None:
        raise ExportError("several inputs need a `net` taking one argument per input")
    specs, values = [], []
    seen = set()
    for inp, cols in columns.items():
        if isinstance(cols, str):
            raise ExportError(f"input {inp!r}: give its column names as a list, not a string")
        cols = [str(c) for c in cols]
        if not cols:
            raise ExportError(f"input {inp!r} has no columns")
        for c in cols:
            if c in seen:
                raise ExportError(f"input column name {c!r} is used twice; column names must be unique over all inputs")
            seen.add(c)
        specs.append({"name": str(inp), "columns": cols})
        values.append(b.declare(str(inp), len(cols)))
    if preprocess is not None:
        if not isinstance(preprocess, Mapping):
            raise ExportError("with several inputs, `preprocess` is a dict {input name: transformer}")
        unknown = [k for k in preprocess if k not in columns]
        if unknown:
            raise ExportError(f"`preprocess` names unknown input(s) {unknown}; the inputs are {list(columns)}")
        values = [add_transformer(b, preprocess[k], v, "forward") if k in preprocess else v
                  for k, v in zip(columns, values)]
    x = add_net(b, net, values)
    if postprocess is not None:
        x = add_transformer(b, postprocess, x, postprocess_direction)
    if x in columns:
        raise ExportError(f"the model returns its input {x!r} unchanged")
    n_out = b.width(x)
    oc = [str(c) for c in output_columns] if output_columns is not None else [f"y{i}" for i in range(n_out)]
    if len(oc) != n_out:
        raise ExportError(f"output_columns has {len(oc)} names, the model has {n_out} outputs")
    return b.write(path_prefix, name, specs, None, [{"value": x, "columns": oc}], description, ode)

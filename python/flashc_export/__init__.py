"""flashc_export: write Keras, PyTorch and scikit-learn models as flashc/1 specs (JSON + safetensors).

    import flashc_export as fx
    fx.export("models/acc", "acc", columns=[...], preprocess=ct, net=keras_model,
              output_columns=["p_acc"])

The graph of the written spec is: preprocessing forward on the inputs -> (concat noise) ->
network -> postprocessing inverse. See python/README.md and docs/spec.md.
"""
from __future__ import annotations

from typing import Optional, Sequence

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


def add_net(b: GraphBuilder, net, x: str) -> str:
    """Append a Keras model or a PyTorch module applied to value `x`."""
    if _framework(net) == "keras":
        from .keras import add_keras

        return add_keras(b, net, x)
    from .torch import add_torch

    return add_torch(b, net, x)


def add_transformer(b: GraphBuilder, tr, x: str, direction: str) -> str:
    from .sklearn import add_transformer as _add

    return _add(b, tr, x, direction)


def export(path_prefix: str, name: str, *, columns: Sequence[str], inputs: str = "inputs",
           preprocess=None, net=None, postprocess=None, postprocess_direction: str = "inverse",
           noise_dim: int = 0, noise_distribution: str = "normal", noise_name: str = "noise",
           output_columns: Optional[Sequence[str]] = None, dtype: str = "f32",
           description: Optional[str] = None) -> dict:
    """Export one model to `path_prefix.json` + `path_prefix.safetensors`.

    - `inputs`: name of the input value; `columns`: its column names (the input width).
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
                   [{"value": x, "columns": oc}], description)

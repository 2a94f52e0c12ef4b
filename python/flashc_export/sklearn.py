"""scikit-learn pre/post-processing: the `logit` helper, the `Decorrelate` transformer, and the
exporter of fitted transformers to flashc/1 preprocessing nodes."""
from __future__ import annotations

from functools import partial
from typing import List, Optional, Sequence

import numpy as np

from .builder import ExportError, GraphBuilder

BOUNDS_THRESHOLD = 1e-7  # sklearn.preprocessing._data.BOUNDS_THRESHOLD

SUPPORTED = ("StandardScaler", "MinMaxScaler", "QuantileTransformer", "FunctionTransformer (flashc_export.sklearn.logit only)",
             "Decorrelate", "Pipeline", "ColumnTransformer (remainder='passthrough' or all columns used)", "'passthrough'")


# --------------------------------------------------------------------------- logit
def _logit_forward(x, a):
    x = np.asarray(x)
    return a * np.log(x / (1.0 - x))


def _logit_inverse(y, a):
    y = np.asarray(y)
    return 1.0 / (1.0 + np.exp(-y / a))


def logit(a: float = 1.0):
    """A FunctionTransformer computing `a*log(x/(1-x))` (inverse `1/(1+exp(-y/a))`) that the exporter
    recognises (op `logit`, `scale` = a)."""
    from sklearn.preprocessing import FunctionTransformer

    a = float(a)
    if a == 0.0:
        raise ValueError("logit scale a must be non-zero")
    return FunctionTransformer(func=partial(_logit_forward, a=a), inverse_func=partial(_logit_inverse, a=a),
                               check_inverse=False, validate=False)


def _logit_scale(ft) -> Optional[float]:
    f, g = ft.func, ft.inverse_func
    if (isinstance(f, partial) and f.func is _logit_forward and isinstance(g, partial) and g.func is _logit_inverse
            and not f.args and not g.args and set(f.keywords) == {"a"} and set(g.keywords) == {"a"}
            and f.keywords["a"] == g.keywords["a"] and not ft.kw_args and not ft.inv_kw_args):
        return float(f.keywords["a"])
    return None


# --------------------------------------------------------------------------- Decorrelate
try:
    from sklearn.base import BaseEstimator, TransformerMixin

    _Base = (TransformerMixin, BaseEstimator)
except ImportError:  # pragma: no cover - sklearn is needed to fit anyway
    _Base = (object,)


class Decorrelate(*_Base):
    """Centred PCA rotation: `transform(x) = (x - mean_) @ matrix_`, where the columns of `matrix_`
    are the eigenvectors of the covariance of the training data (largest variance first).
    With `whiten=True` each component is also divided by its standard deviation."""

    def __init__(self, whiten: bool = False):
        self.whiten = whiten

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        cov = np.cov(X - self.mean_, rowvar=False).reshape(X.shape[1], X.shape[1])
        w, v = np.linalg.eigh(cov)
        order = np.argsort(w)[::-1]
        w, v = w[order], v[:, order]
        # deterministic sign: the largest entry of each eigenvector is positive
        signs = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])])
        v = v * np.where(signs == 0, 1.0, signs)
        if self.whiten:
            v = v / np.sqrt(np.maximum(w, 1e-300))
        self.matrix_ = v
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.matrix_

    def inverse_transform(self, Y):
        return np.asarray(Y, dtype=np.float64) @ np.linalg.inv(self.matrix_) + self.mean_


# --------------------------------------------------------------------------- exporter
def _fitted(tr, attr, label):
    if not hasattr(tr, attr):
        raise ExportError(f"transformer {label!r} ({type(tr).__name__}) is not fitted (no {attr}); fit it before exporting")


def _label(name, tr):
    return name or type(tr).__name__.lower()


def add_transformer(b: GraphBuilder, tr, x: str, direction: str, columns: Optional[Sequence[int]] = None,
                    name: Optional[str] = None) -> str:
    """Append the nodes of fitted transformer `tr` applied to value `x` (`direction` "forward" =
    transform, "inverse" = inverse_transform); `columns` restricts it to those columns of `x`."""
    if direction not in ("forward", "inverse"):
        raise ValueError("direction must be 'forward' or 'inverse'")
    cls = type(tr).__name__
    label = _label(name, tr)
    width = b.width(x)
    cols = list(range(width)) if columns is None else [int(c) for c in columns]
    cf = None if cols == list(range(width)) else cols

    def check_n(n):
        if n != len(cols):
            raise ExportError(f"transformer {label!r} ({cls}) was fitted on {n} columns but is applied to {len(cols)}")

    if tr is None or (isinstance(tr, str) and tr == "passthrough"):
        return x
    if isinstance(tr, str):
        raise ExportError(f"transformer {label!r} is the string {tr!r}; only 'passthrough' is supported here")

    if cls == "Pipeline":
        steps = list(tr.steps)
        if direction == "inverse":
            steps = steps[::-1]
        for sname, step in steps:
            x = add_transformer(b, step, x, direction, cols if cf is not None else None, name=f"{label}_{sname}")
        return x
    if cls == "ColumnTransformer":
        if cf is not None:
            raise ExportError(f"transformer {label!r} (ColumnTransformer) nested on a column subset is not supported; "
                              "flatten it into the outer ColumnTransformer")
        return _column_transformer(b, tr, x, direction, label)
    if cls == "StandardScaler":
        _fitted(tr, "n_features_in_", label)
        check_n(tr.n_features_in_)
        n = tr.n_features_in_
        # sklearn computes mean_ even with with_mean=False, but does not subtract it
        mean = tr.mean_ if tr.with_mean and tr.mean_ is not None else np.zeros(n)
        scale = tr.scale_ if tr.with_std and tr.scale_ is not None else np.ones(n)
        return b.node("standard_scaler", label, width, input=x, tensors={"mean": mean, "scale": scale},
                      direction=direction, columns=cf)
    if cls == "MinMaxScaler":
        _fitted(tr, "min_", label)
        check_n(len(tr.min_))
        if getattr(tr, "clip", False):
            raise ExportError(f"transformer {label!r} (MinMaxScaler) uses clip=True, which flashc/1 does not express; "
                              "refit with clip=False")
        return b.node("min_max", label, width, input=x, tensors={"min": tr.min_, "scale": tr.scale_},
                      direction=direction, columns=cf)
    if cls == "QuantileTransformer":
        _fitted(tr, "quantiles_", label)
        check_n(tr.quantiles_.shape[1])
        return b.node("quantile", label, width, input=x,
                      tensors={"quantiles": tr.quantiles_, "references": tr.references_},
                      direction=direction, columns=cf, output_distribution=tr.output_distribution,
                      bounds_threshold=BOUNDS_THRESHOLD)
    if cls == "FunctionTransformer":
        if tr.func is None and tr.inverse_func is None:
            return x  # identity (this is how a fitted ColumnTransformer stores remainder='passthrough')
        a = _logit_scale(tr)
        if a is None:
            raise ExportError(f"transformer {label!r} (FunctionTransformer) is not recognised: only "
                              "flashc_export.sklearn.logit(a) function transformers can be exported "
                              "(arbitrary Python functions cannot be compiled)")
        return b.node("logit", label, width, input=x, direction=direction, columns=cf, scale=a)
    if isinstance(tr, Decorrelate) or cls == "Decorrelate":
        _fitted(tr, "matrix_", label)
        check_n(tr.matrix_.shape[0])
        if np.linalg.matrix_rank(tr.matrix_) < tr.matrix_.shape[0]:
            raise ExportError(f"transformer {label!r} (Decorrelate) has a singular matrix; it cannot be inverted")
        return b.node("decorrelate", label, width, input=x, tensors={"matrix": tr.matrix_, "mean": tr.mean_},
                      direction=direction, columns=cf)
    raise ExportError(f"unsupported scikit-learn transformer {label!r} (class {cls}); supported: {', '.join(SUPPORTED)}")


def column_transformer_layout(ct) -> List[tuple]:
    """(name, transformer, input column indices) in sklearn's output order, remainder included."""
    _fitted(ct, "transformers_", "ColumnTransformer")
    idx = ct._transformer_to_input_indices
    out = []
    for name, tr, _cols in ct.transformers_:
        cols = [int(i) for i in idx.get(name, [])]
        if not cols:
            continue
        if isinstance(tr, str) and tr == "drop":
            raise ExportError(f"ColumnTransformer part {name!r} drops columns {cols}; flashc models keep every "
                              "column: use remainder='passthrough' or select the columns before the model")
        out.append((name, tr, cols))
    return out


def _column_transformer(b: GraphBuilder, ct, x: str, direction: str, label: str) -> str:
    width = b.width(x)
    if ct.n_features_in_ != width:
        raise ExportError(f"ColumnTransformer {label!r} was fitted on {ct.n_features_in_} columns, the value has {width}")
    parts = column_transformer_layout(ct)
    order = [c for _, _, cols in parts for c in cols]
    if sorted(order) != list(range(width)) or len(order) != width:
        raise ExportError(f"ColumnTransformer {label!r}: columns {order} are not a permutation of 0..{width - 1} "
                          "(overlapping or dropped columns are not supported)")
    if direction == "forward":
        for name, tr, cols in parts:
            x = add_transformer(b, tr, x, "forward", cols, name=f"{label}_{name}")
        # sklearn outputs the parts one after the other: route the columns to that order
        return b.permute(f"{label}_route", x, order)
    # inverse: y is in sklearn's output order; put columns back in input order, then invert each part
    inv = [0] * width
    for j, c in enumerate(order):
        inv[c] = j
    x = b.permute(f"{label}_unroute", x, inv)
    for name, tr, cols in parts:
        x = add_transformer(b, tr, x, "inverse", cols, name=f"{label}_{name}")
    return x


def inverse_transform(tr, y: np.ndarray) -> np.ndarray:
    """sklearn's inverse of `tr`, also for a ColumnTransformer (which has no inverse_transform),
    built from the parts' own inverse_transform."""
    y = np.asarray(y, dtype=np.float64)
    if type(tr).__name__ == "ColumnTransformer":
        parts = column_transformer_layout(tr)
        x = np.empty_like(y)
        j = 0
        for _name, sub, cols in parts:
            block = y[:, j : j + len(cols)]
            identity = isinstance(sub, str) or (type(sub).__name__ == "FunctionTransformer" and sub.func is None
                                                and sub.inverse_func is None)
            x[:, cols] = block if identity else inverse_transform(sub, block)
            j += len(cols)
        return x
    if type(tr).__name__ == "Pipeline":
        for _n, step in tr.steps[::-1]:
            if not (step is None or step == "passthrough"):
                y = inverse_transform(step, y)
        return y
    return np.asarray(tr.inverse_transform(y), dtype=np.float64)

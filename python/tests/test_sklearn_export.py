"""scikit-learn exporter: every supported transformer, forward and inverse, against sklearn itself
(through the reference evaluator), plus the rejections."""
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, MinMaxScaler, PowerTransformer, QuantileTransformer,
                                   StandardScaler)

import flashc_export as fx
from flashc_export import ExportError, st
from flashc_export.sklearn import inverse_transform

from helpers import assert_close, eval_exported


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    n = 3000
    X = np.stack([rng.lognormal(0, 0.5, n), rng.normal(2, 3, n), rng.poisson(3, n).astype(float),
                  1 / (1 + np.exp(-rng.normal(0, 1, n))), rng.gamma(2, 2, n)], axis=1)
    X[:, 4] += 0.5 * X[:, 1]
    return X


def roundtrip(tmp_path, tr, X, name="m"):
    """Export forward and inverse; compare with sklearn."""
    cols = [f"c{i}" for i in range(X.shape[1])]
    fx.export(str(tmp_path / f"{name}_f"), f"{name}_f", columns=cols, preprocess=tr)
    fx.export(str(tmp_path / f"{name}_i"), f"{name}_i", columns=cols, postprocess=tr)
    Xe = np.asarray(X[:400], dtype=np.float32).astype(np.float64)
    want = tr.transform(Xe)
    got = eval_exported(str(tmp_path / f"{name}_f"), Xe)
    # parameters are stored in float32
    assert_close(got, want, atol=2e-6, rtol=2e-6, what=f"{name} forward")
    Y = np.asarray(want, dtype=np.float32).astype(np.float64)
    got_i = eval_exported(str(tmp_path / f"{name}_i"), Y)
    assert_close(got_i, inverse_transform(tr, Y), atol=1e-5, rtol=1e-5, what=f"{name} inverse")
    return got, got_i


@pytest.mark.parametrize("make", [
    lambda: StandardScaler(),
    lambda: StandardScaler(with_mean=False),
    lambda: MinMaxScaler(feature_range=(-1, 2)),
    lambda: QuantileTransformer(n_quantiles=100, output_distribution="normal", random_state=0),
    lambda: QuantileTransformer(n_quantiles=100, output_distribution="uniform", random_state=0),
    lambda: fx.Decorrelate(),
    lambda: fx.Decorrelate(whiten=True),
    lambda: Pipeline([("s", StandardScaler()), ("d", fx.Decorrelate()), ("q", QuantileTransformer(n_quantiles=50))]),
], ids=["standard", "standard_nomean", "minmax", "qt_normal", "qt_uniform", "decorrelate", "decorrelate_whiten",
        "pipeline"])
def test_transformer_roundtrip(tmp_path, data, make):
    tr = make().fit(data)
    roundtrip(tmp_path, tr, data)


def test_logit(tmp_path, data):
    tr = fx.logit(0.3)
    X = data[:, [3]]
    np.testing.assert_allclose(tr.fit_transform(X), 0.3 * np.log(X / (1 - X)))
    np.testing.assert_allclose(tr.inverse_transform(tr.transform(X)), X)
    fx.export(str(tmp_path / "l"), "l", columns=["p"], preprocess=tr)
    got = eval_exported(str(tmp_path / "l"), X[:100])
    assert_close(got, tr.transform(X[:100]), atol=1e-12, rtol=1e-12, what="logit")


def test_quantile_ties_and_clipping(tmp_path):
    """Integer-valued column: tied quantiles map to the midpoint; values beyond the ends are clipped."""
    rng = np.random.default_rng(3)
    X = rng.poisson(2.0, (2000, 1)).astype(float)
    tr = QuantileTransformer(n_quantiles=300, output_distribution="normal").fit(X)
    fx.export(str(tmp_path / "q"), "q", columns=["n"], preprocess=tr)
    probe = np.array([[-5.0], [0.0], [0.5], [1.0], [2.0], [2.5], [3.0], [X.max()], [X.max() + 3]])
    want = tr.transform(probe)
    got = eval_exported(str(tmp_path / "q"), probe)
    assert_close(got, want, atol=1e-6, rtol=1e-6, what="tied quantiles")
    assert np.isclose(abs(want[0, 0]), 5.199337582605575)  # the clip bound


def test_column_transformer_reordering(tmp_path, data):
    """sklearn puts the transformed columns first and the remainder last: the export reproduces it."""
    ct = ColumnTransformer([("q", QuantileTransformer(n_quantiles=100), [4, 0]),
                            ("s", Pipeline([("a", StandardScaler()), ("d", fx.Decorrelate())]), [2, 1])],
                           remainder="passthrough").fit(data)
    got, _ = roundtrip(tmp_path, ct, data, "ct")
    # the remainder (column 3) comes last, unchanged
    np.testing.assert_array_equal(got[:, 4], np.float32(data[:400, 3]).astype(np.float64))


def test_column_transformer_order_kept_has_no_routing(tmp_path, data):
    X = data[:, [0, 1, 3, 2]]
    ct = ColumnTransformer([("q", QuantileTransformer(n_quantiles=100), [0, 1]), ("l", fx.logit(1.0), [2])],
                           remainder="passthrough")
    ct.fit(X)
    spec = fx.export(str(tmp_path / "k"), "k", columns=list("abcd"), preprocess=ct)
    assert [n["op"] for n in spec["graph"]] == ["quantile", "logit"]
    roundtrip(tmp_path, ct, X, "k2")


def test_full_model_composition(tmp_path, data):
    """preprocess -> noise concat -> (no net) -> postprocess: graph structure and spec fields."""
    pre = StandardScaler().fit(data)
    spec = fx.export(str(tmp_path / "c"), "c", inputs="cond", columns=list("abcde"), preprocess=pre, noise_dim=3,
                     postprocess=MinMaxScaler().fit(np.ones((10, 8)) * np.arange(10)[:, None]),
                     output_columns=[f"o{i}" for i in range(8)], description="composition")
    assert spec["noise"] == {"name": "noise", "dim": 3, "distribution": "normal"}
    assert [n["op"] for n in spec["graph"]] == ["standard_scaler", "concat", "min_max"]
    assert spec["graph"][1]["inputs"] == [spec["graph"][0]["name"], "noise"]
    assert spec["graph"][2]["direction"] == "inverse"
    x = data[:5]
    z = np.arange(15.0).reshape(5, 3)
    got = eval_exported(str(tmp_path / "c"), x, z)
    post = MinMaxScaler().fit(np.ones((10, 8)) * np.arange(10)[:, None])
    assert_close(got, post.inverse_transform(np.concatenate([pre.transform(x), z], 1)), 1e-5, 1e-6, "composition")


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_weight_dtype(tmp_path, data, dtype):
    tr = StandardScaler().fit(data)
    fx.export(str(tmp_path / "w"), "w", columns=list("abcde"), preprocess=tr, dtype=dtype)
    assert set(st.dtypes(str(tmp_path / "w.safetensors")).values()) == {dtype.upper()}
    w = st.load(str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(w["standardscaler/mean"], fx.round_to_dtype(tr.mean_, dtype))
    assert not np.array_equal(w["standardscaler/mean"], np.float32(tr.mean_))


def test_bf16_rounding_is_nearest_even():
    x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -9, -2.5e-3, 3.0e38], dtype=np.float32)
    r = fx.round_to_dtype(x, "bf16")
    assert r[0] == 1.0
    assert r[1] == 1.0                      # tie -> even (1.0)
    assert r[2] == 1.0 + 4 * 2 ** -8        # tie -> even (1 + 2^-6)
    assert r[3] == 1.0
    assert abs(r[4] - x[4]) <= abs(x[4]) * 2 ** -8
    assert np.isfinite(r[5])


# ----------------------------------------------------------------------------- rejections
def test_reject_other_function_transformer(tmp_path):
    tr = FunctionTransformer(np.log1p, np.expm1).fit(np.ones((3, 2)))
    with pytest.raises(ExportError, match=r"FunctionTransformer.*flashc_export.sklearn.logit"):
        fx.export(str(tmp_path / "x"), "x", columns=["a", "b"], preprocess=tr)


def test_reject_unsupported_transformer(tmp_path, data):
    tr = PowerTransformer().fit(data)
    with pytest.raises(ExportError, match=r"unsupported scikit-learn transformer 'powertransformer' "
                                          r"\(class PowerTransformer\); supported: StandardScaler"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcde"), preprocess=tr)


def test_reject_unsupported_inside_column_transformer(tmp_path, data):
    ct = ColumnTransformer([("pt", PowerTransformer(), [0])], remainder="passthrough").fit(data)
    with pytest.raises(ExportError, match=r"'columntransformer_pt' \(class PowerTransformer\)"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcde"), preprocess=ct)


def test_reject_dropped_columns(tmp_path, data):
    ct = ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="drop").fit(data)
    with pytest.raises(ExportError, match=r"drops columns \[2, 3, 4\]"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcde"), preprocess=ct)


def test_reject_minmax_clip(tmp_path, data):
    tr = MinMaxScaler(clip=True).fit(data)
    with pytest.raises(ExportError, match="clip=True"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcde"), preprocess=tr)


def test_reject_unfitted(tmp_path):
    with pytest.raises(ExportError, match="not fitted"):
        fx.export(str(tmp_path / "x"), "x", columns=list("ab"), preprocess=StandardScaler())


def test_reject_width_mismatch(tmp_path, data):
    tr = StandardScaler().fit(data)
    with pytest.raises(ExportError, match="fitted on 5 columns but is applied to 3"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abc"), preprocess=tr)


def test_reject_bad_names(tmp_path, data):
    tr = StandardScaler().fit(data)
    with pytest.raises(ExportError, match=r"must match \[a-z\]"):
        fx.export(str(tmp_path / "x"), "BadName", columns=list("abcde"), preprocess=tr)
    with pytest.raises(ExportError, match="output_columns has 2 names"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcde"), preprocess=tr, output_columns=["a", "b"])
    with pytest.raises(ExportError, match="unknown weight dtype"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcde"), preprocess=tr, dtype="f8")


def test_decorrelate_class(data):
    d = fx.Decorrelate().fit(data)
    Y = d.transform(data)
    cov = np.cov(Y, rowvar=False)
    assert np.allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-9)
    assert np.all(np.diff(np.diag(cov)) <= 0)  # largest variance first
    np.testing.assert_allclose(d.inverse_transform(Y), data, atol=1e-9)
    np.testing.assert_allclose(d.matrix_.T @ d.matrix_, np.eye(5), atol=1e-12)

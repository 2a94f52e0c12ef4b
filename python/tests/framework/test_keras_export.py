"""Keras exporter against Keras itself (needs TensorFlow + Keras; not run in CI)."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import flashc_export as fx  # noqa: E402
from flashc_export import ExportError  # noqa: E402
from flashc_export.keras import gelu_tanh  # noqa: E402

from helpers import assert_close, eval_exported  # noqa: E402

pytestmark = pytest.mark.framework
L = keras.layers


def check(tmp_path, net, n_in, **kw):
    rng = np.random.default_rng(0)
    x = np.float32(rng.normal(size=(64, n_in)) * 2)
    fx.export(str(tmp_path / "m"), "m", columns=[f"x{i}" for i in range(n_in)], net=net, **kw)
    got = eval_exported(str(tmp_path / "m"), x)
    want = net.predict(x, verbose=0)
    assert_close(got, want, atol=2e-5, rtol=2e-5, what="keras")


@pytest.mark.parametrize("act", ["linear", "relu", "tanh", "sigmoid", "softmax", "elu", "selu", "silu", "swish", "gelu",
                                 "softplus", "leaky_relu", gelu_tanh])
def test_dense_activations(tmp_path, act):
    keras.utils.set_random_seed(1)
    net = keras.Sequential([keras.Input((5,)), L.Dense(7, activation=act), L.Dense(3, activation=act)])
    check(tmp_path, net, 5)


def test_layers_functional(tmp_path):
    keras.utils.set_random_seed(2)
    x = keras.Input((6,))
    h = L.Dense(8)(x)
    h = L.BatchNormalization(epsilon=0.05)(h)
    a = L.LeakyReLU(negative_slope=0.25)(h)
    b = L.ELU(alpha=0.3)(h)
    c = L.Activation("tanh")(h)
    h = L.Add()([a, b])
    h = L.Add()([h, c])
    h = L.Concatenate()([h, L.LayerNormalization(epsilon=0.1)(c), x])
    h = L.Dropout(0.5)(h)
    y = L.Softmax()(L.Dense(4)(L.ReLU(negative_slope=0.1)(h)))
    net = keras.Model(x, y)
    # non-trivial BN / LN parameters
    for layer in net.layers:
        if isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
            layer.set_weights([np.float32(np.random.default_rng(3).uniform(0.5, 1.5, w.shape)) for w in layer.get_weights()])
    check(tmp_path, net, 6)


def test_nested_sequential(tmp_path):
    keras.utils.set_random_seed(3)
    inner = keras.Sequential([keras.Input((4,)), L.Dense(4, activation="tanh")])
    x = keras.Input((4,))
    y = L.Add()([x, inner(x)])
    check(tmp_path, keras.Model(x, y), 4)


def test_f16_weights_roundtrip(tmp_path):
    keras.utils.set_random_seed(4)
    net = keras.Sequential([keras.Input((3,)), L.Dense(5, activation="tanh"), L.Dense(2)])
    fx.export(str(tmp_path / "h"), "h", columns=list("abc"), net=net, dtype="f16")
    for layer in net.layers:
        layer.set_weights([fx.round_to_dtype(w, "f16") for w in layer.get_weights()])
    x = np.float32(np.random.default_rng(0).normal(size=(16, 3)))
    assert_close(eval_exported(str(tmp_path / "h"), x), net.predict(x, verbose=0), 1e-6, 1e-6, "f16")


def test_reject_unsupported_layer(tmp_path):
    net = keras.Sequential([keras.Input((4,)), L.Dense(4), L.GaussianNoise(0.1, name="noisy")])
    with pytest.raises(ExportError, match=r"unsupported Keras layer 'noisy' \(class GaussianNoise\); supported layers: "
                                          r"InputLayer, Dense"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=net)


def test_reject_unsupported_activation(tmp_path):
    net = keras.Sequential([keras.Input((4,)), L.Dense(4, activation="hard_sigmoid", name="hs")])
    with pytest.raises(ExportError, match=r"Keras layer 'hs' \(class Dense\): activation 'hard_sigmoid' is not supported"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=net)


def test_reject_raw_op(tmp_path):
    x = keras.Input((4,))
    y = L.Dense(4)(x) * 2.0
    with pytest.raises(ExportError, match=r"unsupported Keras operation"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=keras.Model(x, y))


def test_reject_subclassed(tmp_path):
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    m = Sub()
    m(np.zeros((1, 3), np.float32))
    with pytest.raises(ExportError, match="subclassed model"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abc"), net=m)

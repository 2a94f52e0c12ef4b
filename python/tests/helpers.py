import json
import os

import numpy as np

from flashc_export.reference import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def model_names():
    return sorted(f[:-5] for f in os.listdir(MODELS) if f.endswith(".json"))


def load_spec(path):
    with open(path) as f:
        return json.load(f)


def assert_close(got, want, atol, rtol, what):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = np.abs(got - want)
    bad = err > atol + rtol * np.abs(want)
    if bad.any():
        i = np.argwhere(bad)[0]
        raise AssertionError(f"{what}: {int(bad.sum())} values out of tolerance; first at {tuple(i)}: "
                             f"got {got[tuple(i)]!r}, want {want[tuple(i)]!r} (max abs err {err.max():.3g})")


def eval_exported(prefix, x, noise=None):
    return evaluate(prefix + ".json", x, noise)

"""The spec validator: each kind of problem is reported, naming the node and tensor."""
import copy
import json
import os

import numpy as np
import pytest

from flashc_export import st
from flashc_export.validate import validate_spec

from helpers import MODELS


@pytest.fixture
def spec_and_shapes():
    with open(os.path.join(MODELS, "zoo_keras.json")) as f:
        spec = json.load(f)
    shapes = {k: list(v.shape) for k, v in st.load(os.path.join(MODELS, "zoo_keras.safetensors")).items()}
    return spec, shapes


def problems(spec, shapes, mutate):
    s = copy.deepcopy(spec)
    sh = dict(shapes)
    mutate(s, sh)
    return validate_spec(s, sh)


def first(spec, op):
    return next(n for n in spec["graph"] if n["op"] == op)


def test_valid(spec_and_shapes):
    assert validate_spec(*spec_and_shapes) == []


@pytest.mark.parametrize("mutate, expect", [
    (lambda s, sh: s.update(format="flashc/2"), "format 'flashc/2' is not supported"),
    (lambda s, sh: s.update(name="Zoo"), "must match"),
    (lambda s, sh: s.update(extra=1), "unknown top-level key 'extra'"),
    (lambda s, sh: first(s, "dense").update(op="conv"), "unknown op"),
    (lambda s, sh: first(s, "dense").update(input="nope"), "reads ['nope'], not defined before this node"),
    (lambda s, sh: sh.pop(first(s, "dense")["bias"]), "is missing from the weights"),
    (lambda s, sh: sh.update({first(s, "dense")["bias"]: [7]}), "has shape [7], expected [32]"),
    (lambda s, sh: first(s, "batchnorm").pop("eps"), "\"eps\" is required"),
    (lambda s, sh: first(s, "dense").update(activation={"kind": "elu"}), "activation 'elu' needs parameter 'alpha'"),
    (lambda s, sh: first(s, "dense").update(activation={"kind": "gelu", "approximate": "erf"}), "must be one of"),
    (lambda s, sh: first(s, "dense").update(activation={"kind": "swish"}), "unknown activation kind 'swish'"),
    (lambda s, sh: s["graph"].append(copy.deepcopy(s["graph"][0])), "is defined twice"),
    (lambda s, sh: s["outputs"][0].update(columns=["a"]), "needs 13 column names"),
    (lambda s, sh: first(s, "concat").update(inputs=[first(s, "concat")["inputs"][0]]), "at least 2"),
])
def test_problems_reported(spec_and_shapes, mutate, expect):
    spec, shapes = spec_and_shapes
    p = problems(spec, shapes, mutate)
    assert any(expect in x for x in p), p


def test_add_width_mismatch():
    spec = {"format": "flashc/1", "name": "m", "weights": "m.safetensors",
            "inputs": [{"name": "a", "columns": ["x", "y"]}], "noise": {"name": "z", "dim": 3, "distribution": "normal"},
            "graph": [{"name": "s", "op": "add", "inputs": ["a", "z"]}],
            "outputs": [{"value": "s", "columns": ["p", "q"]}]}
    assert any("widths 2 and 3" in p for p in validate_spec(spec, {}))


def test_preprocessing_fields():
    base = {"format": "flashc/1", "name": "m", "weights": "m.safetensors",
            "inputs": [{"name": "a", "columns": ["x", "y", "z"]}],
            "graph": [{"name": "q", "op": "quantile", "input": "a", "direction": "forward", "columns": [0, 2],
                       "quantiles": "q/quantiles", "references": "q/references", "output_distribution": "normal",
                       "bounds_threshold": 1e-7}],
            "outputs": [{"value": "q", "columns": ["p", "q", "r"]}]}
    shapes = {"q/quantiles": [10, 2], "q/references": [10]}
    assert validate_spec(base, shapes) == []
    bad = copy.deepcopy(base)
    bad["graph"][0]["columns"] = [0, 3]
    assert any("distinct column indices in [0, 3)" in p for p in validate_spec(bad, shapes))
    bad = copy.deepcopy(base)
    bad["graph"][0].pop("bounds_threshold")
    assert any("bounds_threshold is required" in p for p in validate_spec(bad, shapes))
    bad = copy.deepcopy(base)
    bad["graph"][0]["direction"] = "backward"
    assert any("direction" in p for p in validate_spec(bad, shapes))
    assert any("expected [10, 2]" in p for p in validate_spec(base, {"q/quantiles": [10, 3], "q/references": [10]}))

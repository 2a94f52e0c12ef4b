"""Flow-matching vector fields in the spec, without a framework: the `mul` op (GLU gating), several
inputs, and the "ode" section (validator and float64 reference)."""
import copy
import json

import numpy as np
import pytest
from scipy import special

from flashc_export import ExportError, GraphBuilder
from flashc_export.reference import evaluate, evaluate_spec
from flashc_export.validate import validate_spec

X = [f"x{i}" for i in range(3)]
C = ["c0", "c1"]


def gated(tmp_path, ode=None):
    """x[3], context[2], t[1] -> dense on cat(x, context, t) -> h + l(h) * sigmoid(W [context, t]) -> dense to 3."""
    rng = np.random.default_rng(3)
    b = GraphBuilder()
    x, c, t = b.declare("x", 3), b.declare("context", 2), b.declare("t", 1)
    h = b.dense("h", b.node("concat", "in", 6, inputs=[x, c, t]), rng.normal(size=(6, 8)), rng.normal(size=8))
    ln = b.dense("l", b.activation("a", h, {"kind": "gelu", "approximate": "none"}), rng.normal(size=(8, 8)) * 0.3)
    g = b.dense("g", b.node("concat", "ct", 3, inputs=[c, t]), rng.normal(size=(3, 8)), activation={"kind": "sigmoid"})
    m = b.node("mul", "m", 8, inputs=[ln, g])
    r = b.node("add", "r", 8, inputs=[h, m])
    v = b.dense("v", r, rng.normal(size=(8, 3)) * 0.5, rng.normal(size=3))
    ode = ode if ode is not None else {"method": "rk4", "steps": 5, "state": X, "time": "t"}
    spec = b.write(str(tmp_path / "cfm_tiny"), "cfm_tiny",
                   [{"name": "x", "columns": X}, {"name": "context", "columns": C}, {"name": "t", "columns": ["t"]}],
                   None, [{"value": v, "columns": ["v0", "v1", "v2"]}], ode=ode)
    return spec, {k: v.astype(np.float64) for k, v in b.tensors.items()}


def test_written_spec_has_the_ode_section_and_evaluates(tmp_path):
    spec, T = gated(tmp_path)
    with open(tmp_path / "cfm_tiny.json") as f:
        assert json.load(f)["ode"] == {"method": "rk4", "steps": 5, "state": X, "time": "t"}
    rows = np.random.default_rng(0).normal(size=(16, 6))
    got = evaluate(str(tmp_path / "cfm_tiny.json"), rows)
    # By hand, in float64.
    x, c, t = rows[:, :3], rows[:, 3:5], rows[:, 5:]
    h = np.concatenate([x, c, t], 1) @ T["h/kernel"] + T["h/bias"]
    lin = (h * special.ndtr(h)) @ T["l/kernel"]
    g = special.expit(np.concatenate([c, t], 1) @ T["g/kernel"])
    want = (h + lin * g) @ T["v/kernel"] + T["v/bias"]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert evaluate_spec(spec, T, rows).shape == (16, 3)


@pytest.mark.parametrize("ode, expect", [
    ({"method": "rk45", "steps": 5, "state": X, "time": "t"}, "method 'rk45' is not supported"),
    ({"method": "rk4", "steps": 0, "state": X, "time": "t"}, "needs \"steps\", a positive integer"),
    ({"method": "rk4", "state": X, "time": "t"}, "needs \"steps\""),
    ({"method": "euler", "steps": 2, "rtol": 1e-5, "state": X, "time": "t"}, "'rtol' is given for the fixed-step method"),
    ({"method": "dopri5", "rtol": 1e-5, "state": X, "time": "t"}, "dopri5 needs 'atol'"),
    ({"method": "dopri5", "steps": 3, "rtol": 1e-5, "atol": 1e-5, "state": X, "time": "t"}, "\"steps\" is given"),
    ({"method": "rk4", "steps": 5, "state": X[:2], "time": "t"}, "lists 2 columns, the outputs (dx/dt) have 3"),
    ({"method": "rk4", "steps": 5, "state": ["x0", "x1", "q"], "time": "t"}, "column 'q' must be exactly one of the input columns"),
    ({"method": "rk4", "steps": 5, "state": X, "time": "x2"}, "'x2' is both a state column and the time column"),
    ({"method": "rk4", "steps": 5, "state": X, "time": "t", "tol": 1}, "unknown key 'tol'"),
])
def test_ode_problems(tmp_path, ode, expect):
    spec, T = gated(tmp_path)
    spec = copy.deepcopy(spec)
    spec["ode"] = ode
    problems = validate_spec(spec, {k: list(v.shape) for k, v in T.items()})
    assert any(expect in p for p in problems), problems
    # The exporter refuses to write it.
    with pytest.raises(ExportError, match="ode"):
        gated(tmp_path, ode)


def test_mul_width_mismatch_and_arity(tmp_path):
    spec, T = gated(tmp_path)
    shapes = {k: list(v.shape) for k, v in T.items()}
    s = copy.deepcopy(spec)
    next(n for n in s["graph"] if n["op"] == "mul")["inputs"] = ["l", "ct"]
    assert any("inputs have widths 8 and 3" in p for p in validate_spec(s, shapes))
    s = copy.deepcopy(spec)
    next(n for n in s["graph"] if n["op"] == "mul")["inputs"] = ["l"]
    assert any("exactly 2" in p for p in validate_spec(s, shapes))


def test_noise_is_refused_for_a_vector_field(tmp_path):
    spec, T = gated(tmp_path)
    s = copy.deepcopy(spec)
    s["noise"] = {"name": "z", "dim": 2, "distribution": "normal"}
    assert any("takes no noise" in p for p in validate_spec(s, {k: list(v.shape) for k, v in T.items()}))

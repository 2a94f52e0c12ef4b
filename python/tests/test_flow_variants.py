"""The flow op's LU-linear transform and FlashSim's affine scale/shift variants in the Python
validator and float64 reference (numpy only): a hand-built spec with random weights."""
import copy

import numpy as np
import pytest

from flashc_export.flow import evaluate_flow
from flashc_export.validate import validate_spec

D, C, H = 3, 2, 5
DEG = np.array([1, 2, 1, 2, 1])  # nflows' hidden degrees for D = 3, H = 5


def made(T, p, r):
    """A residual nflows-style MADE (masked weights, degrees), tensors under prefix `p`."""
    def masked(name, rows, cols, ok):
        w = r.normal(0, 0.6, (rows, cols))
        w[~ok] = 0.0
        T[name] = w

    masked(f"{p}/initial/weight", H, D, DEG[:, None] > np.arange(D)[None, :])
    T[f"{p}/initial/bias"] = r.normal(0, 0.1, H)
    T[f"{p}/initial/degrees"] = DEG.astype(np.int64)
    T[f"{p}/context/weight"] = r.normal(0, 0.5, (H, C))
    for q in range(2):
        masked(f"{p}/l{q}/weight", H, H, DEG[:, None] >= DEG[None, :])
        T[f"{p}/l{q}/bias"] = r.normal(0, 0.1, H)
        T[f"{p}/l{q}/degrees"] = DEG.astype(np.int64)
    masked(f"{p}/final/weight", 2 * D, H, (np.arange(2 * D) // 2 + 1)[:, None] > DEG[None, :])
    T[f"{p}/final/bias"] = r.normal(0, 0.3, 2 * D)
    layer = lambda n: {"weight": f"{p}/{n}/weight", "bias": f"{p}/{n}/bias", "degrees": f"{p}/{n}/degrees"}  # noqa: E731
    return {"kind": "residual", "activation": {"kind": "relu"}, "initial": layer("initial"),
            "context": {"weight": f"{p}/context/weight", "activation": {"kind": "relu"}},
            "blocks": [{"linear": [layer("l0"), layer("l1")]}],
            "final": {"weight": f"{p}/final/weight", "bias": f"{p}/final/bias"}}


def lu_tensors(T, p, r):
    T[f"{p}/lower"] = np.tril(r.normal(0, 0.5, (D, D)), -1) + np.eye(D)
    T[f"{p}/upper"] = np.triu(r.normal(0, 0.5, (D, D)), 1) + np.diag(r.uniform(0.5, 1.5, D))
    T[f"{p}/bias"] = r.normal(0, 0.3, D)
    return {"kind": "lu_linear", "lower": f"{p}/lower", "upper": f"{p}/upper", "bias": f"{p}/bias"}


def flow(shift_inverse=True):
    """(node, tensors): permutation, LU-linear, and three affine MAFs with FlashSim's scales."""
    r = np.random.default_rng(4)
    T = {"perm": np.array([2, 0, 1], dtype=np.int64)}
    transforms = [
        {"kind": "permutation", "permutation": "perm"},
        lu_tensors(T, "lu", r),
        {"kind": "affine_autoregressive", "params": ["scale", "shift"],
         "scale": {"kind": "sigmoid", "factor": 3.0, "offset": 1.0, "eps": 0.05},
         "shift_offset": 0.3, "shift_clamp": {"min": -0.4, "max": 0.4, "inverse": shift_inverse},
         "made": made(T, "m0", r)},
        {"kind": "affine_autoregressive", "params": ["scale", "shift"],
         "scale": {"kind": "atan", "factor": 0.5, "min": 0.2, "max": 0.7}, "shift_offset": -1.0,
         "made": made(T, "m1", r)},
        {"kind": "affine_autoregressive", "params": ["shift", "scale"],
         "scale": {"kind": "softplus", "threshold": 20.0, "eps": 0.05, "min": 0.0, "max": 1.0},
         "made": made(T, "m2", r)},
    ]
    node = {"name": "x", "op": "flow", "input": "z", "context": "c", "mode": "sample",
            "base": "standard_normal", "transforms": transforms}
    return node, T


def spec_of(node):
    return {"format": "flashc/1", "name": "fv", "weights": "fv.safetensors",
            "inputs": [{"name": "c", "columns": ["c0", "c1"]}],
            "noise": {"name": "z", "dim": D, "distribution": "normal"},
            "graph": [node], "outputs": [{"value": "x", "columns": ["x0", "x1", "x2"]}]}


def problems(node, T):
    shapes = {k: list(np.shape(v)) for k, v in T.items()}
    return validate_spec(spec_of(node), shapes, values=T)


def test_hand_built_spec_is_valid():
    node, T = flow()
    assert problems(node, T) == []


def test_lu_reference_is_nflows_lu_linear():
    r = np.random.default_rng(9)
    T = {}
    t = lu_tensors(T, "lu", r)
    node = {"mode": "log_prob", "transforms": [t]}
    x = r.normal(size=(7, D))
    L, U, b = T["lu/lower"], T["lu/upper"], T["lu/bias"]
    # Forward y = L·U·x + b; its log-det enters log p.
    y = x @ (L @ U).T + b
    lp = evaluate_flow(node, T, x, None)[:, 0]
    want = -0.5 * np.sum(y * y, axis=1) - 0.5 * D * np.log(2 * np.pi) + np.sum(np.log(np.diag(U)))
    np.testing.assert_allclose(lp, want, rtol=1e-12, atol=1e-12)
    # Inverse: two triangular solves, = (L·U)⁻¹·(y − b).
    back = evaluate_flow({"mode": "sample", "transforms": [t]}, T, y, None)
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, u, want", [
    ({"kind": "sigmoid", "factor": 1000.0, "offset": 1.0, "eps": 0.05}, [-1.0, 0.0, 50.0],
     [1000 * 0.5 + 0.05, 1000 / (1 + np.exp(-1.0)) + 0.05, 1000.05]),
    ({"kind": "atan", "factor": 1000.0, "min": 0.001, "max": 50.0}, [-3.0, 2.0, 1e6],
     [0.001, 1000 * np.arctan(2e-3), 50.0]),
    ({"kind": "softplus", "threshold": 20.0, "eps": 0.05, "min": 0.0, "max": 1.0}, [-30.0, 0.0, 5.0],
     [np.log1p(np.exp(-30.0)) + 0.05, np.log(2) + 0.05, 1.0]),
])
def test_scale_variants(kind, u, want):
    from flashc_export.flow import _scale

    np.testing.assert_allclose(_scale(kind, np.array(u)), want, rtol=1e-12)


def test_shift_clamp_applies_in_the_inverse_only_when_asked():
    from flashc_export.flow import _shift

    t = {"shift_offset": 7.906, "shift_clamp": {"min": -50.0, "max": 8.0, "inverse": False}}
    v = np.array([-100.0, 0.0, 1.0])
    np.testing.assert_allclose(_shift(t, v, inverse=False), [-50.0, 7.906, 8.0])
    np.testing.assert_allclose(_shift(t, v, inverse=True), v + 7.906)
    t["shift_clamp"]["inverse"] = True
    np.testing.assert_allclose(_shift(t, v, inverse=True), [-50.0, 7.906, 8.0])


def test_sampling_and_log_density_agree_through_the_change_of_variables():
    node, T = flow(shift_inverse=True)
    lp_node = dict(node, mode="log_prob")
    r = np.random.default_rng(2)
    for _ in range(4):
        z, c = r.normal(size=(1, D)), r.normal(size=(1, C))
        x = evaluate_flow(node, T, z, c)
        h = 1e-6
        J = np.empty((D, D))
        for j in range(D):
            dz = np.zeros((1, D))
            dz[0, j] = h
            J[:, j] = (evaluate_flow(node, T, z + dz, c) - evaluate_flow(node, T, z - dz, c))[0] / (2 * h)
        want = -0.5 * np.sum(z * z) - 0.5 * D * np.log(2 * np.pi) - np.log(abs(np.linalg.det(J)))
        got = evaluate_flow(lp_node, T, x, c)[0, 0]
        assert abs(got - want) < 1e-5, (got, want)


def bad(edit):
    node, T = flow()
    node = copy.deepcopy(node)
    T = dict(T)
    edit(node["transforms"], T)
    return problems(node, T)


@pytest.mark.parametrize("edit, expect", [
    (lambda ts, T: T.__setitem__("lu/upper", T["lu/upper"] * np.diag([1.0, 0.0, 1.0]) + np.triu(T["lu/upper"], 1)),
     "transforms[1].upper: tensor 'lu/upper': non-invertible LU: diagonal entry 1 = 0.0"),
    (lambda ts, T: T.__setitem__("lu/upper", T["lu/upper"] - 2 * np.diag(np.diag(T["lu/upper"]))),
     "non-invertible LU: diagonal entry 0 = -"),
    (lambda ts, T: T.__setitem__("lu/upper", np.where(np.eye(D) > 0, np.nan, T["lu/upper"])),
     "non-invertible LU: diagonal entry 0 = nan"),
    (lambda ts, T: T.__setitem__("lu/lower", T["lu/lower"] + 0.5 * np.eye(D)),
     "transforms[1].lower: tensor 'lu/lower' [0, 0] = 1.5: L is not unit lower-triangular: a diagonal entry is not 1"),
    (lambda ts, T: T.__setitem__("lu/lower", T["lu/lower"] + np.triu(np.ones((D, D)), 1)),
     "[0, 1] = 1.0: L is not unit lower-triangular: an entry above the diagonal is not 0"),
    (lambda ts, T: T.__setitem__("lu/upper", T["lu/upper"] + np.tril(np.ones((D, D)), -1)),
     "U is not upper-triangular (3 nonzero entries below the diagonal)"),
    (lambda ts, T: T.__setitem__("lu/upper", np.eye(D + 1)), "transforms[1].upper: tensor 'lu/upper' has shape [4, 4], expected [3, 3]"),
    (lambda ts, T: T.__setitem__("lu/bias", np.zeros(2)), "tensor 'lu/bias' has shape [2], expected [3]"),
    (lambda ts, T: ts[1].pop("upper"), "field 'upper' must name a tensor"),
    (lambda ts, T: ts[2]["scale"].update(eps=0.0), "sigmoid needs factor >= 0 and eps > 0"),
    (lambda ts, T: ts[3]["scale"].update(min=0.0), "atan needs factor > 0 and 0 < min <= max"),
    (lambda ts, T: ts[4]["scale"].update(max=-1.0), "softplus needs eps > 0 and min <= max with max > 0"),
    (lambda ts, T: ts[4]["scale"].update(kind="tanh"), "\"kind\" is one of ['softplus', 'soft_clip_exp', 'sigmoid', 'atan']"),
    (lambda ts, T: ts[2]["shift_clamp"].pop("inverse"), "transforms[2].shift_clamp: must be"),
    (lambda ts, T: ts[3].update(shift_offset="x"), "\"shift_offset\" must be a finite number"),
])
def test_bad_inputs_are_named(edit, expect):
    p = bad(edit)
    assert any(expect in x for x in p), p

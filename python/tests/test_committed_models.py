"""The committed models (models/*.json + .safetensors) against their reference fixtures
(tests/fixtures/<name>.safetensors, produced by Keras / PyTorch / scikit-learn)."""
import json
import os
import re

import numpy as np
import pytest

from flashc_export import st
from flashc_export.reference import evaluate
from flashc_export.validate import ACTIVATIONS, OPS, validate_files

from helpers import FIXTURES, MODELS, ROOT, assert_close, load_spec, model_names

EXPECTED = {
    # name: (n_inputs, n_noise, n_outputs)
    "tracking_acceptance": (12, 0, 1),
    "tracking_resolution": (12, 128, 9),
    "pid_gan": (4, 64, 8),
    "zoo_keras": (10, 0, 13),
    "zoo_keras_f16": (8, 0, 4),
    "zoo_torch": (10, 0, 10),
    "zoo_torch_bf16": (8, 4, 4),
    "zoo_preproc_forward": (8, 0, 8),
    "zoo_preproc_inverse": (8, 0, 8),
    # the demo models of the simulator pipelines (models/toy_detector.py)
    "lamarr_acceptance": (12, 0, 1),
    "lamarr_efficiency": (12, 0, 4),
    "lamarr_resolution": (15, 32, 9),
    "lamarr_covariance": (18, 32, 15),
    "lamarr_ismuon": (8, 0, 1),
    "lamarr_rich": (8, 16, 4),
    "lamarr_muon": (8, 16, 2),
    "lamarr_gpid_muon": (14, 16, 8),
    "lamarr_gpid_nomuon": (12, 16, 8),
    "lamarr_photon_efficiency": (5, 0, 1),
    "lamarr_photon_resolution": (5, 16, 6),
    "flashsim_muon_efficiency": (4, 0, 1),
    "flashsim_muon_flow": (9, 0, 4),
    "flashsim_electron_efficiency": (6, 0, 1),
    "flashsim_electron_flow": (11, 0, 4),
    "flashsim_muon_targets": (4, 0, 4),
    "flashsim_electron_targets": (4, 0, 4),
    # the flow-matching vector fields (models/train_cfm_models.py): inputs x[16], context[12], t[1]
    "cfm_resnet": (29, 0, 16),
    "cfm_mlp": (29, 0, 16),
    # normalizing flows (models/train_flow_models.py)
    "nflows_maf": (12, 16, 16),
    "nflows_maf_log_prob": (28, 0, 1),
    "nflows_maf20": (12, 16, 16),
    "nflows_maf20_log_prob": (28, 0, 1),
    "zuko_maf": (12, 16, 16),
    "zuko_maf_log_prob": (28, 0, 1),
    "nflows_lu_maf": (12, 16, 16),
    "nflows_lu_maf_log_prob": (28, 0, 1),
    "nflows_rqs": (12, 16, 16),
    "nflows_rqs_log_prob": (28, 0, 1),
    "zuko_nsf": (12, 16, 16),
    "zuko_nsf_log_prob": (28, 0, 1),
    "nflows_rqs_coupling": (12, 16, 16),
    "nflows_rqs_coupling_log_prob": (28, 0, 1),
    "nflows_affine_coupling": (12, 16, 16),
    "nflows_affine_coupling_log_prob": (28, 0, 1),
}
# Models reading another model's weights file (a flow's sampling and log-density models share one).
WEIGHTS = {"nflows_maf_log_prob": "nflows_maf", "nflows_maf20_log_prob": "nflows_maf20", "zuko_maf_log_prob": "zuko_maf",
           "nflows_lu_maf_log_prob": "nflows_lu_maf", "nflows_rqs_log_prob": "nflows_rqs", "zuko_nsf_log_prob": "zuko_nsf",
           "nflows_rqs_coupling_log_prob": "nflows_rqs_coupling",
           "nflows_affine_coupling_log_prob": "nflows_affine_coupling"}


def test_model_list():
    assert model_names() == sorted(EXPECTED)
    fixtures = sorted(f[:-12] for f in os.listdir(FIXTURES) if f.endswith(".safetensors"))
    assert fixtures == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_valid(name):
    path = os.path.join(MODELS, name + ".json")
    assert validate_files(path) == []
    spec = load_spec(path)
    assert spec["name"] == name
    assert spec["weights"] == WEIGHTS.get(name, name) + ".safetensors"
    n_in, n_noise, n_out = EXPECTED[name]
    assert sum(len(i["columns"]) for i in spec["inputs"]) == n_in
    assert (spec["noise"]["dim"] if "noise" in spec else 0) == n_noise
    assert sum(len(o["columns"]) for o in spec["outputs"]) == n_out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_matches_fixture(name):
    n_in, n_noise, n_out = EXPECTED[name]
    fix = st.load(os.path.join(FIXTURES, name + ".safetensors"))
    assert fix["inputs"].dtype == np.float32 and fix["inputs"].shape == (256, n_in)
    if n_noise:
        assert fix["noise"].dtype == np.float32 and fix["noise"].shape == (256, n_noise)
    else:
        assert "noise" not in fix
    assert fix["outputs"].shape == (256, n_out)
    out = evaluate(os.path.join(MODELS, name + ".json"), fix["inputs"], fix.get("noise"))
    # f32 weights/parameters and f32 framework arithmetic; inverse quantile transforms amplify the
    # network's rounding on steep (integer-valued) columns, hence the relative term
    assert_close(out, fix["outputs"], atol=1e-5, rtol=5e-5, what=name)


def test_weight_dtypes():
    assert set(st.dtypes(os.path.join(MODELS, "zoo_keras_f16.safetensors")).values()) == {"F16"}
    assert set(st.dtypes(os.path.join(MODELS, "zoo_torch_bf16.safetensors")).values()) == {"BF16"}
    assert set(st.dtypes(os.path.join(MODELS, "tracking_acceptance.safetensors")).values()) == {"F32"}


def test_safetensors_library_reads_our_files():
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    for name in ("tracking_acceptance", "zoo_keras_f16"):
        ours = st.load(os.path.join(MODELS, name + ".safetensors"))
        theirs = safetensors_numpy.load_file(os.path.join(MODELS, name + ".safetensors"))
        assert sorted(ours) == sorted(theirs)
        for k in ours:
            np.testing.assert_array_equal(ours[k], theirs[k].astype(np.float32))


def _spec_doc_names():
    with open(os.path.join(ROOT, "docs", "spec.md")) as f:
        doc = f.read()
    doc = doc[doc.index("## Nodes"):doc.index("## Weights")]
    ops = set(re.findall(r"^\| `([a-z_]+)` \| ", doc, flags=re.M))
    kinds_section = doc[doc.index("Activation objects"):doc.index("### Pre- and post-processing")]
    kinds = set(re.findall(r"^\| `([a-z_]+)` \| ", kinds_section, flags=re.M))
    kinds.discard("kind")  # the table header
    ops.discard("kind")
    return ops - kinds, kinds


def test_spec_doc_and_validator_agree():
    ops, kinds = _spec_doc_names()
    assert ops == set(OPS), f"docs/spec.md ops {sorted(ops)} vs validator {sorted(OPS)}"
    assert kinds == set(ACTIVATIONS)


def test_every_op_and_parameter_is_exercised():
    """Every op, activation kind, direction, output distribution, dtype and noise distribution of
    docs/spec.md appears in at least one committed model."""
    ops, kinds = set(), set()
    seen = set()
    for name in model_names():
        spec = load_spec(os.path.join(MODELS, name + ".json"))
        if "noise" in spec:
            seen.add(("noise", spec["noise"]["distribution"]))
        for n in spec["graph"]:
            ops.add(n["op"])
            if "direction" in n:
                seen.add((n["op"], n["direction"]))
                seen.add(("columns" in n, n["op"]))
            if n["op"] == "quantile":
                seen.add(("quantile", n["output_distribution"], n["direction"]))
            if n["op"] == "dense":
                seen.add(("dense_bias", "bias" in n))
            if n["op"] == "layernorm":
                seen.add(("layernorm_affine", "gamma" in n))
            a = n.get("activation")
            if a:
                kinds.add(a["kind"])
                if a["kind"] == "gelu":
                    seen.add(("gelu", a["approximate"]))
                if a["kind"] == "softplus":
                    seen.add(("softplus_threshold", a["threshold"] is None))
    doc_ops, doc_kinds = _spec_doc_names()
    assert ops == doc_ops
    assert kinds | {"linear"} == doc_kinds
    for op in ("standard_scaler", "min_max", "quantile", "logit", "decorrelate"):
        assert (op, "forward") in seen and (op, "inverse") in seen, op
    for d in ("normal", "uniform"):
        assert ("noise", d) in seen
        assert ("quantile", d, "forward") in seen and ("quantile", d, "inverse") in seen
    for s in [("gelu", "none"), ("gelu", "tanh"), ("softplus_threshold", True), ("softplus_threshold", False),
              ("dense_bias", True), ("dense_bias", False), ("layernorm_affine", True), ("layernorm_affine", False)]:
        assert s in seen, s


def test_fixture_edge_rows_hit_quantile_ends():
    """The first fixture rows sit at and beyond the quantile range ends (clipping is tested)."""
    spec = load_spec(os.path.join(MODELS, "tracking_acceptance.json"))
    w = st.load(os.path.join(MODELS, spec["weights"]))
    q = [n for n in spec["graph"] if n["op"] == "quantile"][0]
    Q = w[q["quantiles"]]
    x = st.load(os.path.join(FIXTURES, "tracking_acceptance.safetensors"))["inputs"]
    cols = q["columns"]
    assert np.all(x[2, cols] < Q[0]) and np.all(x[3, cols] > Q[-1])
    assert np.allclose(x[0, cols], Q[0], rtol=1e-6, atol=1e-6) and np.allclose(x[1, cols], Q[-1], rtol=1e-6, atol=1e-6)

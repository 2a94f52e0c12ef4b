"""nflows and zuko exporters against the libraries themselves (need torch, nflows 0.14, zuko; not run in CI)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nflows")
zuko = pytest.importorskip("zuko")
import torch.nn.functional as F  # noqa: E402

from flashc_export import ExportError, st  # noqa: E402
from flashc_export import nflows as fxn  # noqa: E402
from flashc_export import zuko as fxz  # noqa: E402
from flashc_export.validate import validate_spec  # noqa: E402

from helpers import assert_close, eval_exported  # noqa: E402

pytestmark = pytest.mark.framework
D, C, N = 5, 3, 64


def data():
    r = np.random.default_rng(1)
    return (np.float32(r.normal(size=(N, C))), np.float32(r.normal(size=(N, D))), np.float32(r.normal(size=(N, D))))


def nflows_flow(blocks="residual", bn=True):
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.normalization import BatchNorm
    from nflows.transforms.permutations import RandomPermutation, ReversePermutation

    torch.manual_seed(0)
    ts = [MaskedAffineAutoregressiveTransform(D, 12, context_features=C, num_blocks=2, use_residual_blocks=blocks == "residual",
                                              use_batch_norm=bn, activation=F.tanh),
          BatchNorm(D), RandomPermutation(D),
          CompositeTransform([MaskedAffineAutoregressiveTransform(D, 9, context_features=C, num_blocks=1), ReversePermutation(D)])]
    flow = Flow(CompositeTransform(ts), StandardNormal([D]))
    # Non-trivial batch-norm statistics and weights.
    flow.train()
    c, x, _ = data()
    for _ in range(3):
        flow.log_prob(torch.tensor(x * 1.5 + 0.3), torch.tensor(c))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow.eval()


@pytest.mark.parametrize("blocks,bn", [("residual", True), ("residual", False), ("feedforward", True)])
def test_nflows_sample_and_log_prob(tmp_path, blocks, bn):
    flow = nflows_flow(blocks, bn)
    c, x, z = data()
    specs = fxn.export(str(tmp_path / "f"), "f", flow, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])
    assert [s["name"] for s in specs] == ["f", "f_log_prob"]
    with torch.no_grad():
        want_x = flow._transform.inverse(torch.tensor(z), torch.tensor(c))[0].numpy()
        want_lp = flow.log_prob(torch.tensor(x), torch.tensor(c)).numpy()[:, None]
    assert_close(eval_exported(str(tmp_path / "f"), c, z), want_x, atol=2e-5, rtol=2e-5, what="samples")
    assert_close(eval_exported(str(tmp_path / "f_log_prob"), np.concatenate([x, c], axis=1)), want_lp, atol=5e-5, rtol=1e-5, what="log_prob")
    dtypes = st.dtypes(str(tmp_path / "f.safetensors"))
    assert {v for k, v in dtypes.items() if k.endswith(("degrees", "permutation"))} == {"I64"}


def test_zuko_sample_and_log_prob(tmp_path):
    torch.manual_seed(0)
    flow = zuko.flows.MAF(D, C, transforms=3, hidden_features=(16, 12))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    c, x, z = data()
    fxz.export(str(tmp_path / "g"), "g", flow, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])
    with torch.no_grad():
        want_x = flow(torch.tensor(c)).transform.inv(torch.tensor(z)).numpy()
        want_lp = flow(torch.tensor(c)).log_prob(torch.tensor(x)).numpy()[:, None]
    assert_close(eval_exported(str(tmp_path / "g"), c, z), want_x, atol=2e-5, rtol=2e-5, what="samples")
    assert_close(eval_exported(str(tmp_path / "g_log_prob"), np.concatenate([x, c], axis=1)), want_lp, atol=5e-5, rtol=1e-5, what="log_prob")


@pytest.mark.parametrize("bound", [1.0, 3.0])
def test_nflows_rqs_maf(tmp_path, bound):
    """Rational-quadratic spline MAF with linear tails; the data reach beyond the tail bound."""
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedPiecewiseRationalQuadraticAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.permutations import ReversePermutation

    torch.manual_seed(5)
    ts = [MaskedPiecewiseRationalQuadraticAutoregressiveTransform(D, 12, context_features=C, num_bins=5, tails="linear",
                                                                  tail_bound=bound, num_blocks=1, use_batch_norm=True),
          ReversePermutation(D),
          MaskedPiecewiseRationalQuadraticAutoregressiveTransform(D, 10, context_features=C, num_bins=3, tails="linear",
                                                                  tail_bound=bound, min_bin_width=0.01, min_derivative=0.05)]
    flow = Flow(CompositeTransform(ts), StandardNormal([D]))
    flow.train()
    c, x, z = data()
    flow.log_prob(torch.tensor(x), torch.tensor(c))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    flow.eval()
    spec = fxn.export(str(tmp_path / "f"), "f", flow, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])[0]
    sp = [t["spline"] for t in spec["graph"][0]["transforms"] if t["kind"] == "rqs_autoregressive"]
    assert [s["bins"] for s in sp] == [5, 3] and sp[1]["min_bin_width"] == 0.01 and sp[0]["divisor"] == 1.0
    flow64 = flow.double()
    with torch.no_grad():
        want_x = flow64._transform.inverse(torch.tensor(z, dtype=torch.float64), torch.tensor(c, dtype=torch.float64))[0].numpy()
        want_lp = flow64.log_prob(torch.tensor(x, dtype=torch.float64), torch.tensor(c, dtype=torch.float64)).numpy()[:, None]
    assert_close(eval_exported(str(tmp_path / "f"), c, z), want_x, atol=1e-6, rtol=1e-6, what="samples")
    assert_close(eval_exported(str(tmp_path / "f_log_prob"), np.concatenate([x, c], axis=1)), want_lp, atol=1e-6, rtol=1e-6,
                 what="log_prob")


def test_zuko_nsf(tmp_path):
    torch.manual_seed(6)
    flow = zuko.flows.NSF(D, C, bins=6, transforms=2, hidden_features=(16, 12))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    c, x, z = data()
    spec = fxz.export(str(tmp_path / "g"), "g", flow, columns=[f"x{i}" for i in range(D)],
                      context_columns=[f"c{i}" for i in range(C)])[0]
    assert {t["kind"] for t in spec["graph"][0]["transforms"]} == {"rqs_autoregressive"}
    flow64 = flow.double()
    c64, x64, z64 = (torch.tensor(a, dtype=torch.float64) for a in (c, x, 3 * z))  # 3z: some values beyond the bound 5
    with torch.no_grad():
        want_x = flow64(c64).transform.inv(z64).numpy()
        want_lp = flow64(c64).log_prob(x64).numpy()[:, None]
    assert_close(eval_exported(str(tmp_path / "g"), c, 3 * z), want_x, atol=1e-6, rtol=1e-6, what="samples")
    assert_close(eval_exported(str(tmp_path / "g_log_prob"), np.concatenate([x, c], axis=1)), want_lp, atol=1e-6, rtol=1e-6,
                 what="log_prob")


@pytest.mark.parametrize("using_cache", [False, True])
def test_nflows_lu_linear(tmp_path, using_cache):
    """nbd's pattern: CompositeTransform([RandomPermutation, LULinear]) between affine MAF steps."""
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.lu import LULinear
    from nflows.transforms.permutations import RandomPermutation

    torch.manual_seed(3)
    ts = [CompositeTransform([RandomPermutation(D), LULinear(D, using_cache=using_cache, identity_init=False)]),
          MaskedAffineAutoregressiveTransform(D, 12, context_features=C, num_blocks=1),
          CompositeTransform([RandomPermutation(D), LULinear(D, using_cache=using_cache, identity_init=False)])]
    flow = Flow(CompositeTransform(ts), StandardNormal([D]))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn_like(p))
    flow.eval()
    c, x, z = data()
    spec = fxn.export(str(tmp_path / "f"), "f", flow, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])[0]
    kinds = [t["kind"] for t in spec["graph"][0]["transforms"]]
    assert kinds == ["permutation", "lu_linear", "affine_autoregressive", "permutation", "lu_linear"]
    T = st.load(str(tmp_path / "f.safetensors"))
    lower, upper = ts[0]._transforms[1]._create_lower_upper()
    lu = spec["graph"][0]["transforms"][1]
    np.testing.assert_array_equal(T[lu["lower"]], lower.detach().numpy())
    np.testing.assert_array_equal(T[lu["upper"]], upper.detach().numpy())
    with torch.no_grad():
        want_x = flow._transform.inverse(torch.tensor(z), torch.tensor(c))[0].numpy()
        want_lp = flow.log_prob(torch.tensor(x), torch.tensor(c)).numpy()[:, None]
    assert_close(eval_exported(str(tmp_path / "f"), c, z), want_x, atol=2e-5, rtol=2e-5, what="samples")
    assert_close(eval_exported(str(tmp_path / "f_log_prob"), np.concatenate([x, c], axis=1)), want_lp, atol=5e-5, rtol=1e-5, what="log_prob")


def test_unsupported_modules_are_named(tmp_path):
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.nonlinearities import Tanh
    from nflows.transforms.permutations import ReversePermutation

    flow = Flow(CompositeTransform([ReversePermutation(D), Tanh()]), StandardNormal([D])).eval()
    with pytest.raises(ExportError, match=r"transforms\[1\] \(Tanh\).*not supported"):
        fxn.export(str(tmp_path / "h"), "h", flow, columns=[f"x{i}" for i in range(D)], context_columns=["c"])
    flow.train()
    with pytest.raises(ExportError, match="training mode"):
        fxn.export(str(tmp_path / "h"), "h", flow, columns=[f"x{i}" for i in range(D)], context_columns=["c"])
    coupling = zuko.flows.NSF(D, C, transforms=1, passes=2)
    with pytest.raises(ExportError, match="fully autoregressive"):
        fxz.export(str(tmp_path / "k"), "k", coupling, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedPiecewiseRationalQuadraticAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform

    no_tails = Flow(CompositeTransform([MaskedPiecewiseRationalQuadraticAutoregressiveTransform(D, 8, context_features=C, num_bins=4)]),
                    StandardNormal([D])).eval()
    with pytest.raises(ExportError, match="tails=None is not supported"):
        fxn.export(str(tmp_path / "s"), "s", no_tails, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])


def test_validator_flags_flow_problems(tmp_path):
    flow = nflows_flow()
    spec = fxn.export(str(tmp_path / "f"), "f", flow, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])[0]
    shapes = {k: list(v.shape) for k, v in st.load(str(tmp_path / "f.safetensors")).items()}
    assert validate_spec(spec, shapes) == []
    spec["graph"][0]["transforms"][0]["made"]["final"]["weight"] = "nope"
    spec["graph"][0]["mode"] = "backwards"
    problems = validate_spec(spec, shapes)
    assert any("'nope' is missing" in p for p in problems) and any('"mode"' in p for p in problems), problems


def nflows_coupling_flow(kind, bn=True, seed=7):
    """Coupling layers (a non-alternating mask included) with ResidualNet conditioners."""
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform
    from nflows.transforms.permutations import ReversePermutation

    torch.manual_seed(seed)

    def net(hidden, blocks):
        return lambda n_in, n_out: ResidualNet(n_in, n_out, hidden_features=hidden, context_features=C,
                                               num_blocks=blocks, use_batch_norm=bn, activation=F.tanh)

    def layer(mask, hidden, blocks=2):
        if kind == "affine":
            return AffineCouplingTransform(mask, net(hidden, blocks))
        return PiecewiseRationalQuadraticCouplingTransform(mask, net(hidden, blocks), num_bins=4, tails="linear",
                                                           tail_bound=2.0)

    ts = [layer([1, 0, 1, 0, 1], 12), ReversePermutation(D), layer([0, 0, 1, 1, 0], 9, 1), layer([-1, 1, 0, 0, 0], 10, 0)]
    flow = Flow(CompositeTransform(ts), StandardNormal([D]))
    flow.train()
    c, x, _ = data()
    for _ in range(2):
        flow.log_prob(torch.tensor(x * 1.3 + 0.2), torch.tensor(c))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return flow.eval()


@pytest.mark.parametrize("kind,bn", [("affine", True), ("affine", False), ("rqs", True), ("rqs", False)])
def test_nflows_coupling(tmp_path, kind, bn):
    flow = nflows_coupling_flow(kind, bn)
    c, x, z = data()
    spec = fxn.export(str(tmp_path / "f"), "f", flow, columns=[f"x{i}" for i in range(D)],
                      context_columns=[f"c{i}" for i in range(C)])[0]
    ts = spec["graph"][0]["transforms"]
    assert [t["kind"] for t in ts] == [f"{kind}_coupling", "permutation", f"{kind}_coupling", f"{kind}_coupling"]
    if kind == "rqs":
        assert ts[0]["spline"]["divisor"] == np.sqrt(12.0)
    assert [len(t["net"]["blocks"]) for t in ts if "net" in t] == [2, 1, 0]
    assert ("batchnorm" in ts[0]["net"]["blocks"][0]) == bn
    assert st.dtypes(str(tmp_path / "f.safetensors"))[ts[0]["identity"]] == "I64"
    flow64 = flow.double()
    c64, x64, z64 = (torch.tensor(a, dtype=torch.float64) for a in (c, 2 * x, 2 * z))  # 2x: some beyond the bound 2
    with torch.no_grad():
        want_x = flow64._transform.inverse(z64, c64)[0].numpy()
        want_lp = flow64.log_prob(x64, c64).numpy()[:, None]
    assert_close(eval_exported(str(tmp_path / "f"), c, 2 * z), want_x, atol=1e-6, rtol=1e-6, what="samples")
    assert_close(eval_exported(str(tmp_path / "f_log_prob"), np.concatenate([2 * x, c], axis=1)), want_lp, atol=1e-6,
                 rtol=1e-6, what="log_prob")


def test_nflows_coupling_refused(tmp_path):
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform

    make = lambda n_in, n_out: ResidualNet(n_in, n_out, 8, context_features=C)  # noqa: E731
    t = PiecewiseRationalQuadraticCouplingTransform([1, 0, 1, 0, 1], make, num_bins=3, tails=None)
    flow = Flow(t, StandardNormal([D])).eval()
    with pytest.raises(ExportError, match="tails=None"):
        fxn.export(str(tmp_path / "f"), "f", flow, columns=[f"x{i}" for i in range(D)], context_columns=[f"c{i}" for i in range(C)])


def test_coupling_validation_names_path():
    """A coupling layer whose columns are not a partition, and whose final layer has the wrong
    parameter count, is reported with its path."""
    from flashc_export.flow import validate_flow

    node = {"input": "z", "context": "c", "mode": "sample", "base": "standard_normal",
            "transforms": [{"kind": "rqs_coupling", "identity": "id", "transform": "tr",
                            "spline": {"style": "nflows", "bins": 4, "bound": 2.0, "min_bin_width": 1e-3,
                                       "min_bin_height": 1e-3, "min_derivative": 1e-3},
                            "net": {"activation": {"kind": "relu"}, "initial": {"weight": "w0", "bias": "b0"},
                                    "blocks": [], "final": {"weight": "wf", "bias": "bf"}}}]}
    shapes = {"id": [2], "tr": [3], "w0": [8, 2 + C], "b0": [8], "wf": [3 * 12, 8], "bf": [3 * 12]}
    values = {"id": np.array([0, 1]), "tr": np.array([1, 2, 3])}
    problems, _ = validate_flow(node, {"z": D, "c": C}, shapes, "node", values)
    assert any("transforms[0]" in p and "not a partition" in p for p in problems), problems
    assert any("transforms[0].net.final" in p and "[33, 8]" in p for p in problems), problems

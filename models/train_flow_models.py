#!/usr/bin/env python3
"""Train, export and make reference fixtures for the normalizing-flow test models.

    python models/train_flow_models.py [NAME...]   # from the repository root; CPU only, a few minutes

Needs torch, nflows 0.14 and zuko (`pip install nflows==0.14 zuko`; zuko 1.6.0 was used). Every model is conditional, D = 16
targets given C = 12 context variables of a toy "jet" dataset defined below, trained briefly (fixed
seeds, CPU, deterministic), then exported with `flashc_export.nflows`:

  nflows_maf       6 × [MaskedAffineAutoregressiveTransform (residual MADE, 2 blocks, hidden 64,
                   batch norm, ReLU), BatchNorm on steps 0, 2, 4, Random/ReversePermutation]
  nflows_maf20     20 × [MaskedAffineAutoregressiveTransform (residual MADE, 2 blocks, hidden 64,
                   ReLU), BatchNorm, RandomPermutation]: the benchmark shape (FlowSim-like D and C)

  nflows_lu_maf    4 × [CompositeTransform([RandomPermutation, LULinear]), MaskedAffineAutoregressiveTransform
                   (residual MADE, 2 blocks, hidden 48, ReLU)]: the LU-linear transform (nbd's
                   "random-permutation" step) between affine MAF steps

  zuko_maf         zuko.flows.MAF(16, 12, transforms=5, hidden_features=(64, 64)): MaskedMLP
                   hyper-networks on cat(x, c), orders alternating ascending/descending, soft-clipped
                   affine scale
  nflows_rqs       4 × [MaskedPiecewiseRationalQuadraticAutoregressiveTransform (8 bins, linear tails,
                   tail bound 3, residual MADE, 2 blocks, hidden 64, batch norm, ReLU),
                   RandomPermutation, LULinear]
  zuko_nsf         zuko.flows.NSF(16, 12, bins=8, transforms=3, hidden_features=(64, 64)): splines on
                   [-5, 5], soft-clipped logits
  nflows_rqs_coupling
                   4 × [PiecewiseRationalQuadraticCouplingTransform (alternating mask, 8 bins, linear
                   tails, tail bound 3, ResidualNet hidden 64, 2 blocks, batch norm, ReLU),
                   LULinear (steps 0, 2) / RandomPermutation (steps 1, 3)]
  nflows_affine_coupling
                   3 × [AffineCouplingTransform (even columns), AffineCouplingTransform (odd
                   columns), RandomPermutation] (ResidualNet hidden 48, 2 blocks, ReLU)

and for each `<name>_log_prob`, the log density of the same flow (same weights file).

Fixtures (tests/fixtures/<name>.safetensors, 256 rows):
  <name>           inputs = context rows of the toy dataset, noise = fixed N(0, 1) base noise z,
                   outputs = flow._transform.inverse(z, context) (nflows) or flow(context).transform.inv(z)
                   (zuko), float32, eval, no_grad
  <name>_log_prob  inputs = [x, context] with x from the toy dataset, outputs = flow.log_prob(x, context) (zuko: flow(context).log_prob(x))

All seeds are fixed; running it again writes identical files (torch.use_deterministic_algorithms).
"""
from __future__ import annotations

import copy
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from flashc_export import nflows as fxn  # noqa: E402
from flashc_export import zuko as fxz  # noqa: E402
from flashc_export import st  # noqa: E402
from flashc_export.reference import evaluate  # noqa: E402

MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
N_FIX = 256
SEED = 20261201
D, C = 16, 12
TARGETS = [f"x{i}" for i in range(D)]
CONTEXT = ["gen_log_pt", "gen_eta", "gen_phi", "gen_log_m", "u0", "u1", "u2", "u3", "is_b", "is_c", "n_tracks", "pileup"]


# ----------------------------------------------------------------------------- toy dataset
class Toy:
    """A fixed random conditional density p(x | c): nonlinear means, context-dependent widths,
    correlations, a bimodal part driven by a flag and heavy tails."""

    def __init__(self, seed: int):
        r = np.random.default_rng(seed)
        self.B = r.normal(0, 0.6, (8, C))
        self.A = r.normal(0, 0.7, (D, 8))
        self.S = r.normal(0, 0.5, (D, C))
        L = np.tril(r.normal(0, 0.35, (D, D)), -1) + np.eye(D)
        self.L = L / np.linalg.norm(L, axis=1, keepdims=True)

    def context(self, r, n):
        c = np.empty((n, C))
        c[:, 0:4] = r.normal(0, 1, (n, 4))
        c[:, 4:8] = r.uniform(-1, 1, (n, 4))
        c[:, 8] = r.random(n) < 0.3
        c[:, 9] = r.random(n) < 0.2
        c[:, 10] = r.poisson(5, n) / 5.0 - 1.0
        c[:, 11] = r.uniform(0, 2, n)
        return c

    def sample(self, r, c):
        n = c.shape[0]
        mean = np.tanh(c @ self.B.T) @ self.A.T
        scale = 0.3 + 0.6 / (1 + np.exp(-(c @ self.S.T)))
        e = r.normal(0, 1, (n, D)) @ self.L.T
        x = mean + scale * e
        x[:, 0:4] += 1.2 * c[:, 8:9] * np.sign(e[:, 0:4])  # bimodal for flagged rows
        x[:, 4:6] += 0.15 * e[:, 4:6] ** 3  # heavy tails
        return x


# ----------------------------------------------------------------------------- models
def maf6():
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.normalization import BatchNorm
    from nflows.transforms.permutations import RandomPermutation, ReversePermutation

    ts = []
    for i in range(6):
        ts.append(MaskedAffineAutoregressiveTransform(features=D, hidden_features=64, context_features=C, num_blocks=2,
                                                      use_residual_blocks=True, use_batch_norm=True, activation=F.relu))
        if i % 2 == 0:
            ts.append(BatchNorm(D))
        ts.append(RandomPermutation(D) if i % 2 == 0 else ReversePermutation(D))
    return Flow(CompositeTransform(ts), StandardNormal([D]))


def maf20():
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.normalization import BatchNorm
    from nflows.transforms.permutations import RandomPermutation

    ts = []
    for _ in range(20):
        ts.append(MaskedAffineAutoregressiveTransform(features=D, hidden_features=64, context_features=C, num_blocks=2,
                                                      use_residual_blocks=True, use_batch_norm=False, activation=F.relu))
        ts.append(BatchNorm(D))
        ts.append(RandomPermutation(D))
    return Flow(CompositeTransform(ts), StandardNormal([D]))


def lu_maf():
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.lu import LULinear
    from nflows.transforms.permutations import RandomPermutation

    ts = []
    for _ in range(4):
        ts.append(CompositeTransform([RandomPermutation(D), LULinear(D, identity_init=True)]))
        ts.append(MaskedAffineAutoregressiveTransform(features=D, hidden_features=48, context_features=C, num_blocks=2,
                                                      use_residual_blocks=True, use_batch_norm=False, activation=F.relu))
    return Flow(CompositeTransform(ts), StandardNormal([D]))


def nflows_rqs():
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedPiecewiseRationalQuadraticAutoregressiveTransform
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.lu import LULinear
    from nflows.transforms.permutations import RandomPermutation

    ts = []
    for _ in range(4):
        ts.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
            features=D, hidden_features=64, context_features=C, num_bins=8, tails="linear", tail_bound=3.0,
            num_blocks=2, use_residual_blocks=True, use_batch_norm=True, activation=F.relu))
        ts.append(RandomPermutation(D))
        ts.append(LULinear(D, identity_init=True))
    return Flow(CompositeTransform(ts), StandardNormal([D]))


def _residual_net(hidden, batch_norm):
    from nflows.nn.nets import ResidualNet

    return lambda n_in, n_out: ResidualNet(n_in, n_out, hidden_features=hidden, context_features=C, num_blocks=2,
                                           use_batch_norm=batch_norm, activation=F.relu)


def rqs_coupling():
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
    from nflows.transforms.lu import LULinear
    from nflows.transforms.permutations import RandomPermutation
    from nflows.utils import create_alternating_binary_mask

    ts = []
    for i in range(4):
        ts.append(PiecewiseRationalQuadraticCouplingTransform(
            create_alternating_binary_mask(D, even=i % 2 == 0), _residual_net(64, True), num_bins=8, tails="linear",
            tail_bound=3.0))
        ts.append(LULinear(D, identity_init=True) if i % 2 == 0 else RandomPermutation(D))
    return Flow(CompositeTransform(ts), StandardNormal([D]))


def affine_coupling():
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import AffineCouplingTransform
    from nflows.transforms.permutations import RandomPermutation
    from nflows.utils import create_alternating_binary_mask

    # Each pair of layers transforms every column once (a column never transformed would keep the
    # base noise as its sample).
    ts = []
    for _ in range(3):
        for even in (True, False):
            ts.append(AffineCouplingTransform(create_alternating_binary_mask(D, even=even), _residual_net(48, False)))
        ts.append(RandomPermutation(D))
    return Flow(CompositeTransform(ts), StandardNormal([D]))


def zuko_nsf():
    import zuko

    return zuko.flows.NSF(D, C, bins=8, transforms=3, hidden_features=(64, 64))


def zuko_maf():
    import zuko

    return zuko.flows.MAF(D, C, transforms=5, hidden_features=(64, 64))


def is_zuko(flow):
    return type(flow).__module__.startswith("zuko")


def log_prob(flow, x, c):
    return flow(c).log_prob(x) if is_zuko(flow) else flow.log_prob(x, c)


def inverse(flow, z, c):
    return flow(c).transform.inv(z) if is_zuko(flow) else flow._transform.inverse(z, c)[0]


def train(flow, toy, steps, seed, lr=1e-3, batch=512):
    r = np.random.default_rng(seed)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    flow.train()
    t0 = time.time()
    for i in range(steps):
        c = toy.context(r, batch)
        x = toy.sample(r, c)
        loss = -log_prob(flow, torch.tensor(x, dtype=torch.float32), torch.tensor(c, dtype=torch.float32)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 1.0)
        opt.step()
        sched.step()
        if i % 200 == 0 or i == steps - 1:
            print(f"  step {i:5d}  nll {loss.item():8.4f}  ({time.time() - t0:.0f} s)", flush=True)
    flow.eval()
    return flow


def write_fixture(name, inputs, outputs, noise=None):
    t = {"inputs": (np.asarray(inputs, dtype=np.float32), "f32")}
    if noise is not None:
        t["noise"] = (np.asarray(noise, dtype=np.float32), "f32")
    t["outputs"] = (np.asarray(outputs, dtype=np.float32), "f32")
    st.save(os.path.join(FIXTURES, name + ".safetensors"), t,
            metadata={"model": name, "producer": "models/train_flow_models.py", "seed": str(SEED)})


def build(name, make, steps, seed, toy, what, lr=1e-3, spline=False):
    print(f"{name}: training {steps} steps", flush=True)
    torch.manual_seed(seed)
    flow = train(make(), toy, steps, seed, lr=lr)
    lib = "zuko" if is_zuko(flow) else "nflows"
    exporter = fxz if is_zuko(flow) else fxn
    exporter.export(os.path.join(MODELS, name), name, flow, columns=TARGETS, context_columns=CONTEXT,
                    description=f"{lib} {what} on a toy conditional density (D={D}, C={C}); "
                                "samples x = T^-1(z; context) from base noise z (models/train_flow_models.py)")
    r = np.random.default_rng(seed + 1)
    c = toy.context(r, N_FIX).astype(np.float32)
    x = toy.sample(r, c.astype(np.float64)).astype(np.float32)
    z = r.normal(0, 1, (N_FIX, D)).astype(np.float32)
    with torch.no_grad():
        samples = inverse(flow, torch.tensor(z), torch.tensor(c)).numpy()
        lp = log_prob(flow, torch.tensor(x), torch.tensor(c)).numpy()[:, None]
    if spline:
        # Splines are ill-conditioned in float32 in narrow bins (a knot's rounding error over a
        # bin width of ~1e-2), so the library's own float32 log density is up to ~2e-4 from its
        # exact value on a few rows. The fixtures of the spline models are the library evaluated
        # in float64 (the same weights, widened), the float32 figures are printed for the record.
        flow64 = copy.deepcopy(flow).double()
        with torch.no_grad():
            s64 = inverse(flow64, torch.tensor(z, dtype=torch.float64), torch.tensor(c, dtype=torch.float64)).numpy()
            l64 = log_prob(flow64, torch.tensor(x, dtype=torch.float64), torch.tensor(c, dtype=torch.float64)).numpy()[:, None]
        print(f"{name}: {lib} float32 vs float64: samples {np.max(np.abs(samples - s64) / np.maximum(1.0, np.abs(s64))):.2e} "
              f"(relative), log_prob {np.max(np.abs(lp - l64)):.2e} (absolute)")
        samples, lp = s64, l64
    write_fixture(name, c, samples, noise=z)
    write_fixture(name + "_log_prob", np.concatenate([x, c], axis=1), lp)
    # The float64 reference evaluator of the spec agrees with nflows.
    ref_s = evaluate(os.path.join(MODELS, name + ".json"), c.astype(np.float64), z.astype(np.float64))
    ref_l = evaluate(os.path.join(MODELS, name + "_log_prob.json"), np.concatenate([x, c], axis=1).astype(np.float64))
    es = np.max(np.abs(ref_s - samples) / np.maximum(1.0, np.abs(samples)))
    el = np.max(np.abs(ref_l - lp))
    print(f"{name}: reference vs {lib}: samples {es:.2e} (relative), log_prob {el:.2e} (absolute)")
    assert es < 1e-4 and el < 1e-4, name


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    toy = Toy(SEED)
    models = {
        "nflows_maf": lambda: build("nflows_maf", maf6, 1500, SEED + 10, toy, "affine MAF"),
        "nflows_maf20": lambda: build("nflows_maf20", maf20, 600, SEED + 20, toy, "affine MAF", lr=2e-4),
        "zuko_maf": lambda: build("zuko_maf", zuko_maf, 1000, SEED + 30, toy, "affine MAF"),
        "nflows_lu_maf": lambda: build("nflows_lu_maf", lu_maf, 800, SEED + 40, toy,
                                       "affine MAF with LU-linear transforms"),
        "nflows_rqs": lambda: build("nflows_rqs", nflows_rqs, 800, SEED + 40, toy, "rational-quadratic spline MAF",
                                    spline=True),
        "zuko_nsf": lambda: build("zuko_nsf", zuko_nsf, 800, SEED + 50, toy, "neural spline flow (NSF)", spline=True),
        "nflows_rqs_coupling": lambda: build("nflows_rqs_coupling", rqs_coupling, 800, SEED + 60, toy,
                                             "rational-quadratic spline coupling flow", spline=True),
        "nflows_affine_coupling": lambda: build("nflows_affine_coupling", affine_coupling, 800, SEED + 70, toy,
                                                "affine coupling flow (RealNVP)"),
    }
    only = sys.argv[1:] or list(models)
    for name in only:
        if name not in models:
            sys.exit(f"unknown model {name!r}; models: {', '.join(models)}")
        models[name]()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Train, export and make reference fixtures for the continuous-flow (flow-matching) models.

    /path/to/python models/train_cfm_models.py     # from the repository root; CPU only, about 4 minutes

Needs torch and torchdiffeq. Writes models/<name>.json + .safetensors, tests/fixtures/<name>.safetensors
(the vector field: inputs -> outputs, computed by PyTorch) and tests/fixtures/ode/<name>.safetensors
(torchdiffeq `odeint` of the vector field from fixed base noise with fixed context rows, for several
methods; see tests/fixtures/README.md). All seeds are fixed and PyTorch runs on one thread with
deterministic algorithms: running it again writes identical files.

The data is a toy conditional density with D = 16 targets and C = 12 context variables (9 correlated
continuous ones and 3 flags), shaped after FlashSim's jets: conditional means and widths that vary
non-linearly with the context, correlated noise, and four targets with a context-dependent bimodal
component. Targets and context are standardised with the training set's mean and std (the models
work in that space, as FlashSim's do).

Models (both integrate dx/dt = v(x, context, t) from t = 0, x ~ N(0, I), to t = 1):
  cfm_resnet   FlowSim's DenseResidualNet (arXiv:2402.13684, "CRT"): Linear(29 -> 32), six residual blocks
               of widths 32, 64, 128, 128, 64, 32 (GELU, Linear, GELU, Linear, gated by a GLU of
               Linear(cat(context, t))), Linear resizes between widths and to 16: 115,440 parameters.
               Spec: RK4 (torchdiffeq's, 3/8 rule), 5 steps.
  cfm_mlp      a plain MLP on cat(x, context, t): 3 x Linear 160 SiLU + Linear 16 (FlowSim's MergedMLP).
               Spec: dopri5, rtol = atol = 1e-5.

Training: conditional flow matching with the target-OT path of FlowSim's matcher,
x_t = t x1 + (1 - (1 - s) t) x0, u_t = x1 - (1 - s) x0, s = 1e-4, t ~ U(0, 1); Adam with cosine decay.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import flashc_export as fx  # noqa: E402
from flashc_export import st  # noqa: E402
from flashc_export.reference import evaluate  # noqa: E402

MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SEED = 20270415
D, C = 16, 12
X_COLS = [f"x{i}" for i in range(D)]
C_COLS = [f"c{i}" for i in range(C)]
V_COLS = [f"v{i}" for i in range(D)]
COLUMNS = {"x": X_COLS, "context": C_COLS, "t": ["t"]}
SIGMA = 1e-4
N_FIX = 256       # rows of the vector-field fixture
N_ODE = 128       # rows of the ODE fixture
ODE_STEPS = 5     # steps of every fixed-step method in the ODE fixture
ODE_TOL = 1e-5    # rtol = atol of dopri5 in the ODE fixture
FIXED_METHODS = ("euler", "midpoint", "rk4", "rk4_classic")
RESNET_HIDDEN = (32, 64, 128, 128, 64, 32)
MLP_HIDDEN = (160, 160, 160)


# ----------------------------------------------------------------------------- the toy density
def _constants():
    r = np.random.default_rng(SEED + 1)
    return dict(
        A=r.normal(size=(9, 9)) / 3.0 + np.eye(9),
        W0=r.normal(size=(C, 24)) / np.sqrt(C),
        W1=r.normal(size=(24, D)) * 0.8,
        V=r.normal(size=(C, D)) / np.sqrt(C),
        L=np.tril(r.normal(size=(D, D)) * 0.3) + np.eye(D),
        B=np.array([1.0, -0.5, 0.8, 0.3]),
    )


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def toy_data(rng, n):
    """(context [n, 12], targets [n, 16]), unstandardised."""
    k = _constants()
    g = rng.normal(size=(n, 9)) @ k["A"].T
    flags = (rng.random((n, 3)) < sigmoid(g[:, :3])).astype(np.float64)
    c = np.column_stack([g, flags])
    mean = np.tanh(c @ k["W0"]) @ k["W1"]
    scale = 0.2 + 0.6 * sigmoid(c @ k["V"])
    x = mean + scale * (rng.normal(size=(n, D)) @ k["L"].T)
    mode = np.where(rng.random(n) < sigmoid(2.0 * c[:, 0] + 2.0 * flags[:, 0] - 1.0), 1.5, -1.5)
    x[:, 12:16] += mode[:, None] * k["B"]
    return c, x


def f32(a):
    return np.asarray(a, dtype=np.float32)


# ----------------------------------------------------------------------------- the vector fields
def modules():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class GatedBlock(nn.Module):
        """h + GLU(cat(Linear(GELU(Linear(GELU(h)))), Linear(context')))."""

        def __init__(self, width, n_ctx):
            super().__init__()
            self.linear_layers = nn.ModuleList([nn.Linear(width, width), nn.Linear(width, width)])
            self.context_layer = nn.Linear(n_ctx, width)

        def forward(self, h, ctx):
            r = self.linear_layers[0](F.gelu(h))
            r = self.linear_layers[1](F.gelu(r))
            return h + F.glu(torch.cat((r, self.context_layer(ctx)), dim=1), dim=1)

    class DenseResidualNet(nn.Module):
        """FlowSim's vector field: raw t concatenated to the input and to the gates' context."""

        def __init__(self, dim=D, n_ctx=C, hidden=RESNET_HIDDEN):
            super().__init__()
            self.initial_layer = nn.Linear(dim + n_ctx + 1, hidden[0])
            self.blocks = nn.ModuleList([GatedBlock(w, n_ctx + 1) for w in hidden])
            self.resize_layers = nn.ModuleList(
                [nn.Linear(a, b) if a != b else nn.Identity() for a, b in zip(hidden[:-1], hidden[1:])]
                + [nn.Linear(hidden[-1], dim)])

        def forward(self, x, context, t):
            h = self.initial_layer(torch.cat((x, context, t), dim=1))
            ctx = torch.cat((context, t), dim=1)
            for block, resize in zip(self.blocks, self.resize_layers):
                h = resize(block(h, ctx))
            return h

    class MergedMLP(nn.Module):
        """A plain MLP on cat(x, context, t)."""

        def __init__(self, dim=D, n_ctx=C, hidden=MLP_HIDDEN):
            super().__init__()
            layers, k = [], dim + n_ctx + 1
            for w in hidden:
                layers += [nn.Linear(k, w), nn.SiLU()]
                k = w
            self.network = nn.Sequential(*layers, nn.Linear(k, dim))

        def forward(self, x, context, t):
            return self.network(torch.cat((x, context, t), dim=1))

    return {"cfm_resnet": DenseResidualNet, "cfm_mlp": MergedMLP}


def build(name):
    """A fresh (untrained) vector field of model `name`."""
    return modules()[name]()


def load_exported(net, path):
    """Loads the weights of an exported model (`models/<name>.safetensors`, kernels in x @ K
    layout) into `net`, built by `build`. Every Linear's tensors are `<module path with _>/kernel`
    and `/bias`."""
    import torch

    w = st.load(path)
    used = set()
    with torch.no_grad():
        for q, m in net.named_modules():
            if isinstance(m, torch.nn.Linear):
                base = q.replace(".", "_")
                m.weight.copy_(torch.tensor(w[base + "/kernel"].T.copy()))
                m.bias.copy_(torch.tensor(w[base + "/bias"]))
                used |= {base + "/kernel", base + "/bias"}
    if used != set(w):
        raise ValueError(f"{path}: tensors not loaded: {sorted(set(w) - used)}")
    return net.eval()


# ----------------------------------------------------------------------------- training and export
def torch_setup():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    return torch


def train(torch, name, c, x, n_steps, lr, seed):
    torch.manual_seed(SEED + seed)
    net = build(name)
    ct, xt = torch.tensor(f32(c)), torch.tensor(f32(x))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps, eta_min=1e-5)
    rng = np.random.default_rng(SEED + seed)
    gen = torch.Generator().manual_seed(SEED + seed)
    batch, run, t0 = 1024, 0.0, time.time()
    for i in range(n_steps):
        idx = torch.tensor(rng.integers(0, len(c), batch))
        x1, cb = xt[idx], ct[idx]
        x0 = torch.randn(batch, D, generator=gen)
        t = torch.rand(batch, 1, generator=gen)
        xs = t * x1 + (1 - (1 - SIGMA) * t) * x0
        u = x1 - (1 - SIGMA) * x0
        opt.zero_grad()
        loss = ((net(xs, cb, t) - u) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.99 * run + 0.01 * loss.item() if i else loss.item()
    n_par = sum(p.numel() for p in net.parameters())
    print(f"  {name}: {n_par} parameters, {n_steps} steps, loss {run:.4f} ({time.time() - t0:.0f} s)", flush=True)
    return net.eval()


def field(net, context):
    """torchdiffeq's func(t, x) for fixed context rows."""
    def f(t, x):
        return net(x, context, t.reshape(1, 1).expand(x.shape[0], 1).to(x.dtype))
    return f


def integrate(torch, net, context, z, method, tol=ODE_TOL):
    """x(1) of dx/dt = v(x, context, t), x(0) = z, with torchdiffeq, in the dtype of z; (x, nfe)."""
    from torchdiffeq import odeint
    from torchdiffeq._impl.rk_common import rk4_step_func

    count = [0]
    f = field(net, context)

    def counted(t, x):
        count[0] += 1
        return f(t, x)

    t01 = torch.tensor([0.0, 1.0], dtype=z.dtype)
    with torch.no_grad():
        if method == "dopri5":
            x = odeint(counted, z, t01, method="dopri5", rtol=tol, atol=tol)[-1]
        elif method == "rk4_classic":
            # torchdiffeq's classic RK4 step (odeint does not expose it), on odeint's grid.
            x, h = z, 1.0 / ODE_STEPS
            grid = torch.arange(0, ODE_STEPS + 1, dtype=z.dtype) * h
            grid[-1] = 1.0
            for a, b in zip(grid[:-1], grid[1:]):
                x = x + rk4_step_func(lambda tt, yy, perturb=None: counted(tt, yy), a, b - a, b, x)
        else:
            x = odeint(counted, z, t01, method=method, options={"step_size": 1.0 / ODE_STEPS})[-1]
    per_step = {"euler": 1, "midpoint": 2, "rk4": 4, "rk4_classic": 4}
    if method in per_step:
        assert count[0] == per_step[method] * ODE_STEPS, (method, count[0])
    return x, count[0]


def quality(torch, name, net, c, x):
    """Per-target moments and correlations of samples (dopri5 1e-5) against the truth."""
    import copy
    from torchdiffeq import odeint

    net64 = copy.deepcopy(net).double()
    g = torch.Generator().manual_seed(SEED + 900)
    ct = torch.tensor(c)
    z = torch.randn(len(c), D, generator=g, dtype=torch.float64)
    with torch.no_grad():
        s = odeint(field(net64, ct), z, torch.tensor([0.0, 1.0], dtype=torch.float64), method="dopri5",
                   rtol=1e-5, atol=1e-5)[-1].numpy()
    dm = np.abs(s.mean(0) - x.mean(0)).max()
    ds = np.abs(s.std(0) / x.std(0) - 1).max()
    dc = np.abs(np.corrcoef(s.T) - np.corrcoef(x.T)).max()
    hi = c[:, 9] > 0  # the flag that drives the bimodal targets
    dmode = np.abs(s[hi, 12].mean() - x[hi, 12].mean())
    line = (f"QUALITY {name} ({len(c)} held-out rows, gen vs truth, standardised): max |Δmean| {dm:.3f}, "
            f"max |std ratio - 1| {ds:.3f}, max |Δcorr| {dc:.3f}; x12 mean where c9 set {s[hi, 12].mean():.3f}/"
            f"{x[hi, 12].mean():.3f} (Δ {dmode:.3f})")
    print(line, flush=True)
    return line


def write(path, tensors, meta):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    st.save(path, {k: (v, "f32" if v.dtype == np.float32 else "f64") for k, v in tensors.items()},
            metadata={"producer": "models/train_cfm_models.py", "seed": str(SEED), **meta})


def make(torch, name, ode, c, x, cf, xf, n_steps, lr, seed, description):
    net = train(torch, name, c, x, n_steps, lr, seed)
    fx.export(os.path.join(MODELS, name), name, columns=COLUMNS, net=net, output_columns=V_COLS,
              ode=dict(ode, state=X_COLS, time="t"), description=description)
    # The exported weights give back the trained module exactly.
    again = load_exported(build(name), os.path.join(MODELS, name + ".safetensors"))

    # Vector-field fixture: states on the interpolation paths, held-out context, t in [0, 1] with both ends.
    r = np.random.default_rng(SEED + 100 + seed)
    t = r.random(N_FIX)
    t[:2] = [0.0, 1.0]
    x0 = r.normal(size=(N_FIX, D))
    xt = t[:, None] * xf[:N_FIX] + (1 - (1 - SIGMA) * t[:, None]) * x0
    inputs = f32(np.column_stack([xt, cf[:N_FIX], t]))
    args = [torch.tensor(inputs[:, :D]), torch.tensor(inputs[:, D:D + C]), torch.tensor(inputs[:, D + C:])]
    with torch.no_grad():
        out = net(*args).numpy()
        assert np.array_equal(out, again(*args).numpy()), "reloaded weights differ"
    write(os.path.join(FIXTURES, name + ".safetensors"), {"inputs": inputs, "outputs": out}, {"model": name})
    ref = evaluate(os.path.join(MODELS, name + ".json"), inputs.astype(np.float64))
    print(f"  {name}: max |reference - torch| = {np.abs(ref - out).max():.3g} (max |output| {np.abs(out).max():.3g})",
          flush=True)

    # ODE fixture: fixed context rows and base noise, torchdiffeq in float32 (and float64).
    import copy

    context = f32(cf[N_FIX:N_FIX + N_ODE])
    z = f32(r.normal(size=(N_ODE, D)))
    tensors = {"context": context, "z": z}
    meta = {"model": name, "steps": str(ODE_STEPS), "rtol": repr(ODE_TOL), "atol": repr(ODE_TOL)}
    net64 = copy.deepcopy(net).double()
    for m in FIXED_METHODS + ("dopri5",):
        y, nfe = integrate(torch, net, torch.tensor(context), torch.tensor(z), m)
        y64, nfe64 = integrate(torch, net64, torch.tensor(context).double(), torch.tensor(z).double(), m)
        tensors[m] = f32(y.numpy())
        tensors[m + "_f64"] = y64.numpy()
        meta[m + "_nfe"] = str(nfe)
        meta[m + "_f64_nfe"] = str(nfe64)
        print(f"  {name}: {m:<11} nfe {nfe:>3} (f64 {nfe64:>3}), max |f32 - f64| "
              f"{np.abs(y.numpy() - y64.numpy()).max():.2e}", flush=True)
    # The exact solution, for the global error of each: dopri5 in float64 with tolerances 1e-10.
    exact, nfe = integrate(torch, net64, torch.tensor(context).double(), torch.tensor(z).double(), "dopri5", 1e-10)
    tensors["exact"] = exact.numpy()
    meta["exact"] = "dopri5, float64, rtol = atol = 1e-10"
    for m in FIXED_METHODS + ("dopri5",):
        print(f"  {name}: {m:<11} global error (max |x - exact|): float32 {np.abs(tensors[m] - exact.numpy()).max():.2e}, "
              f"float64 {np.abs(tensors[m + '_f64'] - exact.numpy()).max():.2e}", flush=True)
    write(os.path.join(FIXTURES, "ode", name + ".safetensors"), tensors, meta)
    return quality(torch, name, net, cf[N_FIX + N_ODE:N_FIX + N_ODE + 10_000], xf[N_FIX + N_ODE:N_FIX + N_ODE + 10_000])


def main():
    import torch as _torch  # noqa: F401  (fail early without torch)
    import torchdiffeq  # noqa: F401

    torch = torch_setup()
    rng = np.random.default_rng(SEED)
    c, x = toy_data(rng, 200_000)
    cm, cs, xm, xs = c.mean(0), c.std(0), x.mean(0), x.std(0)
    c, x = (c - cm) / cs, (x - xm) / xs
    cf, xf = toy_data(np.random.default_rng(SEED + 2), 20_000)
    cf, xf = (cf - cm) / cs, (xf - xm) / xs
    scaling = (f"targets and context standardised with the training set's mean and std: "
               f"target_mean={json.dumps([float(f'{v:.6g}') for v in xm])} "
               f"target_std={json.dumps([float(f'{v:.6g}') for v in xs])} "
               f"context_mean={json.dumps([float(f'{v:.6g}') for v in cm])} "
               f"context_std={json.dumps([float(f'{v:.6g}') for v in cs])}")
    lines = [
        make(torch, "cfm_resnet", {"method": "rk4", "steps": 5}, c, x, cf, xf, 4000, 2e-3, 1,
             "toy flow-matching vector field, FlowSim's DenseResidualNet (widths 32, 64, 128, 128, 64, 32, GELU, "
             "GLU gating by cat(context, t)): v(x, context, t) for 16 targets and 12 context variables; integrate "
             "dx/dt = v from t = 0 (x ~ N(0, I)) to 1; " + scaling),
        make(torch, "cfm_mlp", {"method": "dopri5", "rtol": 1e-5, "atol": 1e-5}, c, x, cf, xf, 3000, 2e-3, 2,
             "toy flow-matching vector field, a plain MLP on cat(x, context, t) (3 x 160 SiLU): v(x, context, t) for "
             "16 targets and 12 context variables; integrate dx/dt = v from t = 0 (x ~ N(0, I)) to 1; " + scaling),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()

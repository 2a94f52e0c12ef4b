#!/usr/bin/env python3
"""PyTorch timing of a flow-matching sample, for `cargo bench --bench cfm` (which runs this script).

    python benches/cfm_torch.py --model cfm_resnet --method rk4 --steps 5 --batches 1,1024

The vector field is the PyTorch module of models/train_cfm_models.py with the weights of
models/<model>.safetensors (the same numbers flashc compiled), on one thread
(`torch.set_num_threads(1)`), under `torch.inference_mode()`, in float32. Two integrations of the
same ODE, from t = 0 to 1 with fixed steps:

  torchdiffeq   torchdiffeq.odeint(f, z, [0, 1], method=..., options={"step_size": 1 / steps})
  loop          the same steps written out in Python (no solver overhead; rk4 only)

Prints one line per batch size: `batch B torchdiffeq_us T loop_us L nfe N` (µs per sample: the
best of several repetitions, each at least `--min-seconds` long), after a `versions` line.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def models_module():
    spec = importlib.util.spec_from_file_location("train_cfm_models", os.path.join(ROOT, "models", "train_cfm_models.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def best(fn, min_seconds, reps):
    """Seconds per call: the best of `reps` repetitions of at least `min_seconds` each."""
    fn()
    n, t0 = 1, time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_seconds / one))
    out = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out = min(out, (time.perf_counter() - t0) / n)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cfm_resnet")
    p.add_argument("--method", default="rk4", choices=["euler", "midpoint", "rk4"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batches", default="1,1024")
    p.add_argument("--min-seconds", type=float, default=0.05)
    p.add_argument("--reps", type=int, default=15)
    a = p.parse_args()

    import numpy as np
    import torch
    import torchdiffeq
    from torchdiffeq import odeint

    torch.set_num_threads(1)
    m = models_module()
    net = m.load_exported(m.build(a.model), os.path.join(ROOT, "models", a.model + ".safetensors"))
    print(f"versions torch {torch.__version__} torchdiffeq {torchdiffeq.__version__} threads {torch.get_num_threads()}",
          flush=True)
    h = 1.0 / a.steps
    t01 = torch.tensor([0.0, 1.0])
    for batch in [int(b) for b in a.batches.split(",")]:
        rng = np.random.default_rng(batch)
        ctx = torch.tensor(rng.normal(size=(batch, m.C)), dtype=torch.float32)
        z = torch.tensor(rng.normal(size=(batch, m.D)), dtype=torch.float32)
        nfe = [0]

        def f(t, x):
            nfe[0] += 1
            return net(x, ctx, t.reshape(1, 1).expand(batch, 1))

        def solver():
            return odeint(f, z, t01, method=a.method, options={"step_size": h})[-1]

        def v(x, t):
            return net(x, ctx, torch.full((batch, 1), t))

        def loop():
            # torchdiffeq's rk4 is the 3/8 rule; euler and midpoint as torchdiffeq steps them.
            x = z
            for k in range(a.steps):
                t = k * h
                if a.method == "euler":
                    x = x + h * v(x, t)
                elif a.method == "midpoint":
                    x = x + h * v(x + 0.5 * h * v(x, t), t + 0.5 * h)
                else:
                    k1 = v(x, t)
                    k2 = v(x + h * k1 / 3, t + h / 3)
                    k3 = v(x + h * (k2 - k1 / 3), t + 2 * h / 3)
                    k4 = v(x + h * (k1 - k2 + k3), t + h)
                    x = x + (k1 + 3 * (k2 + k3) + k4) * h * 0.125
            return x

        with torch.inference_mode():
            diff = (solver() - loop()).abs().max().item()
            nfe[0] = 0
            solver()
            n = nfe[0]
            ts = best(solver, a.min_seconds, a.reps)
            tl = best(loop, a.min_seconds, a.reps)
        print(f"batch {batch} torchdiffeq_us {ts / batch * 1e6:.3f} loop_us {tl / batch * 1e6:.3f} nfe {n} "
              f"max_diff {diff:.2e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/fixtures/ode_torchdiffeq.txt: torchdiffeq (float64) references for tests/ode.rs.

Vector field v(x, t) = tanh(x @ W.T + c * t), W 4x4 and c fixed below, x0 a fixed batch of 8 rows x 4.
Runs with torch and torchdiffeq installed:  python runtime/tests/make_ode_fixtures.py

Format, one record per line:
  W <16 values row-major>     c <4 values>     x0 <32 values row-major>
  fixed <method> <steps> <32 values>           (method: euler, midpoint, rk4, rk4_classic)
  dopri5 <rtol> <atol> <nfe> <32 values>     dopri5_f32 ... (same, torch float32)
rk4_classic is torchdiffeq's rk4_step_func (not exposed by odeint) stepped over the same grid.
"""
import os
import torch
from torchdiffeq import odeint
from torchdiffeq._impl.rk_common import rk4_step_func

torch.set_default_dtype(torch.float64)
W = torch.tensor([[0.8, -0.5, 0.3, 0.1],
                  [0.4, 0.6, -0.7, 0.2],
                  [-0.3, 0.2, 0.5, -0.9],
                  [0.6, -0.4, 0.1, 0.7]])
c = torch.tensor([1.5, -0.8, 0.6, -1.2])
x0 = torch.tensor([[((r * 4 + j) * 0.37) % 2.0 - 1.0 + 0.1 * r for j in range(4)] for r in range(8)])


class Field(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.nfe = 0

    def forward(self, t, x):
        self.nfe += 1
        return torch.tanh(x @ W.T + c * t)


def fmt(v):
    return " ".join(repr(float(a)) for a in v.reshape(-1).tolist())


lines = ["W " + fmt(W), "c " + fmt(c), "x0 " + fmt(x0)]
t = torch.tensor([0.0, 1.0])
for steps in (5, 20):
    h = 1.0 / steps
    # torchdiffeq's grid from step_size: arange(0, ceil(1/h + 1)) * h, last point set to 1.
    assert int(torch.ceil(torch.tensor((1.0 - 0.0) / h + 1)).item()) == steps + 1
    for method in ("euler", "midpoint", "rk4"):
        y = odeint(Field(), x0, t, method=method, options={"step_size": h})[-1]
        lines.append(f"fixed {method} {steps} " + fmt(y))
    f = Field()
    y = x0.clone()
    grid = torch.arange(0, steps + 1, dtype=torch.float64) * h
    grid[-1] = 1.0
    for t0, t1 in zip(grid[:-1], grid[1:]):
        y = y + rk4_step_func(lambda tt, yy, perturb=None: f(tt, yy), t0, t1 - t0, t1, y)
    lines.append(f"fixed rk4_classic {steps} " + fmt(y))
for tol in (1e-5, 1e-7):
    f = Field()
    y = odeint(f, x0, t, method="dopri5", rtol=tol, atol=tol)[-1]
    lines.append(f"dopri5 {tol!r} {tol!r} {f.nfe} " + fmt(y))
# The same in float32 (state, field and tolerance arithmetic in float32; step control in float64).
W, c = W.float(), c.float()
f = Field()
y = odeint(f, x0.float(), t.float(), method="dopri5", rtol=1e-5, atol=1e-5)[-1]
lines.append(f"dopri5_f32 1e-05 1e-05 {f.nfe} " + fmt(y))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ode_torchdiffeq.txt")
with open(out, "w") as fh:
    fh.write("\n".join(lines) + "\n")
print("wrote", out)

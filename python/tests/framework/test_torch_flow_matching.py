"""PyTorch vector fields (several forward arguments, GLU gating, products) against PyTorch itself
(needs torch; not run in CI)."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import flashc_export as fx  # noqa: E402
from flashc_export import ExportError  # noqa: E402

from helpers import ROOT, assert_close, eval_exported  # noqa: E402

pytestmark = pytest.mark.framework

COLUMNS = {"x": ["x0", "x1", "x2", "x3"], "context": ["c0", "c1", "c2"], "t": ["t"]}


def rows(n=64, seed=0):
    r = np.random.default_rng(seed)
    x = np.float32(r.normal(size=(n, 8)))
    x[:, 7] = np.float32(r.random(n))
    return x


def check(tmp_path, net, columns=COLUMNS, **kw):
    net.eval()
    x = rows()
    spec = fx.export(str(tmp_path / "m"), "m", columns=columns, net=net, **kw)
    with torch.no_grad():
        want = net(torch.tensor(x[:, :4]), torch.tensor(x[:, 4:7]), torch.tensor(x[:, 7:])).numpy()
    assert_close(eval_exported(str(tmp_path / "m"), x), want, atol=2e-6, rtol=2e-6, what="torch")
    return spec


def test_flowsim_dense_residual_net(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "models"))
    import train_cfm_models as m

    torch.manual_seed(0)
    net = m.modules()["cfm_resnet"](dim=4, n_ctx=3, hidden=(8, 16, 16, 8))
    ode = {"method": "rk4", "steps": 5, "state": COLUMNS["x"], "time": "t"}
    spec = check(tmp_path, net, ode=ode)
    ops = [n["op"] for n in spec["graph"]]
    # One GLU per block, read straight from its torch.cat (no concat written for it).
    assert ops.count("mul") == 4 and ops.count("concat") == 2
    assert spec["ode"] == ode
    assert [i["name"] for i in spec["inputs"]] == ["x", "context", "t"]


def test_explicit_sigmoid_gate_and_glu_module(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 6)
            self.g = nn.Linear(4, 6)
            self.both = nn.Linear(8, 12)
            self.glu = nn.GLU(dim=-1)
            self.out = nn.Linear(6, 4)

        def forward(self, x, context, t):
            ct = torch.cat([context, t], dim=1)
            h = self.a(x) * torch.sigmoid(self.g(ct))
            k = self.glu(self.both(torch.cat([x, ct], dim=1)))  # not a cat: split by 0/1 routing
            return self.out(torch.mul(h, k) + h)

    torch.manual_seed(1)
    spec = check(tmp_path, Net())
    assert sum(n["op"] == "mul" for n in spec["graph"]) == 3


def test_context_preprocessing_per_input(tmp_path):
    from sklearn.preprocessing import StandardScaler

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.SiLU(), nn.Linear(16, 4))

        def forward(self, x, context, t):
            return self.net(torch.cat((x, context, t), 1))

    torch.manual_seed(2)
    net = Mlp().eval()
    sc = StandardScaler().fit(np.random.default_rng(3).normal(2.0, 3.0, size=(100, 3)))
    x = rows()
    fx.export(str(tmp_path / "m"), "m", columns=COLUMNS, net=net, preprocess={"context": sc})
    with torch.no_grad():
        c = torch.tensor(np.float32(sc.transform(x[:, 4:7].astype(np.float64))))
        want = net(torch.tensor(x[:, :4]), c, torch.tensor(x[:, 7:])).numpy()
    assert_close(eval_exported(str(tmp_path / "m"), x), want, atol=2e-6, rtol=2e-6, what="torch")


def test_unsupported_is_a_clear_error(tmp_path):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x, context, t):
            return 0.5 * self.a(x)

    with pytest.raises(ExportError, match=r"fx node 'mul'.*only `a \* b` of two tensors"):
        fx.export(str(tmp_path / "m"), "m", columns=COLUMNS, net=Scaled().eval())

    class Exp(nn.Module):
        def forward(self, x, context, t):
            return torch.exp(x)

    with pytest.raises(ExportError, match="unsupported torch.fx node 'exp'.*supported functions"):
        fx.export(str(tmp_path / "m"), "m", columns=COLUMNS, net=Exp().eval())

    class Two(nn.Module):
        def forward(self, x, context):
            return x

    with pytest.raises(ExportError, match=r"takes 2 input\(s\) \(x, context\); the export gives it 3"):
        fx.export(str(tmp_path / "m"), "m", columns=COLUMNS, net=Two().eval())

    class GluRows(nn.Module):
        def forward(self, x, context, t):
            return F.glu(x, dim=0)

    with pytest.raises(ExportError, match="only F.glu over the last dimension"):
        fx.export(str(tmp_path / "m"), "m", columns=COLUMNS, net=GluRows().eval())

    with pytest.raises(ExportError, match="noise is not supported together with several inputs"):
        fx.export(str(tmp_path / "m"), "m", columns=COLUMNS, net=Two().eval(), noise_dim=2)
    with pytest.raises(ExportError, match="column name 'x0' is used twice"):
        fx.export(str(tmp_path / "m"), "m", columns={"x": ["x0"], "y": ["x0"]}, net=Two().eval())

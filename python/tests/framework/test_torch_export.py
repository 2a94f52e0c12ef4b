"""PyTorch exporter against PyTorch itself (needs torch; not run in CI)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import flashc_export as fx  # noqa: E402
from flashc_export import ExportError  # noqa: E402

from helpers import assert_close, eval_exported  # noqa: E402

pytestmark = pytest.mark.framework


def check(tmp_path, net, n_in, **kw):
    net.eval()
    x = np.float32(np.random.default_rng(0).normal(size=(64, n_in)) * 2)
    spec = fx.export(str(tmp_path / "m"), "m", columns=[f"x{i}" for i in range(n_in)], net=net, **kw)
    with torch.no_grad():
        want = net(torch.tensor(x)).numpy()
    assert_close(eval_exported(str(tmp_path / "m"), x), want, atol=2e-5, rtol=2e-5, what="torch")
    return spec


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.4), nn.SELU(), nn.SiLU(), nn.GELU(),
                                 nn.GELU(approximate="tanh"), nn.Tanh(), nn.Sigmoid(), nn.Softmax(dim=-1),
                                 nn.Softplus(), nn.Softplus(beta=3.0, threshold=2.0)], ids=repr)
def test_activations(tmp_path, act):
    torch.manual_seed(0)
    check(tmp_path, nn.Sequential(nn.Linear(5, 7), act, nn.Linear(7, 3)), 5)


def test_linear_is_transposed(tmp_path):
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    spec = check(tmp_path, nn.Sequential(lin), 3)
    w = fx.st.load(str(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(w[spec["graph"][0]["kernel"]], lin.weight.detach().numpy().T)


def test_residual_and_norms(tmp_path):
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 6)
            self.bn = nn.BatchNorm1d(6, eps=0.01)
            self.ln = nn.LayerNorm(6, eps=0.02)
            self.b = nn.Linear(6, 3)
            self.c = nn.Linear(6, 3, bias=False)

        def forward(self, x):
            h = x + torch.tanh(self.a(x))
            h = self.bn(h)
            h = torch.add(h, F.gelu(self.ln(h), approximate="tanh"))
            return torch.cat([F.softplus(self.b(h), beta=2.0), F.leaky_relu(self.c(h), 0.3), h], dim=1)

    torch.manual_seed(1)
    m = Res()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
        m.bn.weight.uniform_(0.5, 1.5)
        m.ln.bias.uniform_(-1, 1)
    check(tmp_path, m, 6)


def test_bf16(tmp_path):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 8), nn.SiLU(), nn.Linear(8, 2)).eval()
    fx.export(str(tmp_path / "b"), "b", columns=list("abcd"), net=net, dtype="bf16")
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.tensor(fx.round_to_dtype(p.numpy(), "bf16")))
        x = np.float32(np.random.default_rng(0).normal(size=(16, 4)))
        want = net(torch.tensor(x)).numpy()
    assert_close(eval_exported(str(tmp_path / "b"), x), want, 1e-6, 1e-6, "bf16")


def test_reject_unsupported_module(tmp_path):
    net = nn.Sequential(nn.Linear(4, 4), nn.Hardtanh()).eval()
    with pytest.raises(ExportError, match=r"unsupported PyTorch module '1' \(class Hardtanh, fx node '_1'\); "
                                          r"supported modules: Linear"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=net)


def test_reject_method_call(tmp_path):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x):
            return self.l(x).clamp(0, 1)

    with pytest.raises(ExportError, match=r"unsupported torch.fx node 'clamp' \(call_method clamp\)"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=M().eval())


def test_reject_function(tmp_path):
    class M(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    with pytest.raises(ExportError, match=r"unsupported torch.fx node 'exp' \(call_function .*exp"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=M().eval())


def test_reject_training_mode(tmp_path):
    with pytest.raises(ExportError, match="training mode"):
        fx.export(str(tmp_path / "x"), "x", columns=list("abcd"), net=nn.Sequential(nn.Linear(4, 4)))

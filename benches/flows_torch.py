#!/usr/bin/env python3
"""PyTorch (nflows, zuko) timing of a flow model under models/, one thread: the peer of `benches/flows.rs`.

    python benches/flows_torch.py MODEL [BATCH ...] [--seconds S]

Rebuilds the nflows flow of MODEL with the architecture of models/train_flow_models.py, loads the
exported weights (models/MODEL.safetensors, walked through the spec's transforms), checks that
its inverse (`flow._transform.inverse(z, context)`, zuko `flow(context).transform.inv(z)`) reproduces the fixture (tests/fixtures/MODEL.safetensors), then
times it at each batch size (default 1 and 1024) with torch.set_num_threads(1), eval, no_grad.
Prints one JSON object: {"model", "max_rel_diff_vs_fixture", "ns_per_sample": {batch: ns}}.
Batch 1 is one `inverse` call per row from Python, as nflows is called.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "models"))

import torch  # noqa: E402

import train_flow_models as tfm  # noqa: E402
from flashc_export import st  # noqa: E402
from flashc_export.nflows import flatten  # noqa: E402

ARCH = {"nflows_maf": tfm.maf6, "nflows_maf20": tfm.maf20, "zuko_maf": tfm.zuko_maf, "nflows_lu_maf": tfm.lu_maf,
        "nflows_rqs": tfm.nflows_rqs, "zuko_nsf": tfm.zuko_nsf, "nflows_rqs_coupling": tfm.rqs_coupling,
        "nflows_affine_coupling": tfm.affine_coupling}


def load_zuko(flow, spec, w):
    """Copies the exported tensors into zuko's MaskedMLPs (the first layer reads cat(x, c))."""
    from zuko.nn import MaskedLinear

    def cp(param, value):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.asarray(value)).to(param.dtype).reshape(param.shape))

    for t, js in zip(flow.transform.transforms, spec["graph"][0]["transforms"]):
        m = js["made"]
        lins = [x for x in t.hyper if isinstance(x, MaskedLinear)]
        first = np.asarray(w[m["initial"]["weight"]])
        if "context" in m:
            first = np.concatenate([first, np.asarray(w[m["context"]["weight"]])], axis=1)
        cp(lins[0].weight, first), cp(lins[0].bias, w[m["initial"]["bias"]])
        for lin, b in zip(lins[1:-1], m["blocks"]):
            cp(lin.weight, w[b["linear"]["weight"]]), cp(lin.bias, w[b["linear"]["bias"]])
        cp(lins[-1].weight, w[m["final"]["weight"]]), cp(lins[-1].bias, w[m["final"]["bias"]])


def load(flow, spec, w):
    """Copies the exported tensors into the nflows modules, in transform order."""
    from nflows.transforms.autoregressive import (
        MaskedAffineAutoregressiveTransform, MaskedPiecewiseRationalQuadraticAutoregressiveTransform)
    from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform
    from nflows.transforms.lu import LULinear
    from nflows.transforms.normalization import BatchNorm
    from nflows.transforms.permutations import Permutation

    def cp(param, name):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.asarray(w[name])).to(param.dtype).reshape(param.shape))

    def bn(mod, o):
        cp(mod.weight, o["gamma"]), cp(mod.bias, o["beta"]), cp(mod.running_mean, o["mean"]), cp(mod.running_var, o["var"])

    def masked(mod, o):
        cp(mod.weight, o["weight"]), cp(mod.bias, o["bias"])

    node = spec["graph"][0]
    for t, js in zip(flatten(flow._transform), node["transforms"]):
        if isinstance(t, Permutation):
            cp(t._permutation, js["permutation"])
        elif isinstance(t, BatchNorm):
            u = np.log(np.expm1(np.asarray(w[js["weight"]], dtype=np.float64) - t.eps))
            with torch.no_grad():
                t.unconstrained_weight.copy_(torch.from_numpy(u).float())
            cp(t.bias, js["bias"]), cp(t.running_mean, js["mean"]), cp(t.running_var, js["var"])
        elif isinstance(t, LULinear):
            lower, upper = np.asarray(w[js["lower"]], np.float64), np.asarray(w[js["upper"]], np.float64)
            with torch.no_grad():
                t.lower_entries.copy_(torch.from_numpy(lower[t.lower_indices]).float())
                t.upper_entries.copy_(torch.from_numpy(upper[t.upper_indices]).float())
                diag = np.diag(upper) - t.eps
                t.unconstrained_upper_diag.copy_(torch.from_numpy(np.log(np.expm1(diag))).float())
            cp(t.bias, js["bias"])
        elif isinstance(t, (MaskedAffineAutoregressiveTransform, MaskedPiecewiseRationalQuadraticAutoregressiveTransform)):
            made, m = t.autoregressive_net, js["made"]
            masked(made.initial_layer, m["initial"])
            if "context" in m:
                masked(made.context_layer, m["context"])
            for blk, b in zip(made.blocks, m["blocks"]):
                for q in range(2):
                    masked(blk.linear_layers[q], b["linear"][q])
                    if "batchnorm" in b:
                        bn(blk.batch_norm_layers[q], b["batchnorm"][q])
                if "context" in b:
                    masked(blk.context_layer, b["context"])
            masked(made.final_layer, m["final"])
        elif isinstance(t, (AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform)):
            net, n = t.transform_net, js["net"]
            masked(net.initial_layer, n["initial"])
            for blk, b in zip(net.blocks, n["blocks"]):
                for q in range(2):
                    masked(blk.linear_layers[q], b["linear"][q])
                    if "batchnorm" in b:
                        bn(blk.batch_norm_layers[q], b["batchnorm"][q])
                if "context" in b:
                    masked(blk.context_layer, b["context"])
            masked(net.final_layer, n["final"])
        else:
            raise SystemExit(f"unexpected module {type(t).__name__}")


def main():
    args = [a for a in sys.argv[1:]]
    seconds = 2.0
    if "--seconds" in args:
        i = args.index("--seconds")
        seconds = float(args[i + 1])
        del args[i:i + 2]
    name, batches = args[0], [int(b) for b in args[1:]] or [1, 1024]
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    with open(os.path.join(ROOT, "models", name + ".json")) as f:
        spec = json.load(f)
    w = st.load(os.path.join(ROOT, "models", spec["weights"]))
    torch.manual_seed(0)
    flow = ARCH[name]()
    (load_zuko if name.startswith("zuko") else load)(flow, spec, w)
    flow.eval()
    inverse = tfm.inverse
    fx = st.load(os.path.join(ROOT, "tests", "fixtures", name + ".safetensors"))
    c, z, want = (torch.from_numpy(fx[k]) for k in ("inputs", "noise", "outputs"))
    with torch.no_grad():
        got = inverse(flow, z, c).numpy()
    diff = float(np.max(np.abs(got - want.numpy()) / np.maximum(1.0, np.abs(want.numpy()))))
    out = {"model": name, "max_rel_diff_vs_fixture": diff, "ns_per_sample": {}}
    for batch in batches:
        reps = -(-batch // c.shape[0])
        cb, zb = c.repeat(reps, 1)[:batch].contiguous(), z.repeat(reps, 1)[:batch].contiguous()
        rows = [(cb[i:i + 1], zb[i:i + 1]) for i in range(batch)] if batch == 1 else None
        with torch.no_grad():
            inverse(flow, zb, cb)  # warm-up
            best = float("inf")
            t_end = time.perf_counter() + seconds
            while True:
                t0 = time.perf_counter()
                if rows is not None:
                    for ci, zi in rows:
                        inverse(flow, zi, ci)
                else:
                    inverse(flow, zb, cb)
                best = min(best, time.perf_counter() - t0)
                if time.perf_counter() > t_end:
                    break
        out["ns_per_sample"][str(batch)] = best * 1e9 / batch
    print(json.dumps(out))


if __name__ == "__main__":
    main()

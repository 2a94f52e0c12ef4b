#!/usr/bin/env python3
"""Agreement outputs and timings for the Python-hosted peers: ONNX Runtime and PyTorch, one thread.

    python bench_py.py ENGINE MODEL_DIR OUT_JSON [REPS MIN_SECONDS]     ENGINE: ort | torch | ort_floor

Writes MODEL_DIR/out_<ENGINE>.npy (outputs for every row of data.npz, computed at batch 1024 and,
for the first 64 rows, one row per call: both must agree) and, when REPS > 0, OUT_JSON with ns per
sample for every repetition at batch 1 (one row per call, rows in turn) and batch 1024. The batch-1
numbers include the Python call overhead (a `session.run` / `module(x)` call from a Python loop),
which is how these engines are called from Python; nothing is subtracted.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def torch_model(d, info):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    w = np.load(os.path.join(d, "weights.npz"))
    n = len([k for k in w.files if k.startswith("k")])
    acts = info["activations"]
    residual = info["torch"] == "residual"

    def act_fn(a):
        if a["kind"] == "relu":
            return torch.relu
        if a["kind"] == "tanh":
            return torch.tanh
        if a["kind"] == "leaky_relu":
            s = float(a["alpha"])
            return lambda x: F.leaky_relu(x, s)
        assert a["kind"] == "linear", a
        return lambda x: x

    class Net(torch.nn.Module):
        """Dense -> [Dense (+ residual)]* -> Dense, the noise concatenated to the inputs."""

        def __init__(self):
            super().__init__()
            self.lins = torch.nn.ModuleList()
            for i in range(n):
                k, b = w[f"k{i}"], w[f"b{i}"]
                lin = torch.nn.Linear(k.shape[0], k.shape[1])
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.T)))
                    lin.bias.copy_(torch.from_numpy(b))
                self.lins.append(lin)
            self.acts = [act_fn(a) for a in acts]

        def forward(self, x, z=None):
            h = x if z is None else torch.cat([x, z], dim=1)
            h = self.acts[0](self.lins[0](h))
            for lin, act in zip(self.lins[1:-1], self.acts[1:-1]):
                r = act(lin(h))
                h = h + r if residual else r
            return self.acts[-1](self.lins[-1](h))

    net = Net().eval()

    def run(x, z):
        with torch.inference_mode():
            tx = torch.from_numpy(x)
            return net(tx, torch.from_numpy(z) if z is not None else None).numpy()

    return run


def ort_model(d, info):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), so, providers=["CPUExecutionProvider"])

    def run(x, z):
        feed = {"x": x} if z is None else {"x": x, "z": z}
        return sess.run(["y"], feed)[0]

    return run


def ort_floor_model(d, info):
    """A one-node model (Relu) with the same inputs: the cost of a `session.run` call from Python."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", info["n_in"]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", info["n_in"]])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "floor", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda x, z: sess.run(["y"], {"x": x})[0]


def timed(fn, min_s, reps):
    units = 1
    while True:  # calibrate and warm up
        t0 = time.perf_counter()
        n = fn(units)
        dt = time.perf_counter() - t0
        if dt >= min_s:
            break
        units = min(units * 10, int(units * 1.2 * min_s / max(dt, 1e-9)) + 1)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        n = fn(units)
        out.append(1e9 * (time.perf_counter() - t0) / n)
    return units, out


def main():
    engine, d, out_json = sys.argv[1], sys.argv[2], sys.argv[3]
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    min_s = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
    info = json.load(open(os.path.join(os.path.dirname(d.rstrip("/")), "models.json")))[os.path.basename(d.rstrip("/"))]
    data = np.load(os.path.join(d, "data.npz"))
    X, Z = data["inputs"], data["noise"]
    has_noise = Z.shape[1] > 0
    run = {"ort": ort_model, "torch": torch_model, "ort_floor": ort_floor_model}[engine](d, info)
    rows = len(X)
    if engine == "ort_floor":
        has_noise = False
    out = np.asarray(run(X, Z if has_noise else None), dtype=np.float32)
    if engine == "ort_floor":
        out = np.ones((rows, 1), np.float32)  # nothing to compare
    single = np.concatenate([run(X[i:i + 1], Z[i:i + 1] if has_noise else None) for i in range(64)])
    gap = float(np.max(np.max(np.abs(single - out[:64]), axis=0) / np.max(np.abs(out[:64]), axis=0)))
    if gap > 1e-4 and engine != "ort_floor":
        raise SystemExit(f"{engine} {d}: one-row calls differ from the batch call by {gap:.3g} (relative)")
    if engine != "ort_floor":
        np.save(os.path.join(d, f"out_{engine}.npy"), out)
    if reps <= 0:
        return
    xs = [np.ascontiguousarray(X[i:i + 1]) for i in range(rows)]
    zs = [np.ascontiguousarray(Z[i:i + 1]) if has_noise else None for i in range(rows)]
    x1k, z1k = np.ascontiguousarray(X[:1024]), (np.ascontiguousarray(Z[:1024]) if has_noise else None)
    state = {"i": 0}

    def b1(units):
        i = state["i"]
        for _ in range(units):
            run(xs[i], zs[i])
            i = (i + 1) % rows
        state["i"] = i
        return units

    def b1024(units):
        for _ in range(units):
            run(x1k, z1k)
        return units * 1024

    u1, t1 = timed(b1, min_s, reps)
    u2, t2 = timed(b1024, min_s, reps)
    json.dump({"b1": {"calls_per_rep": u1, "ns": t1}, "b1024": {"calls_per_rep": u2, "ns": t2}}, open(out_json, "w"))


if __name__ == "__main__":
    main()

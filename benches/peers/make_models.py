#!/usr/bin/env python3
"""Build the benchmark models and every peer's artefacts from one set of weights.

    python benches/peers/make_models.py BUILD_DIR

Keras is the reference framework here: every network below is a Keras model, and every other
artefact is written from its weights:

  BUILD_DIR/<model>/flashc.json|.safetensors   flashc spec (flashc_export.export)
  BUILD_DIR/<model>/scikinc.C                  scikinC C code (+ hand-written noise glue, as Lamarr does)
  BUILD_DIR/<model>/model.onnx                 ONNX graph (onnx.helper: Concat, Gemm, Relu/Tanh/LeakyRelu, Add)
  BUILD_DIR/<model>/weights.npz                dense kernels/biases in layer order (for the PyTorch module)
  BUILD_DIR/<model>/data.npz                   inputs [N, n_in], noise [N, n_noise], Keras outputs [N, n_out]
  BUILD_DIR/models.json                        the model table (sizes, which peers run it, notes)

Models (all f32):
  mlp          12 -> 4x128 ReLU -> 4 (Keras Sequential, fitted 2 epochs on toy data)
  trk_gan      the tracking resolution GAN generator of models/tracking_resolution (rebuilt in Keras from
               its exported weights): 12 conditions + 128 noise -> Dense128 tanh + 10 residual tanh blocks -> 9
  trk_gan_seq  the same weights as a plain Sequential (no residual adds: scikinC has no Add layer)
  trk_full     trk_gan with its QuantileTransformer pre- and post-processing (the deployed form)
  trk_full_seq trk_full with the plain Sequential network (the form scikinC can express)
  pid_gan      the PID GAN generator of models/pid_gan: 4 + 64 noise -> Dense128 LeakyReLU(0.1) + 4 residual blocks -> 8
  pid_gan_seq  the same weights as a plain Sequential
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "models"))

import flashc_export as fx  # noqa: E402
from flashc_export import st  # noqa: E402

N_ROWS = 1024
SEED = 20261124


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def load_spec(name):
    spec = json.load(open(os.path.join(ROOT, "models", name + ".json")))
    w = st.load(os.path.join(ROOT, "models", spec["weights"]))
    w = {k: (v[0] if isinstance(v, tuple) else v) for k, v in w.items()}
    return spec, {k: np.asarray(v, dtype=np.float64) for k, v in w.items()}


# ----------------------------------------------------------------------------- Keras networks
def keras_mlp(keras):
    L = keras.layers
    keras.utils.set_random_seed(SEED)
    net = keras.Sequential([keras.Input((12,))] + [L.Dense(128, activation="relu") for _ in range(4)] + [L.Dense(4)],
                           name="mlp")
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(8192, 12))
    T = np.stack([np.sin(X[:, 0]) * X[:, 1], np.tanh(X[:, 2] + X[:, 3]), X[:, 4] ** 2 - 1.0, X[:, 5:].sum(1) / 3.0], 1)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    h = net.fit(f32(X), f32(T), batch_size=128, epochs=2, verbose=0, shuffle=True)
    print(f"  mlp: MSE {h.history['loss'][0]:.4f} -> {h.history['loss'][-1]:.4f}", flush=True)
    return net


def dense_chain(spec, w):
    """The network of an exported GAN spec as a list of (kernel [in,out], bias, activation) per dense
    layer; a separate activation node is folded into the dense layer it follows."""
    layers = []
    for n in spec["graph"]:
        if n["op"] == "dense":
            a = n.get("activation", {"kind": "linear"})
            layers.append([n["name"], w[n["kernel"]], w[n["bias"]], a])
        elif n["op"] == "activation":
            assert layers and layers[-1][3]["kind"] == "linear" and n["input"] == layers[-1][0], n
            layers[-1][3] = n["activation"]
    return [(k, b, a) for _, k, b, a in layers]


def keras_gan(keras, name, chain, residual):
    L = keras.layers

    def act(h, a, tag):
        if a["kind"] == "leaky_relu":
            return L.LeakyReLU(negative_slope=a["alpha"], name=f"{tag}_act")(h)
        return h

    def dense(h, k, b, a, tag):
        kind = a["kind"] if a["kind"] in ("tanh", "relu", "linear") else "linear"
        return act(L.Dense(k.shape[1], activation=kind, name=tag)(h), a, tag)

    x = keras.Input((chain[0][0].shape[0],), name=f"{name}_in")
    h = dense(x, *chain[0], "dense_in")
    for i, (k, b, a) in enumerate(chain[1:-1]):
        r = dense(h, k, b, a, f"res{i}_dense")
        h = L.Add(name=f"res{i}_add")([h, r]) if residual else r
    y = dense(h, *chain[-1], "dense_out")
    net = keras.Model(x, y, name=name)
    for tag, (k, b, _) in zip(["dense_in"] + [f"res{i}_dense" for i in range(len(chain) - 2)] + ["dense_out"], chain):
        net.get_layer(tag).set_weights([f32(k), f32(b)])
    if not residual:  # scikinC converts keras.Sequential only: same layers, same weights
        seq = keras.Sequential([keras.Input((chain[0][0].shape[0],))] + [l for l in net.layers[1:]], name=name)
        return seq
    return net


def sk_from_spec(spec, w, node_name, n_cols):
    """A fitted sklearn QuantileTransformer (wrapped as in the original export) holding the exported quantiles."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer

    n = next(n for n in spec["graph"] if n["name"] == node_name)
    q, r = w[n["quantiles"]], w[n["references"]]
    nq, nf = q.shape
    qt = QuantileTransformer(n_quantiles=nq, output_distribution=n["output_distribution"], random_state=0)
    dummy = np.random.default_rng(0).normal(size=(nq, n_cols))
    if "columns" in n:
        tr = ColumnTransformer([("qt", qt, list(n["columns"]))], remainder="passthrough").fit(dummy)
        fitted = tr.named_transformers_["qt"]
    else:
        tr = qt.fit(dummy)
        fitted = tr
    fitted.quantiles_ = q.copy()
    fitted.references_ = r.copy()
    return tr


# ----------------------------------------------------------------------------- ONNX (onnx.helper)
def onnx_from_layers(path, layers, n_in, n_noise, opset=17):
    """layers: list of ("dense", k, b, act) | ("add_from", index) in Keras order, written as Gemm (transB=0)
    + activation nodes; the input is Concat(x, z) when the model has noise. Symbolic batch dimension N."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])]
    cur = "x"
    if n_noise:
        inputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", n_noise]))
        nodes.append(helper.make_node("Concat", ["x", "z"], ["xz"], axis=1))
        cur = "xz"
    outs = []
    for i, l in enumerate(layers):
        if l[0] == "dense":
            _, k, b, a = l
            inits += [numpy_helper.from_array(f32(k), f"W{i}"), numpy_helper.from_array(f32(b), f"B{i}")]
            nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], [f"g{i}"]))
            cur = f"g{i}"
            if a["kind"] == "relu":
                nodes.append(helper.make_node("Relu", [cur], [f"a{i}"]))
                cur = f"a{i}"
            elif a["kind"] == "tanh":
                nodes.append(helper.make_node("Tanh", [cur], [f"a{i}"]))
                cur = f"a{i}"
            elif a["kind"] == "leaky_relu":
                nodes.append(helper.make_node("LeakyRelu", [cur], [f"a{i}"], alpha=float(a["alpha"])))
                cur = f"a{i}"
            else:
                assert a["kind"] == "linear", a
        else:  # residual: add the output of layer l[1]
            nodes.append(helper.make_node("Add", [outs[l[1]], cur], [f"s{i}"]))
            cur = f"s{i}"
        outs.append(cur)
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    n_out = [l for l in layers if l[0] == "dense"][-1][1].shape[1]
    graph = helper.make_graph(nodes, "net", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="flashc-peers")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def chain_layers(chain, residual):
    out = [("dense",) + tuple(chain[0])]
    for c in chain[1:-1]:
        prev = len(out) - 1
        out.append(("dense",) + tuple(c))
        if residual:
            out.append(("add_from", prev))
    out.append(("dense",) + tuple(chain[-1]))
    return out


def keras_chain(net):
    """(kernel, bias, activation) per Dense layer of a Sequential made of Dense layers."""
    out = []
    for l in net.layers:
        k, b = l.get_weights()
        out.append((k.astype(np.float64), b.astype(np.float64), {"kind": l.get_config()["activation"]}))
    return out


# ----------------------------------------------------------------------------- scikinC
SCIKINC_GLUE = """
/* Noise glue written by hand, as Lamarr's gan_pipelines.c does: the generator gets the
   {pre}inputs followed by the caller's noise. */
{float_t}* {name}(float* out, const float* in, const float* random)
{{
  float buf[{n_cat}];
  int i;
  {pre_call}
  for (i = 0; i < {n_noise}; ++i) buf[{n_in} + i] = random[i];
  {post_call}
  return out;
}}
"""


def scikinc_source(parts, glue=None):
    """scikinC's C for `parts` ({symbol: model}); with `glue` = (name, n_in, n_noise, n_out, pre, post),
    also the generator entry point `name(out, in, random)` that Lamarr writes by hand."""
    import scikinC

    src = scikinC.convert(parts)
    if glue is not None:
        name, n_in, n_noise, n_out, pre, post = glue
        tmp = "" if post is None else f"float tmp[{n_out}];"
        pre_call = (f"{pre}(buf, in);" if pre else f"for (i = 0; i < {n_in}; ++i) buf[i] = in[i];")
        net = parts_net_name(parts)
        post_call = (f"{tmp} {net}(tmp, buf); {post}(out, tmp);" if post else f"{net}(out, buf);")
        src += SCIKINC_GLUE.format(float_t='extern "C" float', name=name, n_cat=n_in + n_noise, n_in=n_in,
                                   n_noise=n_noise, pre="preprocessed " if pre else "", pre_call=pre_call,
                                   post_call=post_call)
    return src


def parts_net_name(parts):
    return next(k for k in parts if k.endswith("_net"))


# ----------------------------------------------------------------------------- data
def trk_conditions(n, seed):
    import train_demo_models as tdm

    rng = np.random.default_rng(seed)
    t = tdm.toy_particles(rng, n)
    return np.column_stack([t["mc_x"], t["mc_y"], t["mc_z"] * 0.2, t["tx"], t["ty"], t["log10_p"],
                            tdm.species_flags(t["species"]), tdm.track_type(rng, n)])


def pre_like(rng, n, n_real, n_flags):
    """Inputs of a network part: QT(normal)-like reals followed by one-hot flags."""
    x = rng.normal(size=(n, n_real))
    if n_flags:
        fl = np.zeros((n, n_flags))
        for start in range(0, n_flags, 3):
            w = min(3, n_flags - start)
            fl[np.arange(n), start + rng.integers(0, w, n)] = 1.0
        x = np.concatenate([x, fl], axis=1)
    return x


# ----------------------------------------------------------------------------- main
def main():
    build = os.path.abspath(sys.argv[1])
    os.makedirs(build, exist_ok=True)
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(SEED + 1)
    table = {}

    def write(name, *, net, keras_in, noise, scope, peers, note, flashc_kwargs, onnx_layers=None,
              chain=None, scikinc=None, torch_kind=None, ref=None):
        d = os.path.join(build, name)
        os.makedirs(d, exist_ok=True)
        inputs = f32(keras_in)
        z = f32(noise) if noise is not None else np.zeros((len(inputs), 0), np.float32)
        if ref is None:
            ref = net.predict(np.concatenate([inputs, z], axis=1), batch_size=256, verbose=0)
        np.savez(os.path.join(d, "data.npz"), inputs=inputs, noise=z, reference=f32(ref))
        fx.export(os.path.join(d, "flashc"), name, **flashc_kwargs)
        if onnx_layers is not None:
            onnx_from_layers(os.path.join(d, "model.onnx"), onnx_layers, inputs.shape[1], z.shape[1])
        if chain is not None:
            arrs = {}
            for i, (k, b, a) in enumerate(chain):
                arrs[f"k{i}"], arrs[f"b{i}"] = f32(k), f32(b)
            np.savez(os.path.join(d, "weights.npz"), **arrs)
        if scikinc is not None:
            open(os.path.join(d, "scikinc.C"), "w").write(scikinc)
        table[name] = dict(n_in=inputs.shape[1], n_noise=z.shape[1], n_out=int(np.asarray(ref).shape[1]),
                           scope=scope, peers=peers, note=note, torch=torch_kind,
                           activations=None if chain is None else [a for _, _, a in chain])
        print(f"  {name}: {inputs.shape[1]} inputs + {z.shape[1]} noise -> {table[name]['n_out']}", flush=True)

    # --- MLP
    mlp = keras_mlp(keras)
    chain = keras_chain(mlp)
    X = rng.normal(size=(N_ROWS, 12))
    write("mlp", net=mlp, keras_in=X, noise=None, scope="network", peers=["flashc", "scikinc", "ort", "sofie", "torch"],
          note="12 -> 4x128 ReLU -> 4", flashc_kwargs=dict(columns=[f"x{i}" for i in range(12)], net=mlp),
          onnx_layers=chain_layers(chain, False), chain=chain, torch_kind="plain",
          scikinc=scikinc_source({"mlp": mlp}))

    # --- GANs
    for base, src, n_real, n_flags in (("trk_gan", "tracking_resolution", 6, 6), ("pid_gan", "pid_gan", 3, 1)):
        spec, w = load_spec(src)
        chain = dense_chain(spec, w)
        n_noise = spec["noise"]["dim"]
        n_in = chain[0][0].shape[0] - n_noise
        res = keras_gan(keras, base, chain, residual=True)
        seq = keras_gan(keras, base + "_seq", chain, residual=False)
        X = pre_like(rng, N_ROWS, n_real, n_flags)
        if base == "pid_gan":
            X[:, 3] = rng.choice([-1.0, 1.0], N_ROWS)  # the charge column is +-1, not a one-hot flag
        Z = rng.normal(size=(N_ROWS, n_noise))
        cols = [f"c{i}" for i in range(n_in)]
        desc = spec["description"]
        write(base, net=res, keras_in=X, noise=Z, scope="network",
              peers=["flashc", "ort", "sofie", "torch"],
              note=f"generator of models/{src} (residual); {desc}",
              flashc_kwargs=dict(columns=cols, net=res, noise_dim=n_noise),
              onnx_layers=chain_layers(chain, True), chain=chain, torch_kind="residual")
        write(base + "_seq", net=seq, keras_in=X, noise=Z, scope="network", peers=["flashc", "scikinc"],
              note="same weights as a plain Sequential (scikinC converts keras.Sequential only: no Add layer)",
              flashc_kwargs=dict(columns=cols, net=seq, noise_dim=n_noise),
              scikinc=scikinc_source({f"{base}_seq_net": seq},
                                     glue=(f"{base}_seq", n_in, n_noise, chain[-1][0].shape[1], None, None)))
        if base == "trk_gan":
            pre = sk_from_spec(spec, w, "columntransformer_qt", n_in)
            post = sk_from_spec(spec, w, "quantiletransformer", chain[-1][0].shape[1])
            C = trk_conditions(N_ROWS, SEED + 5)
            Zf = rng.normal(size=(N_ROWS, n_noise))
            from flashc_export.sklearn import inverse_transform

            for name, net, peers, note in (
                    ("trk_full", res, ["flashc"],
                     "trk_gan with QT(normal) preprocessing on 6 columns and the inverse QT on the 9 outputs "
                     "(as models/tracking_resolution)"),
                    ("trk_full_seq", seq, ["flashc", "scikinc"],
                     "trk_full with the plain Sequential network (the form scikinC can express)")):
                raw = net.predict(f32(np.concatenate([pre.transform(f32(C).astype(np.float64)), Zf], axis=1)),
                                  batch_size=256, verbose=0)
                ref = inverse_transform(post, raw.astype(np.float64))
                sk = None
                if "scikinc" in peers:
                    sk = scikinc_source({f"{name}_pre": pre, f"{name}_net": net, f"{name}_post": post},
                                        glue=(name, n_in, n_noise, chain[-1][0].shape[1], f"{name}_pre",
                                              f"{name}_post_inverse"))
                write(name, net=net, keras_in=C, noise=Zf, scope="pipeline", peers=peers, note=note, ref=ref,
                      flashc_kwargs=dict(columns=spec["inputs"][0]["columns"], preprocess=pre, net=net,
                                         postprocess=post, noise_dim=n_noise,
                                         output_columns=spec["outputs"][0]["columns"]),
                      scikinc=sk)
    json.dump(table, open(os.path.join(build, "models.json"), "w"), indent=1)


if __name__ == "__main__":
    main()

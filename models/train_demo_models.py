#!/usr/bin/env python3
"""Train, export and make reference fixtures for the flashc demo and test models.

    python models/train_demo_models.py            # from the repository root; CPU only, a few minutes

Writes models/<name>.json + models/<name>.safetensors and tests/fixtures/<name>.safetensors
(tensors `inputs` [N, n_in] f32, `noise` [N, n_noise] f32 when the model has noise, `outputs`
[N, n_out] computed by Keras / PyTorch / scikit-learn themselves). All seeds are fixed: running it
again writes identical files.

Models:
  tracking_acceptance   Lamarr-like acceptance classifier (Keras, QT-normal + passthrough flags, 10 residual tanh blocks)
  tracking_resolution   Lamarr-like resolution GAN generator (Keras, 128 noise, inverse QT on the 9 outputs)
  pid_gan               GlobalPID-like GAN generator (Keras, LeakyReLU(0.1), 64 noise, StandardScaler + logit(0.3) inverse)
  zoo_keras             every Keras layer/activation the exporter supports
  zoo_torch             PyTorch modules and functions, residual blocks and torch.cat (torch.fx)
  zoo_preproc_forward   preprocessing only: MinMax, Standard, QT uniform, QT normal on an integer column, logit, Decorrelate
  zoo_preproc_inverse   the inverse of a column-reordering ColumnTransformer of the same transformers
  zoo_keras_f16         small Keras MLP with float16 weights (fixture computed with the same rounded weights)
  zoo_torch_bf16        small PyTorch MLP with bfloat16 weights and 4 U(0,1) noise columns (fixture computed with the same rounded weights)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import flashc_export as fx  # noqa: E402
from flashc_export import st  # noqa: E402
from flashc_export.reference import evaluate  # noqa: E402
from flashc_export.sklearn import inverse_transform  # noqa: E402

MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
N_FIX = 256
SEED = 20261124
REPORT = []


# ----------------------------------------------------------------------------- toy truth-level detector
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def toy_particles(rng, n):
    """Charged particles at generator level: origin vertex, momentum, direction, species, charge."""
    species = rng.choice(3, size=n, p=[0.1, 0.1, 0.8])  # e, mu, hadron
    charge = rng.choice([-1.0, 1.0], size=n)
    log10_p = np.clip(rng.normal(4.0, 0.45, n), 3.0, 5.7)  # MeV
    eta = rng.uniform(1.2, 5.8, n) + 0.1 * rng.normal(size=n)
    phi = rng.uniform(-np.pi, np.pi, n)
    displaced = rng.random(n) < 0.15
    mc_x = rng.normal(0.0, 0.04, n) + displaced * rng.exponential(2.0, n) * np.cos(phi)
    mc_y = rng.normal(0.0, 0.04, n) + displaced * rng.exponential(2.0, n) * np.sin(phi)
    mc_z = rng.normal(0.0, 45.0, n) + displaced * rng.exponential(60.0, n)
    theta = 2.0 * np.arctan(np.exp(-eta))
    tx = np.tan(theta) * np.cos(phi) + 0.002 * rng.normal(size=n)
    ty = np.tan(theta) * np.sin(phi) + 0.002 * rng.normal(size=n)
    return dict(species=species, charge=charge, log10_p=log10_p, eta=eta, phi=phi, mc_x=mc_x, mc_y=mc_y,
                mc_z=mc_z, tx=tx, ty=ty)


def acceptance_probability(t):
    p = sigmoid(4.0 * (t["eta"] - 1.9)) * sigmoid(4.0 * (5.0 - t["eta"]))
    p *= sigmoid(6.0 * (t["log10_p"] - 3.25))
    p *= 1.0 - 0.25 * sigmoid((np.abs(t["mc_z"]) - 150.0) / 30.0)
    p *= 1.0 - 0.1 * (t["species"] == 0)
    return np.clip(p * (1.0 + 0.05 * t["charge"] * np.sin(t["phi"])), 0.0, 1.0)


def species_flags(s):
    return np.stack([(s == 0), (s == 1), (s == 2)], axis=1).astype(np.float64)


def track_type(rng, n):
    tt = rng.choice(3, size=n, p=[0.75, 0.15, 0.10])  # long, upstream, downstream
    return np.stack([(tt == 0), (tt == 1), (tt == 2)], axis=1).astype(np.float64)


def resolution_targets(rng, cond):
    """9 smeared quantities with heavy-ish tails: dx dy dz dtx dty dp chi2PerDoF nDoF_f ghostProb."""
    n = len(cond)
    p = 10 ** cond[:, 5]
    long_ = cond[:, 9]
    ms = 20.0 / p * (1.5 - 0.5 * long_)  # multiple scattering grows at low p

    def t4(scale):
        return scale * rng.standard_t(4, size=n)

    dx = t4(0.01 + ms)
    dy = t4(0.01 + ms)
    dz = t4(0.05 + 5 * ms)
    dtx = t4(2e-4 + 0.05 * ms)
    dty = t4(2e-4 + 0.05 * ms)
    dp = t4(0.004 + 0.002 * (cond[:, 5] - 3.0)) * (1.0 + 2.0 * cond[:, 6])  # electrons: bremsstrahlung tail
    chi2 = rng.gamma(3.0 + long_, 0.35, n)
    ndof = np.round(np.clip(rng.normal(18 + 14 * long_, 4.0, n), 3, 45))  # integer valued
    ghost = rng.beta(1.0, 25.0 - 10.0 * cond[:, 10], n)
    return np.stack([dx, dy, dz, dtx, dty, dp, chi2, ndof, ghost], axis=1)


def pid_data(rng, n):
    """GlobalPID-like pion sample: conditions (log10 p, eta, nTracks, charge) and 8 outputs
    (4 DLL-like, 4 ProbNN-like in (0, 1))."""
    log10_p = np.clip(rng.normal(4.1, 0.4, n), 3.3, 5.5)
    eta = rng.uniform(1.8, 5.2, n)
    ntracks = rng.poisson(110, n).astype(np.float64)  # integer valued: tied quantiles
    charge = rng.choice([-1.0, 1.0], size=n)
    cond = np.stack([log10_p, eta, ntracks, charge], axis=1)
    occ = (ntracks - 110.0) / 30.0
    sat = sigmoid(3.0 * (log10_p - 4.6))  # RICH saturation at high p
    dll_e = -6.0 + 2.5 * sat + 0.5 * occ + rng.normal(0, 2.5, n) + 1.5 * rng.standard_t(3, n)
    dll_k = -10.0 * (1 - sat) - 1.0 + rng.normal(0, 3.0, n) * (1 + 0.3 * occ.clip(-1, 2))
    dll_p = -12.0 * (1 - sat) - 2.0 + rng.normal(0, 3.5, n)
    dll_mu = -1.0 + 0.3 * (eta - 3.5) + rng.normal(0, 1.5, n)
    z = rng.normal(size=(n, 4))
    logits = np.stack([-3.5 + 0.5 * z[:, 0] + 0.1 * dll_e,
                       2.0 + 0.8 * z[:, 1] - 0.3 * occ - 0.05 * dll_k,
                       -2.5 + 0.8 * z[:, 2] + 0.08 * dll_k,
                       -3.0 + 0.7 * z[:, 3] + 0.06 * dll_p], axis=1)
    probnn = np.clip(sigmoid(logits), 1e-4, 1 - 1e-4)
    return cond, np.concatenate([np.stack([dll_e, dll_k, dll_p, dll_mu], axis=1), probnn], axis=1)


def with_edges(x, train, real_cols):
    """Overwrite the first rows with values at and beyond the range of the real columns (quantile
    clipping and exact tails). `train` is the training data, or a fitted ColumnTransformer whose
    part "qt" is a QuantileTransformer on exactly `real_cols` (then its first/last quantiles are used)."""
    x = x.copy()
    if hasattr(train, "named_transformers_"):
        q = train.named_transformers_["qt"].quantiles_
        lo, hi = q[0], q[-1]
    else:
        lo, hi = train[:, real_cols].min(axis=0), train[:, real_cols].max(axis=0)
    span = hi - lo
    x[0, real_cols] = lo
    x[1, real_cols] = hi
    x[2, real_cols] = lo - 0.5 * span
    x[3, real_cols] = hi + 0.5 * span
    return x


# ----------------------------------------------------------------------------- helpers
def f32(a):
    return np.asarray(a, dtype=np.float32)


def write_fixture(name, inputs, outputs, noise=None):
    t = {"inputs": (f32(inputs), "f32")}
    if noise is not None:
        t["noise"] = (f32(noise), "f32")
    out = np.asarray(outputs)
    t["outputs"] = (out, "f64" if out.dtype == np.float64 else "f32")
    st.save(os.path.join(FIXTURES, name + ".safetensors"), t,
            metadata={"model": name, "producer": "models/train_demo_models.py", "seed": str(SEED)})


def check(name, inputs, outputs, noise=None):
    """Compare the reference evaluator with the framework output and record the max abs error."""
    ref = evaluate(os.path.join(MODELS, name + ".json"), f32(inputs).astype(np.float64),
                   None if noise is None else f32(noise).astype(np.float64))
    err = float(np.max(np.abs(ref - np.asarray(outputs, dtype=np.float64))))
    sc = float(np.max(np.abs(outputs)))
    REPORT.append((name, f32(inputs).shape[1], 0 if noise is None else f32(noise).shape[1],
                   np.asarray(outputs).shape[1], err, sc, str(np.asarray(outputs).dtype)))
    print("REPORT " + json.dumps(REPORT[-1]), flush=True)
    print(f"  {name}: max |reference - framework| = {err:.3g} (max |output| {sc:.3g})", flush=True)


def keras_setup():
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(SEED)
    return keras, tf


def resnet(keras, n_in, n_out, n_res, width, act, out_act, name, leaky=None):
    L = keras.layers
    x = keras.Input((n_in,), name=f"{name}_in")
    if leaky is None:
        h = L.Dense(width, activation=act, name="dense_in")(x)
    else:
        h = L.LeakyReLU(negative_slope=leaky, name="act_in")(L.Dense(width, name="dense_in")(x))
    for i in range(n_res):
        if leaky is None:
            r = L.Dense(width, activation=act, name=f"res{i}_dense")(h)
        else:
            r = L.LeakyReLU(negative_slope=leaky, name=f"res{i}_act")(L.Dense(width, name=f"res{i}_dense")(h))
        h = L.Add(name=f"res{i}_add")([h, r])
    y = L.Dense(n_out, activation=out_act, name="dense_out")(h)
    return keras.Model(x, y, name=name)


def predict(model, x):
    return model.predict(f32(x), batch_size=256, verbose=0)


def train_gan(keras, tf, gen, n_cond, n_noise, n_out, cond, target, steps, name, lr=2e-4):
    """A plain BCE conditional GAN; the discriminator sees (conditions, outputs)."""
    L = keras.layers
    d_in = keras.Input((n_cond + n_out,))
    h = L.Dense(64, activation="relu")(d_in)
    h = L.Dense(64, activation="relu")(h)
    disc = keras.Model(d_in, L.Dense(1)(h), name=f"{name}_disc")
    g_opt = keras.optimizers.Adam(lr, beta_1=0.5)
    d_opt = keras.optimizers.Adam(lr, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    cond = tf.constant(f32(cond))
    target = tf.constant(f32(target))
    rng = np.random.default_rng(SEED + 7)
    batch = 256

    @tf.function
    def step(c, y, z):
        with tf.GradientTape() as gt, tf.GradientTape() as dt:
            fake = gen(tf.concat([c, z], axis=1), training=True)
            dr = disc(tf.concat([c, y], axis=1), training=True)
            df = disc(tf.concat([c, fake], axis=1), training=True)
            d_loss = bce(tf.ones_like(dr), dr) + bce(tf.zeros_like(df), df)
            g_loss = bce(tf.ones_like(df), df)
        d_opt.apply_gradients(zip(dt.gradient(d_loss, disc.trainable_variables), disc.trainable_variables))
        g_opt.apply_gradients(zip(gt.gradient(g_loss, gen.trainable_variables), gen.trainable_variables))
        return d_loss, g_loss

    n = cond.shape[0]
    for s in range(steps):
        idx = rng.integers(0, n, batch)
        z = f32(rng.normal(size=(batch, n_noise)))
        d_loss, g_loss = step(tf.gather(cond, idx), tf.gather(target, idx), tf.constant(z))
    print(f"  {name}: {steps} GAN steps, d_loss {float(d_loss):.3f}, g_loss {float(g_loss):.3f}", flush=True)


# ----------------------------------------------------------------------------- demo models
def make_tracking_acceptance(keras, tf):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(SEED + 1)
    cols = ["mc_x", "mc_y", "mc_z", "log10_p", "tx", "ty", "eta", "phi", "is_e", "is_mu", "is_h", "charge"]

    def table(t):
        return np.column_stack([t["mc_x"], t["mc_y"], t["mc_z"], t["log10_p"], t["tx"], t["ty"], t["eta"], t["phi"],
                                species_flags(t["species"]), t["charge"]])

    t = toy_particles(rng, 30000)
    X = table(t)
    y = (rng.random(len(X)) < acceptance_probability(t)).astype(np.float32)
    pre = ColumnTransformer([("qt", QuantileTransformer(n_quantiles=1000, output_distribution="normal",
                                                        random_state=0), list(range(8)))],
                            remainder="passthrough").fit(X)
    keras.utils.set_random_seed(SEED + 1)
    net = resnet(keras, 12, 1, 10, 128, "tanh", "sigmoid", "tracking_acceptance")
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    hist = net.fit(f32(pre.transform(X)), y, batch_size=256, epochs=3, verbose=0, shuffle=True)
    print(f"  tracking_acceptance: BCE {hist.history['loss'][0]:.4f} -> {hist.history['loss'][-1]:.4f}", flush=True)
    fx.export(os.path.join(MODELS, "tracking_acceptance"), "tracking_acceptance", inputs="particles", columns=cols,
              preprocess=pre, net=net, output_columns=["p_acceptance"],
              description="toy geometrical acceptance: QT(normal) on 8 reals, 4 flags passed through; "
                          "Dense128 tanh + 10 residual tanh blocks + Dense1 sigmoid")
    Xf = with_edges(table(toy_particles(np.random.default_rng(SEED + 101), N_FIX)), pre, list(range(8)))
    Xf = f32(Xf).astype(np.float64)
    out = predict(net, pre.transform(Xf))
    write_fixture("tracking_acceptance", Xf, out)
    check("tracking_acceptance", Xf, out)


def make_tracking_resolution(keras, tf):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(SEED + 2)
    cols = ["x", "y", "z", "tx", "ty", "log10_p", "is_e", "is_mu", "is_h", "is_long", "is_upstream", "is_downstream"]
    out_cols = ["dx", "dy", "dz", "dtx", "dty", "dp", "chi2PerDoF", "nDoF_f", "ghostProb"]

    def conditions(rng, n):
        t = toy_particles(rng, n)
        return np.column_stack([t["mc_x"], t["mc_y"], t["mc_z"] * 0.2, t["tx"], t["ty"], t["log10_p"],
                                species_flags(t["species"]), track_type(rng, n)])

    C = conditions(rng, 30000)
    Y = resolution_targets(rng, C)
    pre = ColumnTransformer([("qt", QuantileTransformer(n_quantiles=1000, output_distribution="normal",
                                                        random_state=0), list(range(6)))],
                            remainder="passthrough").fit(C)
    post = QuantileTransformer(n_quantiles=1000, output_distribution="normal", random_state=0).fit(Y)
    keras.utils.set_random_seed(SEED + 2)
    gen = resnet(keras, 12 + 128, 9, 10, 128, "tanh", None, "tracking_resolution")
    train_gan(keras, tf, gen, 12, 128, 9, pre.transform(C), post.transform(Y), 400, "tracking_resolution")
    fx.export(os.path.join(MODELS, "tracking_resolution"), "tracking_resolution", inputs="conditions", columns=cols,
              preprocess=pre, net=gen, postprocess=post, noise_dim=128, output_columns=out_cols,
              description="toy tracking resolution GAN generator: QT(normal) on 6 reals + 6 flags, 128 N(0,1) noise; "
                          "Dense128 tanh + 10 residual tanh blocks + Dense9; outputs through the inverse QT(normal)")
    rf = np.random.default_rng(SEED + 102)
    Cf = f32(with_edges(conditions(rf, N_FIX), pre, list(range(6)))).astype(np.float64)
    Z = f32(rf.normal(size=(N_FIX, 128)))
    raw = predict(gen, np.concatenate([pre.transform(Cf), Z], axis=1))
    out = f32(post.inverse_transform(raw.astype(np.float64)))
    write_fixture("tracking_resolution", Cf, out, Z)
    check("tracking_resolution", Cf, out, Z)


def make_pid_gan(keras, tf):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

    rng = np.random.default_rng(SEED + 3)
    cols = ["log10_p", "eta", "nTracks", "charge"]
    out_cols = ["PIDe", "PIDK", "PIDp", "PIDmu", "ProbNNe", "ProbNNpi", "ProbNNk", "ProbNNp"]
    C, Y = pid_data(rng, 30000)
    pre = ColumnTransformer([("qt", QuantileTransformer(n_quantiles=1000, output_distribution="normal",
                                                        random_state=0), [0, 1, 2])],
                            remainder="passthrough").fit(C)
    post = ColumnTransformer([("dll", StandardScaler(), [0, 1, 2, 3]), ("probnn", fx.logit(0.3), [4, 5, 6, 7])]).fit(Y)
    keras.utils.set_random_seed(SEED + 3)
    gen = resnet(keras, 4 + 64, 8, 4, 128, None, None, "pid_gan", leaky=0.1)
    train_gan(keras, tf, gen, 4, 64, 8, pre.transform(C), post.transform(Y), 400, "pid_gan")
    fx.export(os.path.join(MODELS, "pid_gan"), "pid_gan", inputs="conditions", columns=cols, preprocess=pre,
              net=gen, postprocess=post, noise_dim=64, output_columns=out_cols,
              description="toy GlobalPID-like GAN generator (pions): QT(normal) on log10_p, eta, nTracks; 64 noise; "
                          "Dense128 LeakyReLU(0.1) + 4 residual blocks + Dense8; StandardScaler inverse on the "
                          "DLLs, logit(0.3) inverse on the ProbNNs")
    rf = np.random.default_rng(SEED + 103)
    Cf = f32(with_edges(pid_data(rf, N_FIX)[0], pre, [0, 1, 2])).astype(np.float64)
    Z = f32(rf.normal(size=(N_FIX, 64)))
    raw = predict(gen, np.concatenate([pre.transform(Cf), Z], axis=1))
    out = f32(inverse_transform(post, raw.astype(np.float64)))
    write_fixture("pid_gan", Cf, out, Z)
    check("pid_gan", Cf, out, Z)


# ----------------------------------------------------------------------------- op zoo
def make_zoo_keras(keras, tf):
    from flashc_export.keras import gelu_tanh

    L = keras.layers
    keras.utils.set_random_seed(SEED + 4)
    x = keras.Input((10,), name="zoo_in")
    h = L.Dense(32, activation="elu", name="d_elu")(x)
    h = L.BatchNormalization(epsilon=1e-3, name="bn")(h)
    h = L.Dense(32, activation="selu", name="d_selu")(h)
    h = L.Dense(32, activation="silu", name="d_silu")(h)
    h = L.Dense(32, activation="swish", name="d_swish")(h)
    a = L.Dense(32, activation="gelu", name="d_gelu")(h)
    b = L.Dense(32, activation=gelu_tanh, name="d_gelu_tanh")(h)
    h = L.Add(name="add")([a, b])
    h = L.LayerNormalization(epsilon=1e-5, name="ln")(h)
    h = L.BatchNormalization(epsilon=0.01, center=False, name="bn_noshift")(h)
    s1 = L.Dense(16, activation="softplus", name="d_softplus")(h)
    s2 = L.Dense(16, activation="sigmoid", name="d_sigmoid")(h)
    s3 = L.Dense(16, activation="relu", name="d_relu")(h)
    h = L.Concatenate(name="cat")([s1, s2, s3])
    h = L.Dense(32, activation="leaky_relu", name="d_leaky_default")(h)
    h = L.LeakyReLU(negative_slope=0.3, name="leaky")(L.Dense(32, name="d_pre_leaky")(h))
    h = L.ELU(alpha=0.7, name="elu_layer")(L.Dense(32, name="d_pre_elu")(h))
    h = L.Activation("tanh", name="act_tanh")(h)
    h = L.LayerNormalization(epsilon=1e-3, center=False, scale=False, name="ln_plain")(h)
    h = L.Dropout(0.1, name="dropout")(h)
    h = L.ReLU(name="relu_layer")(L.Dense(32, name="d_pre_relu")(h))
    p = L.Softmax(name="softmax")(L.Dense(6, name="d_logits")(h))
    q = L.Dense(4, activation="softmax", name="d_softmax")(h)
    r = L.Dense(3, name="d_linear")(h)
    y = L.Concatenate(name="out")([p, q, r])
    net = keras.Model(x, y, name="zoo_keras")
    rng = np.random.default_rng(SEED + 4)
    X = rng.normal(size=(4096, 10)) * np.linspace(0.5, 3.0, 10) + np.linspace(-1, 1, 10)
    T = np.concatenate([sigmoid(X[:, :6]), sigmoid(X[:, 6:10]), np.tanh(X[:, :3])], axis=1)
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    net.fit(f32(X), f32(T), batch_size=128, epochs=2, verbose=0, shuffle=True)
    fx.export(os.path.join(MODELS, "zoo_keras"), "zoo_keras", columns=[f"x{i}" for i in range(10)], net=net,
              description="test model: every supported Keras layer and activation")
    Xf = f32(np.random.default_rng(SEED + 104).normal(size=(N_FIX, 10)) * 2.0)
    out = predict(net, Xf)
    write_fixture("zoo_keras", Xf, out)
    check("zoo_keras", Xf, out)


def make_zoo_keras_f16(keras, tf):
    L = keras.layers
    keras.utils.set_random_seed(SEED + 5)
    x = keras.Input((8,))
    h = L.Dense(32, activation="tanh")(x)
    h = L.Add()([h, L.Dense(32, activation="tanh")(h)])
    net = keras.Model(x, L.Dense(4)(h), name="zoo_keras_f16")
    rng = np.random.default_rng(SEED + 5)
    X = rng.normal(size=(4096, 8))
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    net.fit(f32(X), f32(np.sin(X[:, :4]) * X[:, 4:]), batch_size=128, epochs=2, verbose=0)
    fx.export(os.path.join(MODELS, "zoo_keras_f16"), "zoo_keras_f16", columns=[f"x{i}" for i in range(8)], net=net,
              dtype="f16", description="test model: float16 weights")
    for layer in net.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([fx.round_to_dtype(w, "f16") for w in ws])
    Xf = f32(np.random.default_rng(SEED + 105).normal(size=(N_FIX, 8)))
    out = predict(net, Xf)
    write_fixture("zoo_keras_f16", Xf, out)
    check("zoo_keras_f16", Xf, out)


def torch_setup():
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    return torch


def make_zoo_torch(torch):
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, n, act):
            super().__init__()
            self.lin = nn.Linear(n, n)
            self.act = act

        def forward(self, x):
            return x + self.act(self.lin(x))

    class Zoo(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(10, 32)
            self.bn = nn.BatchNorm1d(32, eps=1e-3)
            self.gelu_t = nn.GELU(approximate="tanh")
            self.res1 = Block(32, nn.SiLU())
            self.ln = nn.LayerNorm(32, eps=1e-5)
            self.elu = nn.ELU(alpha=0.5)
            self.l2 = nn.Linear(32, 32)
            self.selu = nn.SELU()
            self.l3 = nn.Linear(32, 32)
            self.softplus = nn.Softplus(beta=2.0, threshold=5.0)
            self.res2 = Block(32, nn.GELU())
            self.a = nn.Linear(32, 16)
            self.b = nn.Linear(32, 16, bias=False)
            self.seq = nn.Sequential(nn.Linear(32, 32), nn.LeakyReLU(0.05), nn.Linear(32, 32), nn.Tanh(),
                                     nn.BatchNorm1d(32, eps=1e-5, affine=False), nn.Dropout(0.1),
                                     nn.LayerNorm(32, elementwise_affine=False, eps=1e-4))
            self.head_p = nn.Linear(32, 5)
            self.sm = nn.Softmax(dim=-1)
            self.head_s = nn.Linear(32, 3)
            self.sig = nn.Sigmoid()
            self.head_l = nn.Linear(32, 2)

        def forward(self, x):
            h = self.gelu_t(self.bn(self.inp(x)))
            h = self.ln(self.res1(h))
            h = self.elu(h)
            h = self.selu(self.l2(h))
            h = self.softplus(self.l3(h)) + h
            h = self.res2(h)
            h = torch.cat([F.relu(self.a(h)), torch.tanh(self.b(h))], dim=-1) + h
            h = F.silu(self.seq(h))
            h = F.leaky_relu(h, 0.2) + F.elu(h)
            return torch.cat((self.sm(self.head_p(h)), self.sig(self.head_s(h)), self.head_l(h)), dim=1)

    torch.manual_seed(SEED + 6)
    net = Zoo()
    rng = np.random.default_rng(SEED + 6)
    X = torch.tensor(f32(rng.normal(size=(4096, 10)) * np.linspace(0.5, 3.0, 10) + np.linspace(-1, 1, 10)))
    T = torch.cat([torch.softmax(X[:, :5], -1), torch.sigmoid(X[:, 5:8]), X[:, 8:10]], dim=1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for i in range(0, 4096, 128):
        opt.zero_grad()
        loss = F.mse_loss(net(X[i:i + 128]), T[i:i + 128])
        loss.backward()
        opt.step()
    net.eval()
    fx.export(os.path.join(MODELS, "zoo_torch"), "zoo_torch", columns=[f"x{i}" for i in range(10)], net=net,
              description="test model: PyTorch modules, functions, residual blocks and torch.cat")
    Xf = f32(np.random.default_rng(SEED + 106).normal(size=(N_FIX, 10)) * 2.0)
    with torch.no_grad():
        out = net(torch.tensor(Xf)).numpy()
    write_fixture("zoo_torch", Xf, out)
    check("zoo_torch", Xf, out)


def make_zoo_torch_bf16(torch):
    import torch.nn as nn

    torch.manual_seed(SEED + 7)
    net = nn.Sequential(nn.Linear(12, 32), nn.SiLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
    rng = np.random.default_rng(SEED + 7)
    X = torch.tensor(f32(np.concatenate([rng.normal(size=(2048, 8)), rng.random((2048, 4))], axis=1)))
    T = torch.sin(X[:, :4]) * X[:, 4:8] + 0.3 * X[:, 8:12]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for i in range(0, 2048, 128):
        opt.zero_grad()
        loss = ((net(X[i:i + 128]) - T[i:i + 128]) ** 2).mean()
        loss.backward()
        opt.step()
    net.eval()
    fx.export(os.path.join(MODELS, "zoo_torch_bf16"), "zoo_torch_bf16", columns=[f"x{i}" for i in range(8)], net=net,
              noise_dim=4, noise_distribution="uniform", dtype="bf16",
              description="test model: bfloat16 weights, 4 U(0,1) noise columns")
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.tensor(fx.round_to_dtype(p.numpy(), "bf16")))
    rf = np.random.default_rng(SEED + 107)
    Xf = f32(rf.normal(size=(N_FIX, 8)))
    Z = f32(rf.random((N_FIX, 4)))
    with torch.no_grad():
        out = net(torch.tensor(np.concatenate([Xf, Z], axis=1))).numpy()
    write_fixture("zoo_torch_bf16", Xf, out, Z)
    check("zoo_torch_bf16", Xf, out, Z)


def preproc_data(rng, n):
    a = rng.lognormal(0.0, 0.7, n)                    # MinMaxScaler
    b = rng.normal(3.0, 2.0, n)                       # StandardScaler
    c = rng.gamma(2.0, 1.5, n)                        # QuantileTransformer(uniform)
    d = rng.poisson(4.0, n).astype(np.float64)        # QuantileTransformer(normal), integer valued (ties)
    e = sigmoid(rng.normal(0.0, 1.5, n))              # logit(0.3), in (0, 1)
    f = rng.normal(0.0, 1.0, n)
    g = 0.8 * f + 0.4 * rng.normal(size=n) + 1.0      # Decorrelate on (f, g)
    h = rng.uniform(-1.0, 1.0, n)                     # passthrough
    return np.stack([a, b, c, d, e, f, g, h], axis=1)


PRE_COLS = ["a_minmax", "b_standard", "c_qt_uniform", "d_qt_normal_int", "e_logit", "f_decorr", "g_decorr", "h_pass"]


def make_zoo_preproc():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import MinMaxScaler, QuantileTransformer, StandardScaler

    rng = np.random.default_rng(SEED + 8)
    X = preproc_data(rng, 5000)

    def parts():
        return [("mm", MinMaxScaler(), [0]), ("ss", StandardScaler(), [1]),
                ("qtu", QuantileTransformer(n_quantiles=200, output_distribution="uniform", random_state=0), [2]),
                ("qtn", QuantileTransformer(n_quantiles=200, output_distribution="normal", random_state=0), [3]),
                ("logit", fx.logit(0.3), [4]), ("dec", fx.Decorrelate(), [5, 6])]

    # forward: column order kept (the parts are listed in input order, remainder last)
    fwd = ColumnTransformer(parts(), remainder="passthrough").fit(X)
    fx.export(os.path.join(MODELS, "zoo_preproc_forward"), "zoo_preproc_forward", columns=PRE_COLS, preprocess=fwd,
              output_columns=[f"t_{c}" for c in PRE_COLS],
              description="test model: sklearn preprocessing forward (MinMax, Standard, QT uniform, QT normal on an "
                          "integer column, logit 0.3, Decorrelate, passthrough)")
    rf = np.random.default_rng(SEED + 108)
    Xf = preproc_data(rf, N_FIX)
    Xf = with_edges(Xf, X, [0, 1, 2, 3, 5, 6])
    Xf[4, 3] = 4.0   # exactly on a tied quantile
    Xf[5, 3] = 4.5   # between tied levels
    Xf = f32(Xf).astype(np.float64)
    out = np.asarray(fwd.transform(Xf), dtype=np.float64)
    write_fixture("zoo_preproc_forward", Xf, out)
    check("zoo_preproc_forward", Xf, out)

    # inverse: the parts are listed out of input order, so sklearn's output order differs from the
    # input order and the exported model routes the columns back
    p = dict((n, (n, t, c)) for n, t, c in parts())
    # (Decorrelate on the columns in reverse order [6, 5]: parameter tensors follow `columns`, not the input order)
    inv = ColumnTransformer([("dec", fx.Decorrelate(), [6, 5]), p["qtn"], p["mm"], p["logit"], p["qtu"], p["ss"]],
                            remainder="passthrough").fit(X)
    order = [6, 5, 3, 0, 4, 2, 1, 7]
    fx.export(os.path.join(MODELS, "zoo_preproc_inverse"), "zoo_preproc_inverse",
              columns=[f"t_{PRE_COLS[i]}" for i in order], postprocess=inv, output_columns=PRE_COLS,
              description="test model: inverse of a column-reordering ColumnTransformer (sklearn output order in, "
                          "original column order out)")
    Yf = inv.transform(f32(preproc_data(np.random.default_rng(SEED + 109), N_FIX)).astype(np.float64))
    Yf[0, 1] = 6.0     # QT normal beyond the clip bound
    Yf[1, 1] = -6.0
    Yf[2, 5] = 0.0     # QT uniform at the ends
    Yf[3, 5] = 1.0
    Yf[4, 5] = 0.5
    Yf = f32(Yf).astype(np.float64)
    out = inverse_transform(inv, Yf)
    write_fixture("zoo_preproc_inverse", Yf, out)
    check("zoo_preproc_inverse", Yf, out)


def run_part(part):
    if part == "sklearn":
        make_zoo_preproc()
    elif part == "keras":
        keras, tf = keras_setup()
        make_zoo_keras(keras, tf)
        make_zoo_keras_f16(keras, tf)
        make_tracking_acceptance(keras, tf)
        make_tracking_resolution(keras, tf)
        make_pid_gan(keras, tf)
    elif part == "torch":
        torch = torch_setup()
        make_zoo_torch(torch)
        make_zoo_torch_bf16(torch)
    else:
        raise SystemExit(f"unknown part {part!r}; use sklearn, keras or torch")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    if len(sys.argv) == 3 and sys.argv[1] == "--part":
        run_part(sys.argv[2])
        return
    # TensorFlow and PyTorch cannot share one process (their bundled LLVMs clash): one process per framework
    rows = []
    for part in ("sklearn", "keras", "torch"):
        print(f"== {part} models", flush=True)
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--part", part], stdout=subprocess.PIPE,
                           text=True)
        for line in p.stdout.splitlines():
            if line.startswith("REPORT "):
                rows.append(json.loads(line[7:]))
            else:
                print(line, flush=True)
        if p.returncode != 0:
            raise SystemExit(f"the {part} part failed (exit status {p.returncode})")
    print("\nmodel                  n_in n_noise n_out  max|ref-framework|  max|out|  fixture dtype")
    for name, ni, nn_, no, err, sc, dt in rows:
        print(f"{name:22s} {ni:4d} {nn_:7d} {no:5d}  {err:18.3g}  {sc:8.3g}  {dt}")


if __name__ == "__main__":
    main()

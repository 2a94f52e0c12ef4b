#!/usr/bin/env python3
"""Toy detector and the demo models of the simulator pipelines.

    python models/toy_detector.py            # from the repository root; CPU only, a few minutes on 2 cores
    python models/toy_detector.py --quick    # a tenth of the training steps (for trying changes out)

The toy detector is a set of parametric truth-level functions written in this file: acceptance and
reconstruction probabilities, smearing with a resolution that grows at low momentum, track-type
fractions, track covariance matrices, particle-identification responses per species, a photon
calorimeter response and CMS-like muon and electron reconstruction. Every formula is described in
docs/toy-detector.md. Training samples of generator-level particles are drawn from it (distributions
like the simulator's particle gun), every model below is trained briefly on them, exported with
flashc_export and given a reference fixture:

  models/<name>.json + models/<name>.safetensors   the flashc/1 spec and its weights
  tests/fixtures/<name>.safetensors                `inputs` [256, n_in], `noise` [256, n_noise] (GANs),
                                                   `outputs` [256, n_out] computed by Keras / PyTorch themselves

Models (input / output column contract in docs/toy-detector.md):
  lamarr_acceptance, lamarr_efficiency                  Keras classifiers on the 12 charged truth features
  lamarr_resolution, lamarr_covariance                  Keras conditional GAN generators (track reco - truth, covariance)
  lamarr_ismuon                                         Keras classifier on the 8 PID conditions
  lamarr_rich, lamarr_muon, lamarr_gpid_muon,
  lamarr_gpid_nomuon                                    Keras conditional GAN generators (RICH, muon system, GlobalPID)
  lamarr_photon_efficiency, lamarr_photon_resolution    Keras classifier and GAN generator (calorimeter photons)
  flashsim_muon_efficiency, flashsim_electron_efficiency    PyTorch classifiers (CMS-like objects)
  flashsim_muon_flow, flashsim_electron_flow            PyTorch conditional flow-matching vector fields

Preprocessing is StandardScaler only (cheap at run time). GAN outputs that must stay positive or in
(0, 1) come from softplus / sigmoid output units and are not rescaled. The flows work in a
standardised target space; the mean and std of each target column are written in the spec's
description and in docs/toy-detector.md (x = mean + std * x_std after integration).

All seeds are fixed and everything runs on the CPU: running it again on the same machine writes
identical files (oneDNN kernels may round differently on another CPU).
TensorFlow and PyTorch run in separate processes (their bundled LLVMs clash in one process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import flashc_export as fx  # noqa: E402
from flashc_export import st  # noqa: E402
from flashc_export.reference import evaluate  # noqa: E402

MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
N_FIX = 256
SEED = 20270311
QUICK = False  # --quick: a tenth of the training steps

# ============================================================================= column contract
TRUTH = ["ctb_x", "ctb_y", "ctb_z", "log10_p", "tx", "ty", "eta", "phi", "charge", "is_e", "is_mu", "is_h"]
TYPE = ["is_long", "is_upstream", "is_downstream"]
RES_OUT = ["dx", "dy", "dz", "dtx", "dty", "dp_rel", "chi2_per_dof", "ndof", "ghost_prob"]
COV_OUT = ["log_l0", "log_l1", "log_l2", "log_l3", "log_l4",
           "l10", "l20", "l21", "l30", "l31", "l32", "l40", "l41", "l42", "l43"]
PID = ["log10_p", "eta", "n_tracks", "charge", "is_mu", "is_pi", "is_k", "is_p"]
RICH_OUT = ["rich_dll_e", "rich_dll_mu", "rich_dll_k", "rich_dll_p"]
MUON_OUT = ["muon_mu_ll", "muon_bg_ll"]
GPID_OUT = ["pid_mu", "pid_k", "pid_p", "pid_e", "probnn_mu", "probnn_pi", "probnn_k", "probnn_p"]
PHOTON = ["ecal_x", "ecal_y", "log10_e", "tx", "ty"]
PHOTON_OUT = ["dx", "dy", "de_rel", "photon_id", "is_not_e", "is_not_h"]
MUGEN = ["gen_log10_pt", "gen_eta", "gen_phi", "gen_charge"]
ELEGEN = MUGEN + ["n_reco_muons", "dr_muon"]
FLOW_X = ["x0", "x1", "x2", "x3"]
FLOW_OUT = ["v0", "v1", "v2", "v3"]
FLOW_TARGETS = ["pt_ratio", "d_eta", "d_phi", "iso"]

# species codes of the toy
E, MU, PI, K, P = 0, 1, 2, 3, 4
MASS = {E: 0.000511, MU: 0.10566, PI: 0.13957, K: 0.49368, P: 0.93827}
ECAL_Z = 12620.0  # mm, calorimeter face


# ============================================================================= toy detector: helpers
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def gun_momentum(rng, n, lo=1.0, hi=200.0):
    """Half log-uniform in [lo, hi], half flat in [2, 100] GeV."""
    logu = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return np.where(rng.random(n) < 0.5, logu, rng.uniform(2.0, 100.0, n))


def gun_vertex(rng, n):
    """Beam spot (0.04, 0.04, 45) mm; 10 % displaced by a parent flight: 70 % short (exponential
    15 mm, b/c-like), 30 % long (exponential 400 mm, V0-like), parent slopes N(0, 0.08)."""
    x, y, z = rng.normal(0.0, 0.04, n), rng.normal(0.0, 0.04, n), rng.normal(0.0, 45.0, n)
    displaced = rng.random(n) < 0.10
    flight = np.where(rng.random(n) < 0.3, rng.exponential(400.0, n), rng.exponential(15.0, n)) * displaced
    return x + flight * rng.normal(0.0, 0.08, n), y + flight * rng.normal(0.0, 0.08, n), z + flight


def forward_direction(rng, n):
    eta = rng.uniform(1.8, 5.5, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    theta = 2.0 * np.arctan(np.exp(-eta))
    return eta, phi, np.tan(theta) * np.cos(phi), np.tan(theta) * np.sin(phi)


def closest_to_beam(x0, y0, z0, tx, ty):
    s = -(x0 * tx + y0 * ty) / (tx * tx + ty * ty)
    return x0 + tx * s, y0 + ty * s, z0 + s


def charged_gun(rng, n, fractions=(0.10, 0.12, 0.55, 0.15, 0.08)):
    """Generator-level charged particles of the forward (LHCb-like) gun: species e, mu, pi, K, p."""
    species = rng.choice(5, size=n, p=np.asarray(fractions) / np.sum(fractions))
    charge = rng.choice([-1.0, 1.0], size=n)
    p = gun_momentum(rng, n)
    x0, y0, z0 = gun_vertex(rng, n)
    eta, phi, tx, ty = forward_direction(rng, n)
    cx, cy, cz = closest_to_beam(x0, y0, z0, tx, ty)
    return dict(species=species, charge=charge, p=p, eta=eta, phi=phi, tx=tx, ty=ty, ctb_x=cx, ctb_y=cy, ctb_z=cz)


def truth_table(g):
    s = g["species"]
    return np.column_stack([g["ctb_x"], g["ctb_y"], g["ctb_z"], np.log10(g["p"]), g["tx"], g["ty"], g["eta"],
                            g["phi"], g["charge"], s == E, s == MU, (s == PI) | (s == K) | (s == P)]).astype(np.float64)


# ============================================================================= toy detector: tracking
def acceptance_probability(T):
    """T: TRUTH table. Geometry of the tracking stations after the magnet kick."""
    p = 10 ** T[:, 3]
    tx, ty, q, ctb_z = T[:, 4], T[:, 5], T[:, 8], T[:, 2]
    theta = np.hypot(tx, ty)
    tx_after = tx + q * 1.2 / p  # pT kick of the dipole, 1.2 GeV
    acc = sigmoid((0.30 - np.abs(tx_after)) / 0.01) * sigmoid((0.25 - np.abs(ty)) / 0.01)
    acc *= sigmoid((theta - 0.012) / 0.002)         # beam pipe
    acc *= sigmoid((p - 1.5) / 0.2)                  # swept out by the magnet
    acc *= sigmoid((2300.0 - ctb_z) / 100.0)         # produced after the first tracker
    return np.clip(acc * (0.99 - 0.02 * T[:, 9]), 0.0, 1.0)


def efficiency_logits(T):
    """Softmax logits of (not reconstructed, long, upstream, downstream) for accepted particles."""
    lp, ctb_z, is_e = T[:, 3], T[:, 2], T[:, 9]
    theta = np.hypot(T[:, 4], T[:, 5])
    late = sigmoid((ctb_z - 500.0) / 80.0)  # produced after the vertex detector
    z_long = 2.6 + 1.0 * np.tanh(2.5 * (lp - 0.7)) - 0.7 * is_e - 3.5 * late - 1.0 * sigmoid((theta - 0.28) / 0.02)
    z_up = 2.5 - 1.5 * (lp - 0.5) - 3.5 * late
    z_down = 0.4 + 5.0 * late + 0.3 * T[:, 11]
    return np.stack([np.zeros_like(lp), z_long, z_up, z_down], axis=1)


def efficiency_probabilities(T):
    z = efficiency_logits(T)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sample_types(rng, T):
    """Reconstructed tracks only: track type drawn from the efficiency probabilities given it is
    reconstructed (as the pipeline does). Returns the TYPE one-hot table."""
    pr = efficiency_probabilities(T)[:, 1:]
    pr /= pr.sum(axis=1, keepdims=True)
    u = rng.random(len(T))[:, None]
    k = (u > np.cumsum(pr, axis=1)).sum(axis=1)
    return np.stack([k == 0, k == 1, k == 2], axis=1).astype(np.float64)


def tailed(rng, n, sigma, tail=0.05, factor=3.0):
    """Gaussian core with a `tail` fraction `factor` times wider."""
    return sigma * rng.normal(size=n) * np.where(rng.random(n) < tail, factor, 1.0)


def resolution_truth(rng, T, Y):
    """reco - truth of the tracks (TRUTH T, TYPE Y): dx dy dz dtx dty dp_rel chi2_per_dof ndof ghost_prob."""
    n = len(T)
    p = 10 ** T[:, 3]
    theta = np.hypot(T[:, 4], T[:, 5])
    pt = np.maximum(p * np.sin(np.arctan(theta)), 0.05)
    up, down = Y[:, 1], Y[:, 2]
    f_pos = 1.0 + 0.4 * up + 5.0 * down
    f_slope = 1.0 + 0.2 * up + 2.0 * down
    f_p = 1.0 + 3.0 * up + 0.3 * down
    s_x = (0.011 + 0.025 / pt) * f_pos
    s_z = s_x / np.maximum(theta, 0.02)
    s_t = (1.5e-4 + 2.0e-3 / p) * f_slope
    s_p = np.hypot(0.0045, 2.5e-5 * p) * f_p
    dx, dy, dz = tailed(rng, n, s_x), tailed(rng, n, s_x), tailed(rng, n, s_z)
    dtx, dty = tailed(rng, n, s_t), tailed(rng, n, s_t)
    brem = (T[:, 9] > 0.5) & (rng.random(n) < 0.6)
    dp = tailed(rng, n, s_p) - brem * np.minimum(rng.exponential(0.04, n), 0.8)
    ndof = np.where(up > 0.5, rng.normal(12.0, 2.0, n),
                    np.where(down > 0.5, rng.normal(18.0, 2.5, n), rng.normal(26.0 + 4.0 * np.tanh(T[:, 6] - 3.0), 3.0, n)))
    ndof = np.maximum(np.round(ndof), 4.0)
    chi2 = rng.chisquare(ndof) / ndof * (1.0 + 0.2 * T[:, 9] + 0.15 * up) * np.where(rng.random(n) < 0.03, 2.0, 1.0)
    ghost = np.where(up > 0.5, rng.beta(1.2, 12.0, n), np.where(down > 0.5, rng.beta(1.1, 18.0, n), rng.beta(1.0, 40.0, n)))
    return np.stack([dx, dy, dz, dtx, dty, dp, chi2, ndof, ghost], axis=1)


def covariance_truth(rng, T, Y, R):
    """Cholesky parameters of the 5x5 covariance of (x, y, tx, ty, q/p) [mm, rad, 1/GeV] for tracks
    with TRUTH T, TYPE Y and the resolution outputs R (chi2_per_dof, ndof used)."""
    n = len(T)
    p = 10 ** T[:, 3]
    lp, q = T[:, 3], T[:, 8]
    theta = np.hypot(T[:, 4], T[:, 5])
    pt = np.maximum(p * np.sin(np.arctan(theta)), 0.05)
    up, down = Y[:, 1], Y[:, 2]
    quality = np.sqrt(np.clip(R[:, 6], 0.3, 5.0)) * np.sqrt(26.0 / np.clip(R[:, 7], 4.0, 60.0)) ** 0.5
    jitter = lambda s: np.exp(rng.normal(0.0, s, n))  # noqa: E731
    s_x = (0.010 + 0.022 / pt) * (1.0 + 0.4 * up + 5.0 * down) * quality * jitter(0.08)
    s_y = s_x * jitter(0.05)
    s_tx = (1.4e-4 + 1.8e-3 / p) * (1.0 + 0.2 * up + 2.0 * down) * quality * jitter(0.08)
    s_ty = s_tx * jitter(0.05)
    s_qop = np.hypot(0.004, 2.5e-5 * p) * (1.0 + 3.0 * up + 0.3 * down) / p * quality * jitter(0.08)
    sig = np.stack([s_x, s_y, s_tx, s_ty, s_qop], axis=1)
    rho_xt = 0.75 + 0.12 * np.tanh(lp - 1.0) - 0.1 * down + rng.normal(0.0, 0.02, n)
    rho_yt = rho_xt + rng.normal(0.0, 0.02, n)
    corr = np.zeros((n, 5, 5))
    corr[:, range(5), range(5)] = 1.0
    pairs = {(0, 2): rho_xt, (1, 3): rho_yt, (2, 4): 0.15 * q + rng.normal(0.0, 0.03, n),
             (0, 4): 0.08 * q + rng.normal(0.0, 0.02, n), (0, 1): rng.normal(0.0, 0.02, n),
             (2, 3): rng.normal(0.0, 0.02, n), (1, 4): rng.normal(0.0, 0.02, n), (3, 4): rng.normal(0.0, 0.02, n),
             (0, 3): rng.normal(0.0, 0.02, n), (1, 2): rng.normal(0.0, 0.02, n)}
    for (i, j), r in pairs.items():
        corr[:, i, j] = corr[:, j, i] = np.clip(r, -0.95, 0.95)
    cov = corr * sig[:, :, None] * sig[:, None, :]
    L = np.linalg.cholesky(cov)
    d = np.einsum("nii->ni", L)
    out = [np.log(d[:, i]) for i in range(5)]
    out += [L[:, i, j] / d[:, i] for i in range(1, 5) for j in range(i)]
    return np.stack(out, axis=1)


def covariance_from_cholesky(o):
    """The contract: L[i][i] = exp(log_l{i}), L[i][j] = l{i}{j} * L[i][i]; C = L L^T."""
    n = len(o)
    L = np.zeros((n, 5, 5))
    for i in range(5):
        L[:, i, i] = np.exp(o[:, i])
    k = 5
    for i in range(1, 5):
        for j in range(i):
            L[:, i, j] = o[:, k] * L[:, i, i]
            k += 1
    return L @ np.transpose(L, (0, 2, 1))


# ============================================================================= toy detector: PID
def pid_gun(rng, n, fractions=(0.2, 0.45, 0.2, 0.15)):
    """Reconstructed long tracks that get PID: species mu, pi, K, p; reco p 2-200 GeV; n_tracks a
    gamma-mixed Poisson clipped to 5-150."""
    species = np.array([MU, PI, K, P])[rng.choice(4, size=n, p=np.asarray(fractions) / np.sum(fractions))]
    p = gun_momentum(rng, n, lo=2.0)
    eta = rng.uniform(1.9, 5.0, n)
    ntr = np.clip(rng.poisson(rng.gamma(3.0, 20.0, n)), 5, 150).astype(np.float64)
    charge = rng.choice([-1.0, 1.0], size=n)
    C = np.column_stack([np.log10(p), eta, ntr, charge, species == MU, species == PI, species == K, species == P])
    return C.astype(np.float64), species


def ismuon_probability(C, species):
    p, eta, ntr = 10 ** C[:, 0], C[:, 1], C[:, 2]
    reach = sigmoid((p - 3.5) / 0.5)  # must cross the calorimeters and the iron
    geo = sigmoid((eta - 1.95) / 0.05) * sigmoid((4.95 - eta) / 0.05)
    mis = np.select([species == PI, species == K, species == P],
                    [0.008 + 0.25 / p, 0.006 + 0.15 / p, 0.004 + 0.02 / p], 0.0) + 0.0001 * ntr
    return np.where(species == MU, 0.97 * geo * reach, np.minimum(mis, 0.2) * reach * geo)


def cherenkov_angle(p, m, n_rad=1.0014):
    beta = p / np.sqrt(p * p + m * m)
    return np.arccos(np.minimum(1.0 / (n_rad * beta), 1.0))


def rich_truth(rng, C, species):
    """DLL(h - pi) for h = e, mu, K, p from one measured Cherenkov angle: Gaussian likelihoods with
    a floor, resolution 0.9 mrad below 15 GeV improving to 0.3 mrad (second radiator) and degrading
    with occupancy; no information outside 2 < eta < 4.9."""
    n = len(C)
    p, eta, ntr = 10 ** C[:, 0], C[:, 1], C[:, 2]
    m_true = np.vectorize(MASS.get)(species)
    sig = (0.3e-3 + 0.6e-3 * sigmoid((15.0 - p) / 3.0)) * (1.0 + ntr / 150.0)
    th_m = cherenkov_angle(p, m_true) + sig * rng.normal(size=n)

    def lnl(m):
        return np.log(np.exp(-0.5 * ((th_m - cherenkov_angle(p, m)) / sig) ** 2) + 1e-10)

    ref = lnl(MASS[PI])
    inside = (eta > 2.0) & (eta < 4.9)
    out = []
    for s in (E, MU, K, P):
        d = np.where(inside, lnl(MASS[s]) - ref, 0.0) + rng.normal(0.0, 0.3, n)
        out.append(d)
    return np.stack(out, axis=1)


def muon_truth(rng, C, species):
    """Muon-system log-likelihoods for isMuon tracks from the mean squared hit distance d2."""
    n = len(C)
    p = 10 ** C[:, 0]
    d2 = np.where(species == MU, rng.gamma(2.0, 0.5 * (1.0 + 5.0 / p), n), rng.gamma(2.0, 1.5 * (1.0 + 5.0 / p), n) + 0.5)
    mu_ll = -d2
    bg_ll = np.log(1.0 - np.exp(-d2 / 2.0) + 1e-4)
    return np.stack([mu_ll, bg_ll], axis=1)


def gpid_truth(rng, C, species, rich, is_muon, muon):
    """Combined DLLs (mu, K, p, e) and ProbNN (mu, pi, K, p) from RICH, muon system and a
    calorimeter term."""
    n = len(C)
    calo_e = np.where(species == MU, rng.normal(-2.0, 1.0, n), rng.normal(-4.0, 2.0, n))
    mu_term = np.where(is_muon > 0.5, muon[:, 0] - muon[:, 1], -5.0 + rng.normal(0.0, 1.0, n))
    pid_mu = rich[:, 1] + mu_term + rng.normal(0.0, 0.3, n)
    pid_k = rich[:, 2] + rng.normal(0.0, 0.5, n)
    pid_p = rich[:, 3] + rng.normal(0.0, 0.5, n)
    pid_e = rich[:, 0] + calo_e
    z = rng.normal(0.0, 0.4, (n, 5))
    logits = np.stack([0.4 * pid_mu + np.where(is_muon > 0.5, 2.0, -4.0), 0.01 * C[:, 2],
                       0.3 * pid_k - 0.1 * pid_p, 0.3 * pid_p - 0.1 * pid_k, -2.5 + 0.2 * pid_e], axis=1) + z
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probnn = (e / e.sum(axis=1, keepdims=True))[:, :4]
    return np.column_stack([pid_mu, pid_k, pid_p, pid_e, np.clip(probnn, 1e-6, 1 - 1e-6)])


# ============================================================================= toy detector: photons
def photon_gun(rng, n):
    e = gun_momentum(rng, n, lo=0.5)
    x0, y0, z0 = gun_vertex(rng, n)
    eta, phi, tx, ty = forward_direction(rng, n)
    X = np.column_stack([x0 + tx * (ECAL_Z - z0), y0 + ty * (ECAL_Z - z0), np.log10(e), tx, ty])
    return X


def photon_efficiency_probability(X):
    ax, ay, e = np.abs(X[:, 0]), np.abs(X[:, 1]), 10 ** X[:, 2]
    et = e * np.sin(np.arctan(np.hypot(X[:, 3], X[:, 4])))
    hole = 1.0 - sigmoid((300.0 - ax) / 20.0) * sigmoid((300.0 - ay) / 20.0)
    outer = sigmoid((3900.0 - ax) / 30.0) * sigmoid((3150.0 - ay) / 30.0)
    return 0.96 * hole * outer * sigmoid((e - 1.5) / 0.3) * sigmoid((et - 0.05) / 0.02)


def photon_cell(X):
    ax, ay = np.abs(X[:, 0]), np.abs(X[:, 1])
    return np.where((ax < 970) & (ay < 730), 40.4, np.where((ax < 1940) & (ay < 1450), 60.6, 121.2))


def photon_resolution_truth(rng, X):
    n = len(X)
    e, lg = 10 ** X[:, 2], X[:, 2]
    cell = photon_cell(X)
    s_pos = cell * (0.06 + 0.10 / np.sqrt(e))
    depth = 100.0 + 20.0 * lg  # shower depth (mm) shifts the cluster along the direction
    dx = X[:, 3] * depth + tailed(rng, n, s_pos)
    dy = X[:, 4] * depth + tailed(rng, n, s_pos)
    s_e = np.hypot(0.09 / np.sqrt(e), 0.008) * (cell / 40.4) ** 0.15
    de = -0.005 + tailed(rng, n, s_e) - (rng.random(n) < 0.15) * rng.exponential(0.04, n)
    photon_id = sigmoid(rng.normal(1.5 + 0.8 * lg, 1.2, n))
    not_e = sigmoid(rng.normal(3.0, 1.0, n))
    not_h = sigmoid(rng.normal(2.0 + 0.6 * lg, 1.3, n))
    return np.column_stack([dx, dy, de, photon_id, not_e, not_h])


# ============================================================================= toy detector: CMS-like objects
def central_gun(rng, n):
    """MUGEN-like generator-level objects: pT 5-150 GeV (half log-uniform, half flat), |eta| < 2.6."""
    pt = np.where(rng.random(n) < 0.5, np.exp(rng.uniform(np.log(5.0), np.log(150.0), n)), rng.uniform(5.0, 150.0, n))
    return np.column_stack([np.log10(pt), rng.uniform(-2.6, 2.6, n), rng.uniform(-np.pi, np.pi, n),
                            rng.choice([-1.0, 1.0], size=n)])


def electron_gun(rng, n):
    """ELEGEN: the electron + number of reconstructed muons in the event and dR to the nearest one."""
    G = central_gun(rng, n)
    nmu = rng.choice(4, size=n, p=[0.35, 0.35, 0.22, 0.08]).astype(np.float64)
    dr = np.full(n, 5.0)
    for k in range(3):
        d = np.where(rng.random(n) < 0.25, 0.01 + rng.exponential(0.25, n), rng.uniform(0.2, 4.5, n))
        dr = np.where(nmu > k, np.minimum(dr, d), dr)
    return np.column_stack([G, nmu, dr])


def muon_efficiency_probability(G):
    pt, aeta, phi = 10 ** G[:, 0], np.abs(G[:, 1]), G[:, 2]
    cracks = (1.0 - 0.15 * np.exp(-((aeta - 0.25) / 0.04) ** 2)) * (1.0 - 0.10 * np.exp(-((aeta - 0.8) / 0.05) ** 2))
    return 0.97 * sigmoid((pt - 7.0) / 1.2) * sigmoid((2.4 - aeta) / 0.04) * cracks * (1.0 - 0.03 * np.cos(6.0 * phi))


def electron_efficiency_probability(G):
    pt, aeta, dr = 10 ** G[:, 0], np.abs(G[:, 1]), G[:, 5]
    gap = 1.0 - 0.5 * np.exp(-((aeta - 1.5) / 0.05) ** 2)
    return 0.92 * sigmoid((pt - 8.0) / 2.0) * sigmoid((2.5 - aeta) / 0.04) * gap * (1.0 - 0.7 * np.exp(-dr / 0.25))


def muon_targets(rng, G):
    n = len(G)
    pt, eta, phi, q = 10 ** G[:, 0], G[:, 1], G[:, 2], G[:, 3]
    s = (0.012 + 0.00012 * pt) * (1.0 + 0.6 * sigmoid((np.abs(eta) - 1.2) / 0.1))
    ratio = 1.0 + 0.001 * q * np.sin(phi) + tailed(rng, n, s, tail=0.04, factor=4.0)
    d_eta = rng.normal(0.0, 0.0004 + 0.0003 * np.abs(eta), n)
    d_phi = rng.normal(0.0002 * q, 0.0003 + 0.01 / pt, n)
    iso = rng.gamma(1.5, 0.03 * (1.0 + 20.0 / pt), n)
    return np.column_stack([ratio, d_eta, d_phi, iso])


def electron_targets(rng, G):
    n = len(G)
    pt, eta, q, dr = 10 ** G[:, 0], G[:, 1], G[:, 3], G[:, 5]
    gap = 1.0 + np.exp(-((np.abs(eta) - 1.5) / 0.08) ** 2)
    s = (0.015 + 0.08 / np.sqrt(pt)) * gap
    ratio = 0.995 + rng.normal(0.0, 1.0, n) * s - (rng.random(n) < 0.25) * rng.exponential(0.06, n)
    d_eta = rng.normal(0.0, 0.002, n)
    d_phi = rng.normal(0.003 * q * np.sqrt(30.0 / pt), 0.002 + 0.02 / pt, n)
    iso = rng.gamma(1.5, 0.04 * (1.0 + 20.0 / pt), n) + np.exp(-dr / 0.3) * rng.gamma(2.0, 0.15, n)
    return np.column_stack([ratio, d_eta, d_phi, iso])


# ============================================================================= training samples
def tracking_sample(rng, n):
    """Accepted and reconstructed tracks: TRUTH, TYPE, resolution outputs, covariance outputs."""
    g = charged_gun(rng, 3 * n)
    T = truth_table(g)
    keep = rng.random(len(T)) < acceptance_probability(T)
    T = T[keep]
    pr = efficiency_probabilities(T)
    T = T[rng.random(len(T)) > pr[:, 0]][:n]
    Y = sample_types(rng, T)
    R = resolution_truth(rng, T, Y)
    V = covariance_truth(rng, T, Y, R)
    return T, Y, R, V


def pid_sample(rng, n):
    C, sp = pid_gun(rng, n)
    ism = (rng.random(n) < ismuon_probability(C, sp)).astype(np.float64)
    rich = rich_truth(rng, C, sp)
    muon = muon_truth(rng, C, sp)
    gpid = gpid_truth(rng, C, sp, rich, ism, muon)
    return C, sp, ism, rich, muon, gpid


# ============================================================================= export helpers
def f32(a):
    return np.asarray(a, dtype=np.float32)


def steps(n):
    return max(50, n // 10) if QUICK else n


def write_fixture(name, inputs, outputs, noise=None):
    t = {"inputs": (f32(inputs), "f32")}
    if noise is not None:
        t["noise"] = (f32(noise), "f32")
    t["outputs"] = (f32(outputs), "f32")
    st.save(os.path.join(FIXTURES, name + ".safetensors"), t,
            metadata={"model": name, "producer": "models/toy_detector.py", "seed": str(SEED)})


def check(name, inputs, outputs, noise=None):
    """Reference evaluator of the written spec against the framework output."""
    ref = evaluate(os.path.join(MODELS, name + ".json"), f32(inputs).astype(np.float64),
                   None if noise is None else f32(noise).astype(np.float64))
    err = float(np.max(np.abs(ref - np.asarray(outputs, dtype=np.float64))))
    sc = float(np.max(np.abs(outputs)))
    row = dict(name=name, n_in=f32(inputs).shape[1], n_noise=0 if noise is None else f32(noise).shape[1],
               n_out=np.asarray(outputs).shape[1], err=err, scale=sc)
    print("REPORT " + json.dumps(row), flush=True)
    if err > 1e-4 * max(1.0, sc):
        raise SystemExit(f"{name}: the exported spec disagrees with the framework (max abs error {err:.3g})")


def standard_scaler(X, identity_cols=()):
    """StandardScaler fitted on X; columns in `identity_cols` are left as they are (outputs of
    softplus / sigmoid units)."""
    from sklearn.preprocessing import StandardScaler

    s = StandardScaler().fit(X)
    for c in identity_cols:
        s.mean_[c], s.scale_[c], s.var_[c] = 0.0, 1.0, 1.0
    return s


def width68(a):
    q = np.percentile(a, [16, 84], axis=0)
    return 0.5 * (q[1] - q[0])


def quality_line(name, truth, gen, cols, extra=""):
    """One line: the worst |mean difference| / truth std, the std ratios and the ratios of the
    central 68 % half-widths of generated vs truth."""
    mt, mg = truth.mean(axis=0), gen.mean(axis=0)
    stt, sg = truth.std(axis=0), gen.std(axis=0)
    dm = np.abs(mg - mt) / np.maximum(stt, 1e-12)
    ratio = sg / np.maximum(stt, 1e-12)
    w = width68(gen) / np.maximum(width68(truth), 1e-12)
    i, lo, hi = int(np.argmax(dm)), int(np.argmin(ratio)), int(np.argmax(ratio))
    wl, wh = int(np.argmin(w)), int(np.argmax(w))
    print(f"QUALITY {name}: max |dmean|/std {dm[i]:.3f} ({cols[i]}); std gen/truth in "
          f"[{ratio[lo]:.2f} ({cols[lo]}), {ratio[hi]:.2f} ({cols[hi]})]; 68% width gen/truth in "
          f"[{w[wl]:.2f} ({cols[wl]}), {w[wh]:.2f} ({cols[wh]})]{extra}", flush=True)


def classifier_line(name, p_model, p_truth, labels):
    from sklearn.metrics import roc_auc_score

    if p_model.ndim == 1:
        auc = roc_auc_score(labels, p_model)
        auc_t = roc_auc_score(labels, p_truth)
        extra = f"AUC {auc:.4f} (toy truth probability {auc_t:.4f})"
    else:
        acc = float(np.mean(np.argmax(p_model, axis=1) == labels))
        acc_t = float(np.mean(np.argmax(p_truth, axis=1) == labels))
        extra = f"accuracy {acc:.4f} (toy truth probability {acc_t:.4f})"
    print(f"QUALITY {name}: mean |p_model - p_truth| {np.mean(np.abs(p_model - p_truth)):.4f}; "
          f"mean p {np.mean(p_model):.4f} vs {np.mean(p_truth):.4f}; {extra}", flush=True)


# ============================================================================= Keras models
def keras_setup():
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(SEED)
    return keras, tf


def keras_mlp(keras, n_in, n_out, width, out_act, name, act="relu", last_act="tanh", hidden=3):
    """`hidden` Dense layers (`act`, the last one `last_act`) and the output layer."""
    L = keras.layers
    x = keras.Input((n_in,), name=f"{name}_in")
    h = x
    for i in range(hidden):
        h = L.Dense(width, activation=last_act if i == hidden - 1 else act, name=f"hidden{i}")(h)
    return keras.Model(x, L.Dense(n_out, activation=out_act, name="out")(h), name=name)


def keras_generator(keras, n_in, width, heads, name, hidden=3):
    """GAN generator: `hidden` Dense + LeakyReLU(0.1) layers, then one Dense output unit group per
    run of equal activations in `heads` (None = linear, "softplus", "sigmoid"), concatenated."""
    L = keras.layers
    x = keras.Input((n_in,), name=f"{name}_in")
    h = x
    for i in range(hidden):
        h = L.LeakyReLU(negative_slope=0.1, name=f"act{i}")(L.Dense(width, name=f"hidden{i}")(h))
    groups = []
    for a in heads:
        if groups and groups[-1][0] == a:
            groups[-1][1] += 1
        else:
            groups.append([a, 1])
    outs = [L.Dense(k, activation=a, name=f"out{i}_{a or 'linear'}")(h) for i, (a, k) in enumerate(groups)]
    y = outs[0] if len(outs) == 1 else L.Concatenate(name="out")(outs)
    return keras.Model(x, y, name=name)


def predict(model, x):
    return model.predict(f32(x), batch_size=4096, verbose=0)


def fit_classifier(keras, net, X, y, loss, n_steps, name, batch=512, lr=2e-3):
    epochs = max(1, int(round(n_steps * batch / len(X))))
    net.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    t0 = time.time()
    h = net.fit(f32(X), f32(y) if loss == "binary_crossentropy" else y, batch_size=batch, epochs=epochs, verbose=0,
                shuffle=True)
    print(f"  {name}: {epochs} epochs of {len(X)} rows, loss {h.history['loss'][0]:.4f} -> "
          f"{h.history['loss'][-1]:.4f} ({time.time() - t0:.0f} s)", flush=True)


def train_gan(keras, tf, gen, n_cond, n_noise, n_out, cond, target, n_steps, name, lr=2e-4, seed=0, batch=512):
    """A plain BCE conditional GAN; the discriminator sees (conditions, outputs)."""
    L = keras.layers
    d_in = keras.Input((n_cond + n_out,))
    h = d_in
    for _ in range(3):
        h = L.LeakyReLU(negative_slope=0.2)(L.Dense(128)(h))
    disc = keras.Model(d_in, L.Dense(1)(h), name=f"{name}_disc")
    sched = lambda: keras.optimizers.schedules.PolynomialDecay(lr, n_steps, end_learning_rate=0.1 * lr)  # noqa: E731
    g_opt = keras.optimizers.Adam(sched(), beta_1=0.5)
    d_opt = keras.optimizers.Adam(sched(), beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    cond = tf.constant(f32(cond))
    target = tf.constant(f32(target))
    rng = np.random.default_rng(SEED + 1000 + seed)

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
    t0 = time.time()
    for s in range(n_steps):
        idx = rng.integers(0, n, batch)
        z = f32(rng.normal(size=(batch, n_noise)))
        d_loss, g_loss = step(tf.gather(cond, idx), tf.gather(target, idx), tf.constant(z))
    print(f"  {name}: {n_steps} GAN steps, d_loss {float(d_loss):.3f}, g_loss {float(g_loss):.3f} "
          f"({time.time() - t0:.0f} s)", flush=True)


def export_classifier(keras, name, cols, out_cols, X, y, loss, n_steps, desc, Xfix, p_truth_fn, Xcheck, ycheck,
                      seed, width=64):
    pre = standard_scaler(X)
    keras.utils.set_random_seed(SEED + seed)
    out_act = "sigmoid" if len(out_cols) == 1 else "softmax"
    net = keras_mlp(keras, len(cols), len(out_cols), width, out_act, name)
    fit_classifier(keras, net, pre.transform(X), y, loss, n_steps, name)
    fx.export(os.path.join(MODELS, name), name, inputs="inputs", columns=cols, preprocess=pre, net=net,
              output_columns=out_cols, description=desc)
    Xfix = f32(Xfix).astype(np.float64)
    out = predict(net, pre.transform(Xfix))
    write_fixture(name, Xfix, out)
    check(name, Xfix, out)
    pm = predict(net, pre.transform(Xcheck)).astype(np.float64)
    classifier_line(name, pm[:, 0] if pm.shape[1] == 1 else pm, p_truth_fn(Xcheck), ycheck)


def export_gan(keras, tf, name, cols, out_cols, heads, C, Y, n_noise, width, n_steps, desc, Cfix, Ccheck, Ycheck,
               seed, extra_check=None):
    pre = standard_scaler(C)
    post = standard_scaler(Y, [i for i, a in enumerate(heads) if a is not None])
    keras.utils.set_random_seed(SEED + seed)
    gen = keras_generator(keras, len(cols) + n_noise, width, heads, name)
    train_gan(keras, tf, gen, len(cols), n_noise, len(out_cols), pre.transform(C), post.transform(Y), n_steps, name,
              seed=seed)
    fx.export(os.path.join(MODELS, name), name, inputs="conditions", columns=cols, preprocess=pre, net=gen,
              postprocess=post, noise_dim=n_noise, output_columns=out_cols, description=desc)
    rf = np.random.default_rng(SEED + 500 + seed)
    Cfix = f32(Cfix).astype(np.float64)
    Z = f32(rf.normal(size=(len(Cfix), n_noise)))
    out = f32(post.inverse_transform(predict(gen, np.concatenate([pre.transform(Cfix), Z], axis=1)).astype(np.float64)))
    write_fixture(name, Cfix, out, Z)
    check(name, Cfix, out, Z)
    Zc = f32(rf.normal(size=(len(Ccheck), n_noise)))
    G = post.inverse_transform(predict(gen, np.concatenate([pre.transform(Ccheck), Zc], axis=1)).astype(np.float64))
    extra = extra_check(Ccheck, Ycheck, G) if extra_check else ""
    quality_line(name, Ycheck, G, out_cols, extra)
    return G


def std_ratio_where(mask, Yt, G, col, label):
    return (f"; {label}: std gen/truth {G[mask, col].std() / Yt[mask, col].std():.2f}, "
            f"68% width {width68(G[mask, col]) / width68(Yt[mask, col]):.2f}")


def make_tracking(keras, tf):
    n_train, n_check = 120_000, 20_000
    rng = np.random.default_rng(SEED + 1)
    # acceptance: every generated particle (pz > 0 by construction)
    T = truth_table(charged_gun(rng, n_train))
    y = (rng.random(len(T)) < acceptance_probability(T)).astype(np.float64)
    Tc = truth_table(charged_gun(rng, n_check))
    yc = (rng.random(len(Tc)) < acceptance_probability(Tc)).astype(np.float64)
    Tf = truth_table(charged_gun(np.random.default_rng(SEED + 101), N_FIX))
    export_classifier(keras, "lamarr_acceptance", TRUTH, ["p_accept"], T, y, "binary_crossentropy", steps(3000),
                      "toy detector: probability that a generated charged particle is in the tracking acceptance; "
                      "StandardScaler + Dense64 relu x2 + Dense64 tanh + Dense1 sigmoid",
                      Tf, acceptance_probability, Tc, yc, seed=1)

    # efficiency: accepted particles; classes not reconstructed / long / upstream / downstream
    def accepted(rng, n):
        T = truth_table(charged_gun(rng, 2 * n))
        return T[rng.random(len(T)) < acceptance_probability(T)][:n]

    def draw(rng, T):
        pr = efficiency_probabilities(T)
        return (rng.random(len(T))[:, None] > np.cumsum(pr, axis=1)).sum(axis=1).clip(0, 3)

    T = accepted(rng, n_train)
    lab = draw(rng, T)
    Tc = accepted(rng, n_check)
    lc = draw(rng, Tc)
    Tf = accepted(np.random.default_rng(SEED + 102), N_FIX)
    export_classifier(keras, "lamarr_efficiency", TRUTH, ["p_not_reco", "p_long", "p_upstream", "p_downstream"],
                      T, lab, "sparse_categorical_crossentropy", steps(3000),
                      "toy detector: reconstruction probabilities of an accepted particle (not reconstructed, long, "
                      "upstream, downstream); StandardScaler + Dense64 relu x2 + Dense64 tanh + Dense4 softmax",
                      Tf, efficiency_probabilities, Tc, lc, seed=2)

    # resolution and covariance: reconstructed tracks
    T, Y, R, V = tracking_sample(rng, n_train)
    Tc, Yc, Rc, Vc = tracking_sample(rng, n_check)
    Tf, Yf, Rf, Vf = tracking_sample(np.random.default_rng(SEED + 103), N_FIX)
    C, Cc, Cf = (np.column_stack([a, b]) for a, b in ((T, Y), (Tc, Yc), (Tf, Yf)))

    def res_extra(Cc, Yt, G):
        low, long_ = Cc[:, 3] < 0.7, Cc[:, 12] > 0.5
        return (std_ratio_where(low & long_, Yt, G, 0, "dx long p<5")
                + std_ratio_where(~low & long_, Yt, G, 0, "dx long p>5")
                + std_ratio_where(long_, Yt, G, 5, "dp_rel long")
                + f"; ndof mean gen/truth {G[:, 7].mean():.1f}/{Yt[:, 7].mean():.1f}")

    export_gan(keras, tf, "lamarr_resolution", TRUTH + TYPE, RES_OUT, [None] * 6 + ["softplus", None, "sigmoid"],
               C, R, 32, 128, steps(8000),
               "toy detector: track reco - truth GAN generator; StandardScaler on the 15 conditions, 32 N(0,1) noise; "
               "Dense128 LeakyReLU(0.1) x3; linear heads (inverse StandardScaler) for dx dy dz dtx dty dp_rel ndof, "
               "softplus head for chi2_per_dof, sigmoid head for ghost_prob",
               Cf, Cc, Rc, seed=3, extra_check=res_extra)

    # covariance: conditioned on the toy-truth resolution outputs (the pipeline feeds the generated ones)
    C2, Cc2, Cf2 = (np.column_stack([a, b[:, 6:9]]) for a, b in ((C, R), (Cc, Rc), (Cf, Rf)))

    def cov_extra(Cc, Yt, G):
        Ct, Cg = covariance_from_cholesky(Yt), covariance_from_cholesky(G)
        rt = Ct[:, 0, 2] / np.sqrt(Ct[:, 0, 0] * Ct[:, 2, 2])
        rg = Cg[:, 0, 2] / np.sqrt(Cg[:, 0, 0] * Cg[:, 2, 2])
        st_ = np.sqrt(Ct[:, 4, 4]) * 10 ** Cc[:, 3]
        sg_ = np.sqrt(Cg[:, 4, 4]) * 10 ** Cc[:, 3]
        return (f"; rho(x,tx) median gen/truth {np.median(rg):.3f}/{np.median(rt):.3f}"
                f"; sigma_p/p median gen/truth {np.median(sg_):.4f}/{np.median(st_):.4f}")

    export_gan(keras, tf, "lamarr_covariance", TRUTH + TYPE + ["chi2_per_dof", "ndof", "ghost_prob"], COV_OUT,
               [None] * 15, C2, V, 32, 128, steps(8000),
               "toy detector: Cholesky factor of the 5x5 track covariance (x, y, tx, ty, q/p) GAN generator; "
               "L[i][i] = exp(log_l{i}), L[i][j] = l{i}{j} * L[i][i]; StandardScaler on the 18 conditions, 32 N(0,1) "
               "noise; Dense128 LeakyReLU(0.1) x3 + Dense15; inverse StandardScaler",
               Cf2, Cc2, Vc, seed=4, extra_check=cov_extra)


def make_pid(keras, tf):
    n_train, n_check = 120_000, 20_000
    rng = np.random.default_rng(SEED + 2)
    C, sp, ism, rich, muon, gpid = pid_sample(rng, n_train)
    Cc, spc, ismc, richc, muonc, gpidc = pid_sample(rng, n_check)
    Cf, spf, ismf, richf, muonf, gpidf = pid_sample(np.random.default_rng(SEED + 104), N_FIX)
    def p_ismuon(X):
        return ismuon_probability(X, np.array([MU, PI, K, P])[np.argmax(X[:, 4:8], axis=1)])

    export_classifier(keras, "lamarr_ismuon", PID, ["p_is_muon"], C, ism, "binary_crossentropy", steps(3000),
                      "toy detector: isMuon probability of a long track; StandardScaler + Dense64 relu x2 + "
                      "Dense64 tanh + Dense1 sigmoid", Cf, p_ismuon, Cc, ismc, seed=10)

    def rich_extra(Cc, Yt, G):
        k, pi = Cc[:, 6] > 0.5, Cc[:, 5] > 0.5
        mid = (Cc[:, 0] > 0.5) & (Cc[:, 0] < 1.5)
        return (f"; median rich_dll_k K/pi (5-30 GeV) gen {np.median(G[k & mid, 2]):.1f}/{np.median(G[pi & mid, 2]):.1f} "
                f"truth {np.median(Yt[k & mid, 2]):.1f}/{np.median(Yt[pi & mid, 2]):.1f}")

    export_gan(keras, tf, "lamarr_rich", PID, RICH_OUT, [None] * 4, C, rich, 16, 64, steps(6000),
               "toy detector: RICH DLL(h - pi) GAN generator; StandardScaler on the 8 conditions, 16 N(0,1) noise; "
               "Dense64 LeakyReLU(0.1) x3 + Dense4; inverse StandardScaler",
               Cf, Cc, richc, seed=5, extra_check=rich_extra)

    m, mc = ism > 0.5, ismc > 0.5
    Cfm = Cf.copy()
    export_gan(keras, tf, "lamarr_muon", PID, MUON_OUT, [None] * 2, C[m], muon[m], 16, 64, steps(4000),
               "toy detector: muon-system log-likelihoods of isMuon tracks, GAN generator; StandardScaler on the 8 "
               "conditions, 16 N(0,1) noise; Dense64 LeakyReLU(0.1) x3 + Dense2; inverse StandardScaler",
               Cfm, Cc[mc], muonc[mc], seed=6)

    heads = [None] * 4 + ["sigmoid"] * 4

    def gpid_extra(Cc, Yt, G):
        mu = Cc[:, 4] > 0.5
        return f"; median probnn_mu mu/other gen {np.median(G[mu, 4]):.2f}/{np.median(G[~mu, 4]):.2f} " \
               f"truth {np.median(Yt[mu, 4]):.2f}/{np.median(Yt[~mu, 4]):.2f}"

    Xg = np.column_stack([C, rich, muon])
    Xgc = np.column_stack([Cc, richc, muonc])
    Xgf = np.column_stack([Cf, richf, muonf])
    export_gan(keras, tf, "lamarr_gpid_muon", PID + RICH_OUT + MUON_OUT, GPID_OUT, heads, Xg[m], gpid[m], 16, 64,
               steps(6000),
               "toy detector: GlobalPID of isMuon tracks, GAN generator; StandardScaler on the 14 conditions, 16 N(0,1) "
               "noise; Dense64 LeakyReLU(0.1) x3; linear heads (inverse StandardScaler) for the 4 DLLs, sigmoid heads "
               "for the 4 ProbNN", Xgf, Xgc[mc], gpidc[mc], seed=7, extra_check=gpid_extra)
    export_gan(keras, tf, "lamarr_gpid_nomuon", PID + RICH_OUT, GPID_OUT, heads, Xg[~m][:, :12], gpid[~m], 16, 64,
               steps(6000),
               "toy detector: GlobalPID of non-isMuon tracks, GAN generator; StandardScaler on the 12 conditions, "
               "16 N(0,1) noise; Dense64 LeakyReLU(0.1) x3; linear heads (inverse StandardScaler) for the 4 DLLs, "
               "sigmoid heads for the 4 ProbNN", Xgf[:, :12], Xgc[~mc][:, :12], gpidc[~mc], seed=8,
               extra_check=gpid_extra)


def make_photons(keras, tf):
    n_train, n_check = 120_000, 20_000
    rng = np.random.default_rng(SEED + 3)
    X = photon_gun(rng, n_train)
    y = (rng.random(len(X)) < photon_efficiency_probability(X)).astype(np.float64)
    Xc = photon_gun(rng, n_check)
    yc = (rng.random(len(Xc)) < photon_efficiency_probability(Xc)).astype(np.float64)
    Xf = photon_gun(np.random.default_rng(SEED + 105), N_FIX)
    export_classifier(keras, "lamarr_photon_efficiency", PHOTON, ["p_reco"], X, y, "binary_crossentropy", steps(3000),
                      "toy detector: photon reconstruction probability in the calorimeter; StandardScaler + Dense64 "
                      "relu x2 + Dense64 tanh + Dense1 sigmoid", Xf, photon_efficiency_probability, Xc, yc, seed=15)

    Xr, Xrc = X[y > 0.5], Xc[yc > 0.5]
    R, Rc = photon_resolution_truth(rng, Xr), photon_resolution_truth(rng, Xrc)
    Xrf = photon_gun(np.random.default_rng(SEED + 106), 4 * N_FIX)
    Xrf = Xrf[np.random.default_rng(SEED + 107).random(len(Xrf)) < photon_efficiency_probability(Xrf)][:N_FIX]

    def ph_extra(Cc, Yt, G):
        low = Cc[:, 2] < 1.0
        return std_ratio_where(low, Yt, G, 2, "de_rel E<10") + std_ratio_where(~low, Yt, G, 2, "de_rel E>10")

    export_gan(keras, tf, "lamarr_photon_resolution", PHOTON, PHOTON_OUT, [None] * 3 + ["sigmoid"] * 3, Xr, R, 16,
               64, steps(6000),
               "toy detector: reconstructed photon (reco - truth position and energy, ID responses), GAN generator; "
               "StandardScaler on the 5 conditions, 16 N(0,1) noise; Dense64 LeakyReLU(0.1) x3; linear heads "
               "(inverse StandardScaler) for dx dy de_rel, sigmoid heads for photon_id is_not_e is_not_h",
               Xrf, Xrc, Rc, seed=9, extra_check=ph_extra)


# ============================================================================= PyTorch models
def torch_setup():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    return torch


def torch_mlp(torch, n_in, n_out, width, act, out_act=None, hidden=3):
    nn = torch.nn
    layers, k = [], n_in
    for _ in range(hidden):
        layers += [nn.Linear(k, width), act()]
        k = width
    layers.append(nn.Linear(k, n_out))
    if out_act is not None:
        layers.append(out_act())
    return nn.Sequential(*layers)


def torch_batches(rng, n, batch, n_steps):
    for _ in range(n_steps):
        yield rng.integers(0, n, batch)


def make_torch_efficiency(torch, name, cols, X, y, Xc, yc, Xf, p_truth_fn, n_steps, desc, seed):
    pre = standard_scaler(X)
    torch.manual_seed(SEED + seed)
    net = torch_mlp(torch, len(cols), 1, 64, torch.nn.ReLU, torch.nn.Sigmoid)
    Xt = torch.tensor(f32(pre.transform(X)))
    yt = torch.tensor(f32(y)).reshape(-1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps)
    rng = np.random.default_rng(SEED + seed)
    t0 = time.time()
    for idx in torch_batches(rng, len(X), 512, n_steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(net(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    print(f"  {name}: {n_steps} steps, BCE {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    fx.export(os.path.join(MODELS, name), name, inputs="inputs", columns=cols, preprocess=pre, net=net,
              output_columns=["p_reco"], description=desc)
    Xf = f32(Xf).astype(np.float64)
    with torch.no_grad():
        out = net(torch.tensor(f32(pre.transform(Xf)))).numpy()
        pm = net(torch.tensor(f32(pre.transform(Xc)))).numpy()[:, 0].astype(np.float64)
    write_fixture(name, Xf, out)
    check(name, Xf, out)
    classifier_line(name, pm, p_truth_fn(Xc), yc)


def rk4(torch, net, pre_t, ctx, n_steps=8, seed=0):
    """Integrate dx/dt = v(x, ctx, t) from t = 0 (x ~ N(0, I)) to 1 with RK4, in the standardised
    target space; `pre_t` maps the raw network input (x, ctx, t) to the network's scaled input."""
    g = torch.Generator().manual_seed(SEED + seed)
    x = torch.randn(ctx.shape[0], 4, generator=g)
    h = 1.0 / n_steps

    def v(x, t):
        tt = torch.full((ctx.shape[0], 1), t)
        return net(pre_t(torch.cat([x, ctx, tt], dim=1)))

    with torch.no_grad():
        for i in range(n_steps):
            t = i * h
            k1 = v(x, t)
            k2 = v(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = v(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = v(x + h * k3, t + h)
            x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x.numpy().astype(np.float64)


def make_flow(torch, name, ctx_cols, G, X1, Gc, X1c, Gf, n_steps, seed, obj, extra_check):
    """Conditional flow matching: x_t = (1 - t) z + t x1, target velocity x1 - z, input (x_t, ctx, t)."""
    from sklearn.preprocessing import StandardScaler

    mean, std = X1.mean(axis=0), X1.std(axis=0)
    X1s = (X1 - mean) / std
    cols = FLOW_X + ctx_cols + ["t"]
    n_ctx = len(ctx_cols)
    # input scaler: identity on x_t and t, standardisation of the context
    pre = StandardScaler().fit(np.column_stack([X1s, G, np.zeros(len(G))]))
    for c in list(range(4)) + [4 + n_ctx]:
        pre.mean_[c], pre.scale_[c], pre.var_[c] = 0.0, 1.0, 1.0
    pm, ps = torch.tensor(f32(pre.mean_)), torch.tensor(f32(pre.scale_))

    def pre_t(x):
        return (x - pm) / ps

    torch.manual_seed(SEED + seed)
    net = torch_mlp(torch, len(cols), 4, 128, torch.nn.SiLU)
    Gt, X1t = torch.tensor(f32(G)), torch.tensor(f32(X1s))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps, eta_min=1e-5)
    rng = np.random.default_rng(SEED + seed)
    gen = torch.Generator().manual_seed(SEED + seed)
    batch = 1024
    t0 = time.time()
    run = 0.0
    for i, idx in enumerate(torch_batches(rng, len(G), batch, n_steps)):
        x1, c = X1t[idx], Gt[idx]
        z = torch.randn(batch, 4, generator=gen)
        t = torch.rand(batch, 1, generator=gen)
        xt = (1 - t) * z + t * x1
        opt.zero_grad()
        loss = ((net(pre_t(torch.cat([xt, c, t], dim=1))) - (x1 - z)) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.99 * run + 0.01 * loss.item() if i else loss.item()
    net.eval()
    print(f"  {name}: {n_steps} flow-matching steps, loss {run:.4f} ({time.time() - t0:.0f} s)", flush=True)
    desc = (f"toy detector: conditional flow-matching vector field of the reconstructed {obj} "
            f"(pt_ratio, d_eta, d_phi, iso) in standardised target space; input (x_t, context, t), path "
            f"x_t = (1 - t) z + t x, z ~ N(0, I) at t = 0; integrate dx/dt = v from t = 0 to 1 (RK4, 8 steps) and "
            f"destandardise x = mean + std * x_std with "
            f"target_mean={json.dumps([float(f'{v:.8g}') for v in mean])} "
            f"target_std={json.dumps([float(f'{v:.8g}') for v in std])}; "
            f"StandardScaler on the context; Linear128 SiLU x3 + Linear4")
    fx.export(os.path.join(MODELS, name), name, inputs="inputs", columns=cols, preprocess=pre, net=net,
              output_columns=FLOW_OUT, description=desc)
    rf = np.random.default_rng(SEED + 600 + seed)
    tf_ = rf.random(len(Gf))
    zf = rf.normal(size=(len(Gf), 4))
    x1f = rf.normal(size=(len(Gf), 4))
    Xf = f32(np.column_stack([(1 - tf_)[:, None] * zf + tf_[:, None] * x1f, Gf, tf_])).astype(np.float64)
    with torch.no_grad():
        out = net(torch.tensor(f32(pre.transform(Xf)))).numpy()
    write_fixture(name, Xf, out)
    check(name, Xf, out)
    xs = rk4(torch, net, pre_t, torch.tensor(f32(Gc)), 8, seed)
    Xg = mean + std * xs
    parts = [f"{c} mean {Xg[:, i].mean():.4g}/{X1c[:, i].mean():.4g} std {Xg[:, i].std():.4g}/{X1c[:, i].std():.4g}"
             for i, c in enumerate(FLOW_TARGETS)]
    print(f"QUALITY {name} (RK4 8 steps, gen/truth): " + "; ".join(parts) + extra_check(Gc, X1c, Xg), flush=True)
    print("TARGETS " + json.dumps(dict(name=name, columns=FLOW_TARGETS, mean=[float(v) for v in mean],
                                       std=[float(v) for v in std])), flush=True)
    make_targets(name.replace("_flow", "_targets"), mean, std)
    return net


def muon_extra(G, Xt, Xg):
    lo, hi = G[:, 0] < np.log10(20.0), G[:, 0] > np.log10(80.0)
    fwd = np.abs(G[:, 1]) > 1.4
    return (f"; pt_ratio 68% width pT<20 {width68(Xg[lo, 0]):.4f}/{width68(Xt[lo, 0]):.4f}, "
            f"pT>80 {width68(Xg[hi, 0]):.4f}/{width68(Xt[hi, 0]):.4f}, |eta|>1.4 {width68(Xg[fwd, 0]):.4f}/"
            f"{width68(Xt[fwd, 0]):.4f}; iso mean pT<20 {Xg[lo, 3].mean():.4f}/{Xt[lo, 3].mean():.4f}")


def electron_extra(G, Xt, Xg):
    near, far = G[:, 5] < 0.3, G[:, 5] > 1.0
    return (f"; iso mean dr_muon<0.3 {Xg[near, 3].mean():.4f}/{Xt[near, 3].mean():.4f}, dr_muon>1 "
            f"{Xg[far, 3].mean():.4f}/{Xt[far, 3].mean():.4f}; fraction pt_ratio<0.9 "
            f"{np.mean(Xg[:, 0] < 0.9):.4f}/{np.mean(Xt[:, 0] < 0.9):.4f}")


def make_targets(name, mean, std):
    """The flow's standardised sample -> physical targets: scikit-learn's StandardScaler inverse
    with the training mean and std (the pipeline's `targets` model; deterministic). Its fixture
    is scikit-learn's own `inverse_transform` of standard-normal rows."""
    from sklearn.preprocessing import StandardScaler
    sc = StandardScaler().fit(np.stack([mean - std, mean + std]))
    sc.mean_, sc.scale_, sc.var_ = np.asarray(mean, np.float64), np.asarray(std, np.float64), np.asarray(std, np.float64) ** 2
    fx.export(os.path.join(MODELS, name), name, inputs="standardised", columns=FLOW_X, postprocess=sc,
              output_columns=FLOW_TARGETS,
              description="toy detector: the flow's standardised sample (x0..x3) to physical targets "
                          "(StandardScaler inverse with the training mean and std)")
    x = np.random.default_rng(SEED + 700).normal(size=(N_FIX, 4))
    y = sc.inverse_transform(f32(x).astype(np.float64))
    write_fixture(name, x, y)
    check(name, x, y)


def make_flashsim(torch):
    n_train, n_check = 120_000, 20_000
    rng = np.random.default_rng(SEED + 4)
    # muons
    G = central_gun(rng, n_train)
    y = (rng.random(len(G)) < muon_efficiency_probability(G)).astype(np.float64)
    Gc = central_gun(rng, n_check)
    yc = (rng.random(len(Gc)) < muon_efficiency_probability(Gc)).astype(np.float64)
    Gf = central_gun(np.random.default_rng(SEED + 108), N_FIX)
    make_torch_efficiency(torch, "flashsim_muon_efficiency", MUGEN, G, y, Gc, yc, Gf, muon_efficiency_probability,
                          steps(10000), "toy detector: CMS-like muon reconstruction probability; StandardScaler + "
                          "Linear64 ReLU x3 + Linear1 Sigmoid", seed=11)
    Gr, Grc = G[y > 0.5], Gc[yc > 0.5]
    make_flow(torch, "flashsim_muon_flow", MUGEN, Gr, muon_targets(rng, Gr), Grc, muon_targets(rng, Grc),
              Gf, steps(12000), seed=12, obj="muon", extra_check=muon_extra)
    # electrons
    G = electron_gun(rng, n_train)
    y = (rng.random(len(G)) < electron_efficiency_probability(G)).astype(np.float64)
    Gc = electron_gun(rng, n_check)
    yc = (rng.random(len(Gc)) < electron_efficiency_probability(Gc)).astype(np.float64)
    Gf = electron_gun(np.random.default_rng(SEED + 109), N_FIX)
    make_torch_efficiency(torch, "flashsim_electron_efficiency", ELEGEN, G, y, Gc, yc, Gf,
                          electron_efficiency_probability, steps(10000),
                          "toy detector: CMS-like electron reconstruction probability (depends on the distance to the "
                          "nearest reconstructed muon); StandardScaler + Linear64 ReLU x3 + Linear1 Sigmoid", seed=13)
    Gr, Grc = G[y > 0.5], Gc[yc > 0.5]
    make_flow(torch, "flashsim_electron_flow", ELEGEN, Gr, electron_targets(rng, Gr), Grc, electron_targets(rng, Grc),
              Gf, steps(12000), seed=14, obj="electron", extra_check=electron_extra)


# ============================================================================= driver
def run_part(part):
    t0 = time.time()
    if part == "keras":
        keras, tf = keras_setup()
        make_tracking(keras, tf)
        make_pid(keras, tf)
        make_photons(keras, tf)
    elif part == "torch":
        make_flashsim(torch_setup())
    else:
        raise SystemExit(f"unknown part {part!r}; use keras or torch")
    print(f"TIME {part} {time.time() - t0:.0f}", flush=True)


def main():
    global QUICK
    args = sys.argv[1:]
    if "--quick" in args:
        QUICK = True
        args.remove("--quick")
    os.makedirs(FIXTURES, exist_ok=True)
    if len(args) == 2 and args[0] == "--part":
        run_part(args[1])
        return
    rows = []
    t0 = time.time()
    # one thread per framework, the two frameworks side by side (two cores)
    import tempfile

    procs = {}
    for part in ("keras", "torch"):
        cmd = [sys.executable, os.path.abspath(__file__), "--part", part] + (["--quick"] if QUICK else [])
        buf = tempfile.TemporaryFile(mode="w+")
        procs[part] = (subprocess.Popen(cmd, stdout=buf, text=True), buf)
    for part, (p, buf) in procs.items():
        p.wait()
        buf.seek(0)
        print(f"== {part} models", flush=True)
        for line in buf.read().splitlines():
            if line.startswith("REPORT "):
                rows.append(json.loads(line[7:]))
            else:
                print(line, flush=True)
        if p.returncode != 0:
            raise SystemExit(f"the {part} part failed (exit status {p.returncode})")
    print(f"\nmodel                         n_in n_noise n_out  max|ref-framework|  max|out|   (total {time.time() - t0:.0f} s)")
    for r in rows:
        print(f"{r['name']:29s} {r['n_in']:4d} {r['n_noise']:7d} {r['n_out']:5d}  {r['err']:18.3g}  {r['scale']:8.3g}")


if __name__ == "__main__":
    main()

"""Checks a `flashc simulate --pipeline lamarr` ROOT output of the Pythia8 events against the
generator's own counts, for `tests/pythia.rs`.

    python tests/production/check_pythia_output.py OUTPUT.root TRUTH.json

TRUTH.json is written by make_pythia_events.py. Per event, the rows with track_type >= 0 must be
the final-state e, μ, π, K, p with pz > 0 and the photon rows the final-state photons with
pz > 0, as Pythia counted them; `gen_event_number` must be the HepMC event number. Then: truth
columns finite, values that do not apply NaN, covariances positive, and the acceptance and the
efficiencies within wide, sane ranges. Prints one summary line; exits non-zero on a failure.
"""
import json
import sys

import numpy as np
import uproot

path, truth_path = sys.argv[1], sys.argv[2]
with open(truth_path) as f:
    truth = json.load(f)["events"]
with uproot.open(path) as f:
    d = f["lamarr"].arrays(library="np")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


ev = d["event"]
n_events = len(truth)
check(np.all(np.diff(ev) >= 0), "rows are in event order")
check(np.all((ev >= 0) & (ev < n_events)), f"event indices in [0, {n_events})")
charged = d["track_type"] >= 0
photons = d["track_type"] == -1
check(np.all(charged | photons), "every row is a charged particle or a photon")
check(np.all(d["pdg"][photons] == 22), "photon rows are photons")
check(np.all(np.isin(np.abs(d["pdg"][charged]), [11, 13, 211, 321, 2212])), "charged rows are e, mu, pi, K, p")
check(np.all(d["fold"] == 0), "one fold")

n_ch = np.bincount(ev[charged], minlength=n_events)
n_ph = np.bincount(ev[photons], minlength=n_events)
want_ch = np.array([e["charged"] for e in truth])
want_ph = np.array([e["photons"] for e in truth])
bad = np.flatnonzero((n_ch != want_ch) | (n_ph != want_ph))
check(
    bad.size == 0,
    "per-event counts equal the generator's: "
    + ", ".join(f"event {k}: {n_ch[k]}/{want_ch[k]} charged, {n_ph[k]}/{want_ph[k]} photons" for k in bad[:5]),
)
numbers = np.array([e["number"] for e in truth])
check(np.all(d["gen_event_number"] == numbers[ev]), "gen_event_number is the HepMC event number")

for c in ("true_p", "true_eta", "true_phi", "true_vx", "true_vy", "true_vz", "true_tx", "true_ty", "charge"):
    check(np.all(np.isfinite(d[c])), f"{c} finite")
check(np.all(d["true_p"] > 0), "true_p > 0")
for c in ("ctb_x", "ctb_y", "ctb_z"):
    check(np.all(np.isfinite(d[c][charged])), f"{c} finite on charged rows")
    check(np.all(np.isnan(d[c][photons])), f"{c} NaN on photon rows")
# Displaced decay vertices (K0S, Λ, b and c hadrons) reach the ntuple.
r_prod = np.hypot(d["true_vx"], d["true_vy"])
check(np.sum(r_prod > 1.0) > 10, f"displaced production vertices: {np.sum(r_prod > 1.0)} rows with r > 1 mm")

reco = d["track_type"] > 0
check(np.all(d["accepted"][reco] == 1), "reconstructed tracks are accepted")
for c in ("reco_p", "reco_x", "reco_tx", "chi2_per_dof", "ghost_prob", "cov_x_x", "cov_qop_qop"):
    check(np.all(np.isfinite(d[c][reco])), f"{c} finite on reconstructed tracks")
    check(np.all(np.isnan(d[c][~reco])), f"{c} NaN elsewhere")
check(np.all(d["cov_x_x"][reco] > 0) and np.all(d["cov_qop_qop"][reco] > 0), "covariance diagonal > 0")
pid = d["has_pid"] == 1
check(np.all(d["track_type"][pid] == 1), "PID only on long tracks")
for c in ("probnn_pi", "rich_dll_k", "pid_k"):
    check(np.all(np.isfinite(d[c][pid])) and np.all(np.isnan(d[c][~pid])), f"{c} finite exactly on PID rows")
check(np.all((d["probnn_pi"][pid] >= 0) & (d["probnn_pi"][pid] <= 1)), "probnn_pi in [0, 1]")
check(np.all(np.isfinite(d["ecal_x"][photons])), "ecal_x finite on photons")
ph_reco = photons & (d["photon_reco"] == 1)
check(np.all(np.isfinite(d["reco_e"][ph_reco])) and np.all(np.isnan(d["reco_e"][~ph_reco])), "reco_e finite exactly on reconstructed photons")
check(np.all(d["reco_e"][ph_reco] > 0), "reco_e > 0")

acc = d["accepted"][charged].mean()
long_eff = (d["track_type"] == 1).sum() / max(1, d["accepted"][charged].sum())
ph_eff = d["photon_reco"][photons].mean()
check(0.1 < acc < 0.7, f"acceptance {acc:.3f} in (0.1, 0.7)")
check(0.4 < long_eff < 1.0, f"long-track efficiency {long_eff:.3f} in (0.4, 1)")
check(0.03 < ph_eff < 0.7, f"photon efficiency {ph_eff:.3f} in (0.03, 0.7)")

if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(
    f"ok: {n_events} events, {charged.sum()} charged rows and {photons.sum()} photon rows "
    f"(= the generator's counts), acceptance {acc:.3f}, long-track efficiency {long_eff:.3f}, "
    f"photon efficiency {ph_eff:.3f}, {pid.sum()} tracks with PID"
)

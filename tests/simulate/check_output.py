"""Reads a `flashc simulate` output the way an analyst would and checks it.

    python tests/simulate/check_output.py FILE PIPELINE ROWS

ROOT files with uproot (the pipeline's TTree and the `metadata` tree), Parquet with pandas and
pyarrow. Checks the columns, the row count, that truth columns are finite, that values which do
not apply to a row are NaN, and that efficiencies are in range. Prints one summary line.
"""
import sys

import numpy as np

path, pipeline, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])

if path.endswith(".root"):
    import uproot

    with uproot.open(path) as f:
        assert f"{pipeline};1" in f.keys(), f.keys()
        d = f[pipeline].arrays(library="np")
        meta_tree = f["metadata"].arrays(library="np")
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in meta_tree[list(meta_tree)[0]]]
        vals = [v.decode() if isinstance(v, bytes) else str(v) for v in meta_tree[list(meta_tree)[1]]]
        meta = dict(zip(keys, vals))
else:
    import pandas as pd
    import pyarrow.parquet as pq

    d = {k: v.to_numpy() for k, v in pd.read_parquet(path).items()}
    meta = {k.decode(): v.decode() for k, v in (pq.ParquetFile(path).metadata.metadata or {}).items()}

n = len(d["event"])
assert n == rows, f"{n} rows, expected {rows}"
assert meta.get("pipeline") == pipeline, meta
assert "seed" in meta and "models" in meta, meta
ev = d["event"]
assert np.all(np.diff(ev) >= 0), "rows are in event order"

if pipeline == "lamarr":
    charged = d["track_type"] >= 0
    photons = d["pdg"] == 22
    assert np.all(charged | photons)
    for c in ("true_p", "true_eta", "true_phi", "true_vz", "charge"):
        assert np.all(np.isfinite(d[c])), c
    assert np.all(np.isfinite(d["ctb_z"][charged]))
    reco = d["track_type"] > 0
    assert np.all(np.isfinite(d["reco_p"][reco])) and np.all(np.isnan(d["reco_p"][~reco]))
    assert np.all(d["cov_x_x"][reco] > 0) and np.all(d["cov_qop_qop"][reco] > 0)
    # |correlation| <= 1 for the covariance (positive semi-definite 2x2 minors).
    r = d["cov_x_tx"][reco] / np.sqrt(d["cov_x_x"][reco] * d["cov_tx_tx"][reco])
    assert np.all(np.abs(r) <= 1.0 + 1e-5), np.abs(r).max()
    pid = d["has_pid"] == 1
    assert np.all(d["track_type"][pid] == 1)
    assert np.all(np.isfinite(d["probnn_pi"][pid])) and np.all(np.isnan(d["probnn_pi"][~pid]))
    acc = d["accepted"][charged].mean()
    long_ = (d["track_type"][charged] == 1).sum() / max(1, d["accepted"][charged].sum())
    ph = d["photon_reco"][photons].mean() if photons.any() else 0.0
    assert 0.3 < acc <= 1.0 and 0.3 < long_ <= 1.0, (acc, long_)
    print(f"ok: {n} rows, acceptance {acc:.3f}, long-track efficiency {long_:.3f}, photon efficiency {ph:.3f}, "
          f"PID on {pid.sum()} tracks")
else:
    reco = d["reco"] == 1
    for c in ("gen_pt", "gen_eta", "gen_phi"):
        assert np.all(np.isfinite(d[c])), c
    assert np.all(np.isfinite(d["reco_pt"][reco])) and np.all(np.isnan(d["reco_pt"][~reco]))
    ratio = d["reco_pt"][reco] / d["gen_pt"][reco]
    assert 0.8 < np.median(ratio) < 1.2, np.median(ratio)
    el = np.abs(d["pdg"]) == 11
    assert np.all(d["n_reco_muons"][el] >= 0) and np.all(d["n_reco_muons"][~el] == -1)
    eff = reco.mean()
    assert 0.3 < eff <= 1.0, eff
    print(f"ok: {n} rows, efficiency {eff:.3f}, median pT ratio {np.median(ratio):.4f}, folds {sorted(int(f) for f in set(d['fold']))}")

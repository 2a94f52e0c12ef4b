"""Writes reference HepMC files with the HepMC3 library itself (through pyhepmc) and the values
that library reads back from them, so the Rust readers are checked against the reference
implementation.

Run from this folder: python make_pyhepmc_fixtures.py   (needs `pip install pyhepmc==2.16.1`)
Outputs: pyhepmc_events.hepmc3, pyhepmc_events.hepmc2 and *.expected.json (one entry per event:
number, weights, and per particle pdg, status, px, py, pz, e, mass (GeV) and production position
x, y, z, t (mm), in the order the HepMC3 library lists them).
"""
import json
import random

import pyhepmc


def make_event(number, rng, mev_cm):
    unit_p = pyhepmc.Units.MEV if mev_cm else pyhepmc.Units.GEV
    unit_l = pyhepmc.Units.CM if mev_cm else pyhepmc.Units.MM
    fp = 1000.0 if mev_cm else 1.0
    fl = 0.1 if mev_cm else 1.0
    evt = pyhepmc.GenEvent(unit_p, unit_l)
    evt.event_number = number
    b1 = pyhepmc.GenParticle((0, 0, 6500 * fp, 6500 * fp), 2212, 4)
    b2 = pyhepmc.GenParticle((0, 0, -6500 * fp, 6500 * fp), 2212, 4)
    b1.generated_mass = b2.generated_mass = 0.938272 * fp
    pv = pyhepmc.GenVertex((rng.gauss(0, 0.05) * fl, rng.gauss(0, 0.05) * fl, rng.gauss(0, 40) * fl, 0.0))
    pv.add_particle_in(b1)
    pv.add_particle_in(b2)
    evt.add_vertex(pv)
    species = [(211, 0.13957), (-211, 0.13957), (321, 0.493677), (-321, 0.493677), (2212, 0.938272),
               (22, 0.0), (111, 0.134977), (3122, 1.115683), (11, 0.000511), (-13, 0.105658)]
    todo = []
    for _ in range(rng.randint(6, 12)):
        pid, m = rng.choice(species)
        px, py, pz = rng.gauss(0, 1), rng.gauss(0, 1), rng.uniform(2, 50)
        e = (px * px + py * py + pz * pz + m * m) ** 0.5
        status = 2 if pid in (111, 3122, -321) else 1
        p = pyhepmc.GenParticle((px * fp, py * fp, pz * fp, e * fp), pid, status)
        p.generated_mass = m * fp
        pv.add_particle_out(p)
        if status == 2:
            todo.append(p)
    for parent in todo:
        # Decays: some with a displaced, positioned vertex, some without a position (then the
        # writer may refer to the parent particle instead of a vertex).
        positioned = rng.random() < 0.5
        pos = (rng.uniform(-1, 1) * fl, rng.uniform(-1, 1) * fl, rng.uniform(10, 500) * fl, rng.uniform(10, 500) * fl)
        v = pyhepmc.GenVertex(pos if positioned else (0.0, 0.0, 0.0, 0.0))
        v.add_particle_in(parent)
        evt.add_vertex(v)
        mom = parent.momentum
        for k in range(2):
            pid = 22 if parent.pid == 111 else (2212 if k == 0 else -211)
            share = 0.6 if k == 0 else 0.4
            d = pyhepmc.GenParticle((mom.px * share, mom.py * share, mom.pz * share, mom.e * share), pid, 1)
            d.generated_mass = 0.0 if pid == 22 else 0.9 * fp
            v.add_particle_out(d)
    evt.weights = [1.0, rng.uniform(0.5, 2.0)]
    return evt


def expected(path, fmt):
    out = []
    with pyhepmc.open(path, "r", format=fmt) as f:
        for evt in f:
            fp = 1000.0 if evt.momentum_unit == pyhepmc.Units.MEV else 1.0
            fl = 10.0 if evt.length_unit == pyhepmc.Units.CM else 1.0
            parts = []
            for p in evt.particles:
                v = p.production_vertex
                pos = v.position if v is not None else evt.event_pos
                m = p.momentum
                parts.append({
                    "pdg": p.pid, "status": p.status,
                    "p": [m.px / fp, m.py / fp, m.pz / fp, m.e / fp, p.generated_mass / fp],
                    "x": [pos.x * fl, pos.y * fl, pos.z * fl, pos.t * fl],
                })
            out.append({"number": evt.event_number, "weights": list(evt.weights), "particles": parts})
    with open(path + ".expected.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def main():
    rng = random.Random(12345)
    run = pyhepmc.GenRunInfo()
    run.weight_names = ["nominal", "variation"]
    events = [make_event(n, rng, mev_cm=(n == 2)) for n in (1, 2, 3)]
    for fmt, path in (("hepmc3", "pyhepmc_events.hepmc3"), ("hepmc2", "pyhepmc_events.hepmc2")):
        with pyhepmc.open(path, "w", format=fmt) as f:
            for evt in events:
                evt.run_info = run
                f.write(evt)
        expected(path, fmt)


if __name__ == "__main__":
    main()

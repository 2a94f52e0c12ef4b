"""Generates pp events at 13.6 TeV with Pythia8 and writes them as HepMC, for `tests/pythia.rs`.

    python tests/production/make_pythia_events.py OUT_DIR [--minbias 50] [--bbbar 20] [--seed 2024]

Needs `pythia8mc` and `pyhepmc` (pinned in python/requirements-ci.txt). Writes into OUT_DIR:

- `events.hepmc3`, `events.hepmc2`, `events.hepmc3.gz`: the same events in three encodings:
  first the minimum-bias events (`SoftQCD:nonDiffractive`), then the bb̄ events
  (`HardQCD:hardbbbar`, pT-hat > 5 GeV), numbered 0, 1, 2, ... with the full generator record
  (mothers, daughters, displaced decay vertices);
- `truth.json`: per event, the process and what `flashc simulate --pipeline lamarr` must find
  in it, counted here from Pythia's own event record: final-state e, μ, π, K, p with pz > 0
  (`charged`) and final-state photons with pz > 0 (`photons`); and the timings.

Prints the generation rates (events/s, also in truth.json): Pythia8 alone (`pythia.next()`), and
Pythia8 plus building and writing the three HepMC files.

pythia8mc ships no HepMC writer (Pythia's HepMC interface is a C++ plugin), so the HepMC event is
built here from `pythia.event` with pyhepmc (`to_hepmc`): every entry but Pythia's "system"
entry 0 becomes a particle; the particles with the same first mother come out of one vertex,
placed at their production point (mm), whose incoming particles are their mothers; the beams
have no mothers.
"""
import argparse
import heapq
import json
import os
import sys
import time

CHARGED = {11, 13, 211, 321, 2212}


def make_pythia(pythia8mc, process, seed):
    pythia = pythia8mc.Pythia("", False)  # no banner
    settings = [
        "Beams:idA = 2212",
        "Beams:idB = 2212",
        "Beams:eCM = 13600.",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        "Print:quiet = on",
    ]
    if process == "minbias":
        settings.append("SoftQCD:nonDiffractive = on")
    else:
        settings += ["HardQCD:hardbbbar = on", "PhaseSpace:pTHatMin = 5."]
    for s in settings:
        if not pythia.readString(s):
            raise SystemExit(f"Pythia rejected the setting `{s}`")
    if not pythia.init():
        raise SystemExit(f"Pythia failed to initialise for {process}")
    return pythia


def truth_counts(event):
    """What the Lamarr pipeline selects, from Pythia's record (not from the HepMC files)."""
    charged = photons = 0
    for i in range(1, event.size()):
        p = event[i]
        if not p.isFinal() or not p.pz() > 0.0:
            continue
        if abs(p.id()) in CHARGED:
            charged += 1
        elif p.id() == 22:
            photons += 1
    return charged, photons


def to_hepmc(hp, event, number, info):
    """A pyhepmc.GenEvent (GeV, mm) holding Pythia's whole event record.

    The event's particles are ordered vertex by vertex (a vertex's incoming beams, then its
    outgoing particles), the vertices mothers-first. HepMC3 files list the particles in the
    event's order, HepMC2 files vertex by vertex: with this order both list the particles in the
    same order, so a reader that numbers particles by their position sees the same event in both.
    """
    n = event.size()
    parts = [None]
    for i in range(1, n):
        p = event[i]
        gp = hp.GenParticle(hp.FourVector(p.px(), p.py(), p.pz(), p.e()), p.id(), p.statusHepMC())
        gp.generated_mass = p.m()
        parts.append(gp)
    # Vertices as lists of Pythia indices: the particles with the same first mother come out of
    # one vertex, whose incoming particles are their mothers.
    ins, outs, pos = [], [], []
    into = {}  # Pythia index of a mother -> the vertex it goes into
    made_by = {}  # Pythia index -> the vertex it comes out of (none for the beams)
    for i in range(1, n):
        p = event[i]
        mothers = [m for m in p.motherList() if m > 0]
        if not mothers:
            continue  # a beam particle
        k = into.get(mothers[0])
        if k is None:
            k = len(ins)
            ins.append([m for m in mothers if m not in into])
            into.update((m, k) for m in ins[k])
            outs.append([])
            pos.append((p.xProd(), p.yProd(), p.zProd(), p.tProd()))
        outs[k].append(i)
        made_by[i] = k
    # Pythia's record is not in decay order (initial-state radiation adds the mothers of earlier
    # entries): order the vertices mothers-first (Kahn), ties by their order in the record.
    waiting = [sum(m in made_by for m in v) for v in ins]
    children = [[] for _ in ins]
    for k, v in enumerate(ins):
        for m in v:
            if m in made_by:
                children[made_by[m]].append(k)
    ready = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for c in children[k]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, c)
    if len(order) != len(ins):
        raise SystemExit(f"event {number}: the mother-daughter graph has a cycle")
    evt = hp.GenEvent(hp.Units.GEV, hp.Units.MM)
    evt.event_number = number
    for k in order:
        v = hp.GenVertex(hp.FourVector(*pos[k]))
        for m in ins[k]:
            v.add_particle_in(parts[m])
        for i in outs[k]:
            v.add_particle_out(parts[i])
        evt.add_vertex(v)  # adds the particles not yet in the event: incoming beams, outgoing
    if len(evt.particles) != n - 1:
        raise SystemExit(f"event {number}: {len(evt.particles)} of {n - 1} entries in the HepMC event")
    xs = hp.GenCrossSection()
    xs.set_cross_section(info.sigmaGen() * 1e9, info.sigmaErr() * 1e9)  # mb -> pb
    evt.cross_section = xs
    evt.weights = [info.weight()]
    evt.attributes["signal_process_id"] = info.code()
    return evt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--minbias", type=int, default=50, help="minimum-bias events")
    ap.add_argument("--bbbar", type=int, default=20, help="bb̄ events")
    ap.add_argument("--seed", type=int, default=2024, help="Pythia seed (the bb̄ run uses seed + 1)")
    a = ap.parse_args()
    out = os.path.abspath(a.out_dir)
    # Importing pythia8mc 8.317.2 executes every file of a `python/` directory in the working
    # directory (the repository has one): import it from the output directory instead.
    os.chdir(out)
    import pythia8mc
    import pyhepmc as hp
    from importlib.metadata import version

    run_info = hp.GenRunInfo()
    run_info.tools = [("Pythia8", version("pythia8mc"), "pythia8mc, to HepMC with pyhepmc")]
    run_info.weight_names = ["Weight"]
    writers = [
        hp.open(os.path.join(out, "events.hepmc3"), "w", format="HepMC3"),
        hp.open(os.path.join(out, "events.hepmc2"), "w", format="HepMC2"),
        hp.open(os.path.join(out, "events.hepmc3.gz"), "w", format="HepMC3"),
    ]
    events, timing = [], {}
    number = 0
    for k, (process, count) in enumerate([("minbias", a.minbias), ("bbbar", a.bbbar)]):
        t0 = time.perf_counter()
        pythia = make_pythia(pythia8mc, process, a.seed + k)
        t_init = time.perf_counter() - t0
        t_gen = t_write = 0.0
        done = failed = 0
        while done < count:
            t0 = time.perf_counter()
            ok = pythia.next()
            t_gen += time.perf_counter() - t0
            if not ok:
                failed += 1
                if failed > 10:
                    raise SystemExit(f"{process}: pythia.next() failed {failed} times")
                continue
            t0 = time.perf_counter()
            charged, photons = truth_counts(pythia.event)
            evt = to_hepmc(hp, pythia.event, number, pythia.infoPython())
            evt.run_info = run_info
            for w in writers:
                w.write(evt)
            t_write += time.perf_counter() - t0
            events.append({"number": number, "process": process, "charged": charged, "photons": photons})
            number += 1
            done += 1
        timing[process] = {
            "events": done,
            "init_s": round(t_init, 3),
            "generate_s": round(t_gen, 3),
            "convert_and_write_s": round(t_write, 3),
            "generate_events_per_s": round(done / t_gen, 1),
            "total_events_per_s": round(done / (t_gen + t_write), 1),
        }
    for w in writers:
        w.close()
    summary = {"pythia8mc": version("pythia8mc"), "pyhepmc": version("pyhepmc"), "seed": a.seed, "timing": timing}
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump({**summary, "events": events}, f, indent=1)
    for process, t in timing.items():
        print(
            f"{process}: {t['events']} events, Pythia8 {t['generate_events_per_s']} events/s "
            f"(pythia.next() alone), {t['total_events_per_s']} events/s with the conversion to "
            f"HepMC and the writing of the three files (init {t['init_s']} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

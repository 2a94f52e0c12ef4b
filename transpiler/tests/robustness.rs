//! Load → validate → passes → Rust and PTX codegen never panic, whatever the spec and weights:
//! the committed models are mutated (fields removed, numbers and names changed, types swapped,
//! arrays shortened, the weights file truncated or its bytes flipped) and every variant must give
//! either generated code or an `Error` — never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use serde_json::Value;

/// A small deterministic generator (SplitMix64), so that a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every JSON location, as a path of keys / indices.
fn locations(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Value::String(k.clone()));
                locations(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Value::from(i));
                locations(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, key| match key {
        Value::String(k) => v.get_mut(k.as_str()),
        Value::Number(i) => v.get_mut(i.as_u64()? as usize),
        _ => None,
    })
}

/// A number somewhere (a width, a column index, an activation parameter, an epsilon) replaced by
/// another number: these variants get past parsing into validation, the passes and codegen.
fn mutate_number(spec: &mut Value, rng: &mut Rng) {
    let mut locs = Vec::new();
    locations(spec, &mut Vec::new(), &mut locs);
    let numbers: Vec<_> = locs.into_iter().filter(|p| at(spec, p).is_some_and(|v| v.is_number())).collect();
    if numbers.is_empty() {
        return;
    }
    let path = numbers[rng.below(numbers.len())].clone();
    if let Some(slot) = at(spec, &path) {
        let old = slot.as_f64().unwrap_or(0.0);
        *slot = match rng.below(6) {
            0 => Value::from(old + 1.0),
            1 => Value::from((old - 1.0).max(0.0) as u64),
            2 => Value::from(0),
            3 => Value::from(1e-30),
            4 => Value::from(old * 2.0),
            _ => Value::from(3),
        };
    }
}

/// One random change at a random location.
fn mutate(spec: &mut Value, rng: &mut Rng) {
    let mut locs = Vec::new();
    locations(spec, &mut Vec::new(), &mut locs);
    let path = locs[rng.below(locs.len())].clone();
    let replacement = match rng.below(9) {
        0 => Value::Null,
        1 => Value::from(-1),
        2 => Value::from(0),
        3 => Value::from(1e30),
        4 => Value::from("x"),
        5 => Value::Array(vec![]),
        6 => Value::from(u32::MAX),
        7 => serde_json::json!({"op": "dense"}),
        _ => Value::from(7),
    };
    if rng.below(3) == 0 && !path.is_empty() {
        // Remove the key / element instead.
        let (last, parent) = path.split_last().unwrap();
        if let Some(p) = at(spec, parent) {
            match (p, last) {
                (Value::Object(m), Value::String(k)) => {
                    m.remove(k);
                }
                (Value::Array(a), Value::Number(i)) => {
                    let i = i.as_u64().unwrap() as usize;
                    if i < a.len() {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
    } else if let Some(slot) = at(spec, &path) {
        *slot = replacement;
    }
}

/// Whether the variant compiled (true) or was rejected with an error (false).
fn compile_never_panics(spec: &Path, out: &Path, what: &str) -> bool {
    let result = catch_unwind(AssertUnwindSafe(|| {
        transpiler::Config::new().out_dir(out).emit_rerun_if_changed(false).ptx(true).compile(&[spec]).map(|_| ())
    }));
    match result {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => panic!("{what}: the transpiler panicked (spec kept at {})", spec.display()),
    }
}

#[test]
fn mutated_specs_and_weights_never_panic() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED);
    let mut names: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "no models under {}", models.display());
    let (mut variants, mut compiled) = (0, 0);
    for path in &names {
        let text = std::fs::read_to_string(path).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        let weights_name = original["weights"].as_str().unwrap().to_owned();
        let weights = std::fs::read(models.join(&weights_name)).unwrap();
        for round in 0..100 {
            let case = dir.path().join(format!("case{variants}"));
            std::fs::create_dir_all(&case).unwrap();
            let mut spec = original.clone();
            if round % 2 == 0 {
                mutate_number(&mut spec, &mut rng);
            } else {
                for _ in 0..1 + rng.below(3) {
                    mutate(&mut spec, &mut rng);
                }
            }
            let mut w = weights.clone();
            match round % 8 {
                // Truncated weights (header or data).
                5 => w.truncate(rng.below(w.len())),
                // A flipped byte anywhere (header or data: NaN weights, bad JSON header, ...).
                3 => {
                    let i = rng.below(w.len());
                    w[i] ^= 1 << rng.below(8);
                }
                _ => {}
            }
            std::fs::write(case.join(&weights_name), &w).unwrap();
            let spec_path = case.join(path.file_name().unwrap());
            let mut spec_text = serde_json::to_string_pretty(&spec).unwrap();
            if round % 8 == 7 {
                // Truncated JSON.
                spec_text.truncate(rng.below(spec_text.len()));
            }
            std::fs::write(&spec_path, spec_text).unwrap();
            let what = format!("{} variant {round}", path.display());
            compiled += usize::from(compile_never_panics(&spec_path, &case.join("out"), &what));
            variants += 1;
        }
    }
    println!("{variants} variants: {compiled} compiled, {} rejected with an error", variants - compiled);
    // Both outcomes must occur, or the mutations are not exercising what they should.
    assert!(compiled >= variants / 10 && compiled < variants, "{compiled} of {variants} compiled");
}

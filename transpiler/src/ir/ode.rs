//! The optional `ode` section of a spec: how a continuous-flow (flow-matching) vector field is
//! integrated (`docs/flow-matching.md`).
//!
//! A model with an `ode` section is a vector field `dx/dt = v(x, context, t)`: its outputs are the
//! derivatives of the `state` input columns, in order; `time` is the input column of `t`; every
//! other input column is context, constant during the integration. Sampling integrates from
//! `t = 0` (the base noise) to `t = 1` with `method`.
//!
//! [`lower`] reads the JSON (unknown keys, methods and bad numbers); [`check`] relates it to the
//! model (columns that exist, a state as wide as the outputs, no noise); both only record
//! problems, so a spec's problems are still all reported at once.

use serde_json::Value;

use super::Model;
use crate::error::Problem;

/// An integration method with its constants (torchdiffeq's names in [`Method::name`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Forward Euler, `steps` equal steps.
    Euler { steps: usize },
    /// Explicit midpoint, `steps` equal steps.
    Midpoint { steps: usize },
    /// Classic RK4 (1/6, 2/6, 2/6, 1/6), `steps` equal steps; spec name `rk4_classic`.
    Rk4 { steps: usize },
    /// The 3/8-rule RK4 that torchdiffeq's `method="rk4"` runs; spec name `rk4`.
    Rk4ThreeEighths { steps: usize },
    /// Adaptive Dormand–Prince 5(4), torchdiffeq-compatible step control.
    Dopri5 { rtol: f64, atol: f64 },
}

impl Method {
    /// The spec's (and torchdiffeq's) name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Euler { .. } => "euler",
            Method::Midpoint { .. } => "midpoint",
            Method::Rk4 { .. } => "rk4_classic",
            Method::Rk4ThreeEighths { .. } => "rk4",
            Method::Dopri5 { .. } => "dopri5",
        }
    }
}

/// Every method name the spec accepts.
pub const METHODS: &[&str] = &["euler", "midpoint", "rk4", "rk4_classic", "dopri5"];

/// The `ode` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Ode {
    /// How to integrate.
    pub method: Method,
    /// Input column names of the integrated state, in the order of the outputs (`dx/dt`).
    pub state: Vec<String>,
    /// Input column name of the time `t`.
    pub time: String,
}

/// The section resolved against a model's input columns (indices into the input row).
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// Input column of each state component, in output order.
    pub state: Vec<usize>,
    /// Input column of `t`.
    pub time: usize,
    /// Every other input column, in input order.
    pub context: Vec<usize>,
}

const KEYS: &[&str] = &["method", "steps", "rtol", "atol", "state", "time"];

fn problem(file: &str, message: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem::model(file, format!("ode: {}", message.into()), hint)
}

/// Reads the section; `None` (with problems recorded) when it is malformed.
pub fn lower(v: &Value, file: &str, problems: &mut Vec<Problem>) -> Option<Ode> {
    let before = problems.len();
    let Value::Object(obj) = v else {
        problems.push(problem(
            file,
            format!("the section must be an object, found {v}"),
            "write e.g. \"ode\": {\"method\": \"rk4\", \"steps\": 5, \"state\": [\"x0\", \"x1\"], \"time\": \"t\"}",
        ));
        return None;
    };
    for k in obj.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        problems.push(problem(
            file,
            format!("unknown key \"{k}\""),
            format!("the section takes {}", super::lower::quoted(KEYS)),
        ));
    }
    let method = match obj.get("method") {
        Some(Value::String(s)) if METHODS.contains(&s.as_str()) => Some(s.as_str()),
        Some(Value::String(s)) => {
            problems.push(problem(
                file,
                format!("unknown method \"{s}\""),
                "supported methods: \"euler\", \"midpoint\", \"rk4\" (torchdiffeq's, the 3/8 rule), \
                 \"rk4_classic\" (1/6, 2/6, 2/6, 1/6), \"dopri5\" (adaptive, with rtol and atol)",
            ));
            None
        }
        Some(other) => {
            problems.push(problem(
                file,
                format!("\"method\" must be a string, found {other}"),
                format!("one of {}", super::lower::quoted(METHODS)),
            ));
            None
        }
        None => {
            problems.push(problem(
                file,
                "missing \"method\"",
                format!("add \"method\": one of {}", super::lower::quoted(METHODS)),
            ));
            None
        }
    };
    let adaptive = method == Some("dopri5");
    let steps = match (obj.get("steps"), method) {
        (Some(_), Some("dopri5")) => {
            problems.push(problem(
                file,
                "\"steps\" is given for the adaptive method dopri5",
                "dopri5 chooses its steps from \"rtol\" and \"atol\"; remove \"steps\", or use a \
                 fixed-step method",
            ));
            None
        }
        (Some(Value::Number(n)), _) => match n.as_u64() {
            Some(0) => {
                problems.push(problem(
                    file,
                    "\"steps\" is 0",
                    "a fixed-step method needs at least one step (FlashSim-style CFMs use 5 to 25 RK4 steps)",
                ));
                None
            }
            Some(s) => usize::try_from(s).ok(),
            None => {
                problems.push(problem(
                    file,
                    format!("\"steps\" must be a positive integer, found {n}"),
                    "write e.g. \"steps\": 5",
                ));
                None
            }
        },
        (Some(other), _) => {
            problems.push(problem(
                file,
                format!("\"steps\" must be a positive integer, found {other}"),
                "write e.g. \"steps\": 5",
            ));
            None
        }
        (None, Some(m)) if !adaptive => {
            problems.push(problem(
                file,
                format!("missing \"steps\" for the fixed-step method {m}"),
                "add e.g. \"steps\": 5 (the number of equal steps from t = 0 to 1)",
            ));
            None
        }
        (None, _) => None,
    };
    let mut tol = |key: &str| -> Option<f64> {
        match (obj.get(key), adaptive) {
            (Some(_), false) => {
                if let Some(m) = method {
                    problems.push(problem(
                        file,
                        format!("\"{key}\" is given for the fixed-step method {m}"),
                        "tolerances only apply to \"dopri5\"; remove it, or use \"method\": \"dopri5\"",
                    ));
                }
                None
            }
            (Some(Value::Number(n)), true) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                _ => {
                    problems.push(problem(
                        file,
                        format!("\"{key}\" = {n} is invalid"),
                        "tolerances are finite numbers ≥ 0 (FlashSim uses 1e-5 or 1e-6)",
                    ));
                    None
                }
            },
            (Some(other), true) => {
                problems.push(problem(
                    file,
                    format!("\"{key}\" must be a number, found {other}"),
                    "write e.g. \"rtol\": 1e-5",
                ));
                None
            }
            (None, true) => {
                problems.push(problem(
                    file,
                    format!("missing \"{key}\" for dopri5"),
                    "dopri5 needs both \"rtol\" and \"atol\" (torchdiffeq's defaults are 1e-7 and 1e-9; \
                     FlashSim uses 1e-5 or 1e-6)",
                ));
                None
            }
            (None, false) => None,
        }
    };
    let (rtol, atol) = (tol("rtol"), tol("atol"));
    if let (Some(r), Some(a)) = (rtol, atol) {
        if r == 0.0 && a == 0.0 {
            problems.push(problem(
                file,
                "\"rtol\" and \"atol\" are both 0",
                "at least one tolerance must be positive",
            ));
        }
    }
    let state = match obj.get("state") {
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<String>>(),
        ),
        Some(other) => {
            problems.push(problem(
                file,
                format!("\"state\" must be a non-empty list of input column names, found {other}"),
                "list the input columns that are integrated, in the order of the outputs, e.g. [\"x0\", \"x1\"]",
            ));
            None
        }
        None => {
            problems.push(problem(
                file,
                "missing \"state\"",
                "list the input columns that are integrated, in the order of the outputs (dx/dt)",
            ));
            None
        }
    };
    let time = match obj.get("time") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(problem(
                file,
                format!("\"time\" must be an input column name, found {other}"),
                "write e.g. \"time\": \"t\"",
            ));
            None
        }
        None => {
            problems.push(problem(
                file,
                "missing \"time\"",
                "name the input column that holds t, e.g. \"time\": \"t\"",
            ));
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    let method = match (method?, steps) {
        ("euler", Some(steps)) => Method::Euler { steps },
        ("midpoint", Some(steps)) => Method::Midpoint { steps },
        ("rk4", Some(steps)) => Method::Rk4ThreeEighths { steps },
        ("rk4_classic", Some(steps)) => Method::Rk4 { steps },
        ("dopri5", None) => Method::Dopri5 {
            rtol: rtol?,
            atol: atol?,
        },
        _ => return None,
    };
    Some(Ode {
        method,
        state: state?,
        time: time?,
    })
}

/// Relates the section to the model's inputs, outputs and noise.
pub fn check(m: &Model, ode: &Ode, problems: &mut Vec<Problem>) {
    let file = m.source.as_str();
    let columns: Vec<&str> = m
        .inputs
        .iter()
        .flat_map(|i| i.columns.iter().map(String::as_str))
        .collect();
    let find = |name: &str, what: &str, problems: &mut Vec<Problem>| -> Option<usize> {
        let hits: Vec<usize> = (0..columns.len()).filter(|&i| columns[i] == name).collect();
        match hits[..] {
            [i] => Some(i),
            [] => {
                let shown: Vec<&str> = columns.iter().copied().take(40).collect();
                problems.push(problem(
                    file,
                    format!("{what} column \"{name}\" is not an input column"),
                    format!(
                        "name columns of the model's inputs; they are {}",
                        super::lower::quoted(&shown)
                    ),
                ));
                None
            }
            _ => {
                problems.push(problem(
                    file,
                    format!("{what} column \"{name}\" appears {} times among the input columns", hits.len()),
                    "give the inputs' columns distinct names",
                ));
                None
            }
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for s in &ode.state {
        if !seen.insert(s.as_str()) {
            problems.push(problem(
                file,
                format!("state column \"{s}\" is listed twice"),
                "list each state column once",
            ));
        }
        find(s, "state", problems);
    }
    if ode.state.contains(&ode.time) {
        problems.push(problem(
            file,
            format!("\"{}\" is both a state column and the time column", ode.time),
            "the time column is not integrated; remove it from \"state\"",
        ));
    } else {
        find(&ode.time, "time", problems);
    }
    let n_out: usize = m.outputs.iter().map(|o| o.columns.len()).sum();
    if ode.state.len() != n_out {
        problems.push(problem(
            file,
            format!(
                "\"state\" lists {} column(s), but the outputs (the vector field dx/dt) have {n_out}",
                ode.state.len()
            ),
            "the outputs are the derivatives of the state columns, one per state column, in the same order",
        ));
    }
    if crate::codegen::rust::upper_name(&m.name) == "ODE" {
        problems.push(problem(
            file,
            format!("model name \"{}\" clashes with the generated constant ODE (its settings)", m.name),
            "rename the model, e.g. \"ode_field\"",
        ));
    }
    if let Some(n) = &m.noise {
        problems.push(problem(
            file,
            format!("the model also takes noise (\"{}\")", n.name),
            "a vector field is deterministic: the base noise is the state at t = 0; remove \"noise\"",
        ));
    }
}

/// Input column indices of the state, time and context; `None` unless [`check`] passes.
pub fn columns(m: &Model, ode: &Ode) -> Option<Columns> {
    let names: Vec<&str> = m
        .inputs
        .iter()
        .flat_map(|i| i.columns.iter().map(String::as_str))
        .collect();
    let find = |n: &str| names.iter().position(|c| *c == n);
    let state: Vec<usize> = ode.state.iter().map(|s| find(s)).collect::<Option<_>>()?;
    let time = find(&ode.time)?;
    let context = (0..names.len())
        .filter(|i| *i != time && !state.contains(i))
        .collect();
    Some(Columns {
        state,
        time,
        context,
    })
}

//! Lowering: spec + weights → [`Model`].
//!
//! Reports what only the spec can tell: unknown ops and fields, missing or mistyped fields,
//! tensors missing from the weights file or stored in an unsupported dtype. A node that cannot be
//! lowered is left out of the model and its name is recorded in [`Lowered::broken`], so that
//! validation does not report its consumers a second time.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::error::Problem;
use crate::spec::{NodeSpec, Spec};
use crate::weights::Weights;

mod flow;

/// The result of lowering: a model (possibly missing broken nodes) and what went wrong.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// The model.
    pub model: Model,
    /// Problems found.
    pub problems: Vec<Problem>,
    /// Names of nodes that could not be lowered.
    pub broken: BTreeSet<String>,
    /// Non-fatal findings (e.g. tensors the spec does not use).
    pub warnings: Vec<String>,
}

/// The problem with a spec's `format` string, if it is not one this crate reads.
pub fn format_problem(format: &str, file: &str) -> Option<Problem> {
    (!crate::spec::SUPPORTED_FORMATS.contains(&format)).then(|| {
        Problem::model(
            file,
            format!("format \"{format}\" is not supported"),
            format!(
                "supported formats: {}; re-export the model with a matching exporter version",
                quoted(crate::spec::SUPPORTED_FORMATS)
            ),
        )
    })
}

/// Lowers `spec`, reading tensors from `weights`; `file` is the spec path as given.
pub fn lower(spec: &Spec, weights: &Weights, file: &str) -> Lowered {
    let mut problems = Vec::new();
    let mut broken = BTreeSet::new();
    let mut used = BTreeSet::new();
    if let Some(p) = format_problem(&spec.format, file) {
        problems.push(p);
    }
    let noise = spec.noise.as_ref().map(|n| Noise {
        name: n.name.clone(),
        dim: n.dim,
        distribution: match n.distribution.as_str() {
            "normal" => Distribution::Normal,
            "uniform" => Distribution::Uniform,
            other => {
                problems.push(Problem::model(
                    file,
                    format!("noise \"{}\" has distribution \"{other}\"", n.name),
                    "supported distributions: \"normal\" (N(0,1)), \"uniform\" (U(0,1))",
                ));
                Distribution::Normal
            }
        },
    });
    let mut nodes = Vec::new();
    for ns in &spec.graph {
        let mut f = Fields {
            ns,
            file,
            weights,
            problems: &mut problems,
            used: &mut used,
            seen: BTreeSet::new(),
            ok: true,
        };
        let op = f.op();
        f.finish();
        let ok = f.ok;
        match op {
            Some(op) if ok => nodes.push(Node {
                name: ns.name.clone(),
                op,
            }),
            _ => {
                broken.insert(ns.name.clone());
            }
        }
    }
    let warnings = weights
        .tensors
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .map(|k| format!("{file}: tensor \"{k}\" of the weights file is not used by the spec"))
        .collect();
    let ode = spec
        .ode
        .as_ref()
        .and_then(|v| super::ode::lower(v, file, &mut problems));
    let model = Model {
        name: spec.name.clone(),
        description: spec.description.clone().unwrap_or_default(),
        source: file.to_owned(),
        inputs: spec
            .inputs
            .iter()
            .map(|i| Input {
                name: i.name.clone(),
                columns: i.columns.clone(),
            })
            .collect(),
        noise,
        nodes,
        outputs: spec
            .outputs
            .iter()
            .map(|o| Output {
                value: o.value.clone(),
                columns: o.columns.clone(),
            })
            .collect(),
        ode,
    };
    Lowered {
        model,
        problems,
        broken,
        warnings,
    }
}

/// Reads the fields of one node, recording problems.
struct Fields<'a> {
    ns: &'a NodeSpec,
    file: &'a str,
    weights: &'a Weights,
    problems: &'a mut Vec<Problem>,
    used: &'a mut BTreeSet<String>,
    seen: BTreeSet<&'static str>,
    ok: bool,
}

impl Fields<'_> {
    fn problem(&mut self, message: String, hint: impl Into<String>) {
        self.ok = false;
        self.problems.push(Problem::node(
            self.file,
            &self.ns.name,
            &self.ns.op,
            message,
            hint,
        ));
    }

    fn get(&mut self, key: &'static str) -> Option<&Value> {
        self.seen.insert(key);
        self.ns
            .fields
            .get(key)
            .filter(|v| !v.is_null() || key == "threshold")
    }

    fn missing(&mut self, key: &str, what: &str) {
        self.problem(
            format!("missing field \"{key}\" ({what})"),
            format!(
                "add \"{key}\" to the node; see docs/spec.md, op {}",
                self.ns.op
            ),
        );
    }

    fn string(&mut self, key: &'static str, what: &str) -> Option<String> {
        match self.get(key).cloned() {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.problem(
                    format!("field \"{key}\" must be a string ({what}), found {other}"),
                    "write it as a JSON string",
                );
                None
            }
            None => {
                self.missing(key, what);
                None
            }
        }
    }

    fn number(&mut self, key: &'static str, what: &str) -> Option<f64> {
        match self.get(key).cloned() {
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                self.problem(
                    format!("field \"{key}\" must be a number ({what}), found {other}"),
                    "write it as a JSON number",
                );
                None
            }
            None => {
                self.missing(key, what);
                None
            }
        }
    }

    fn strings(&mut self, key: &'static str, what: &str) -> Option<Vec<String>> {
        match self.get(key).cloned() {
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Some(
                a.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            Some(other) => {
                self.problem(
                    format!(
                        "field \"{key}\" must be a list of value names ({what}), found {other}"
                    ),
                    "write it as a JSON list of strings",
                );
                None
            }
            None => {
                self.missing(key, what);
                None
            }
        }
    }

    fn tensor_named(&mut self, key: &str, name: &str) -> Option<Tensor> {
        self.tensor_of(key, name, false)
    }

    /// A tensor of floats (`integer == false`; integer dtypes are rejected) or of integers
    /// (`integer == true`; an integer dtype, or floats that are all whole numbers).
    fn tensor_of(&mut self, key: &str, name: &str, integer: bool) -> Option<Tensor> {
        self.used.insert(name.to_owned());
        match self.weights.tensors.get(name) {
            Some(entry) if entry.integer != integer && !(integer && entry.data.as_ref().is_ok_and(|d| d.iter().all(|x| x.fract() == 0.0))) => {
                let (msg, hint) = if integer {
                    (format!("field \"{key}\" needs integers, the tensor holds non-integer values"), "save the buffer as an integer tensor (int64), as the framework stores it")
                } else {
                    (
                        format!("field \"{key}\": dtype {} is not supported (supported: F32, F16, BF16; integer dtypes only where the spec needs integers)", entry.dtype),
                        "export the tensor as float32, float16 or bfloat16",
                    )
                };
                self.ok = false;
                self.problems.push(Problem::node(self.file, &self.ns.name, &self.ns.op, msg, hint).with_tensor(name));
                None
            }
            Some(entry) => match &entry.data {
                Ok(data) => Some(Tensor {
                    name: name.to_owned(),
                    shape: entry.shape.clone(),
                    data: data.clone(),
                }),
                Err(dtype) => {
                    self.ok = false;
                    self.problems.push(
                        Problem::node(
                            self.file,
                            &self.ns.name,
                            &self.ns.op,
                            format!("field \"{key}\": dtype {dtype} is not supported (supported: F32, F16, BF16; integers I64, I32, I16, I8, U8 where the spec needs integers)"),
                            "export the tensor as float32, float16 or bfloat16",
                        )
                        .with_tensor(name),
                    );
                    None
                }
            },
            None => {
                let near: Vec<&str> = self
                    .weights
                    .tensors
                    .keys()
                    .filter(|k| {
                        k.contains(self.ns.name.as_str())
                            || name.rsplit('/').next().is_some_and(|t| k.ends_with(t))
                    })
                    .take(6)
                    .map(String::as_str)
                    .collect();
                let hint = if near.is_empty() {
                    format!("the weights file has {} tensor(s), none with a similar name; re-export the weights or fix field \"{key}\"", self.weights.tensors.len())
                } else {
                    format!("similar names in the weights file: {}; fix field \"{key}\" or re-export the weights", quoted(&near))
                };
                self.ok = false;
                self.problems.push(
                    Problem::node(
                        self.file,
                        &self.ns.name,
                        &self.ns.op,
                        format!("field \"{key}\" names a tensor that is not in the weights file"),
                        hint,
                    )
                    .with_tensor(name),
                );
                None
            }
        }
    }

    fn tensor(&mut self, key: &'static str, what: &str) -> Option<Tensor> {
        let name = self.string(key, what)?;
        self.tensor_named(key, &name)
    }

    fn opt_tensor(&mut self, key: &'static str, what: &str) -> Option<Option<Tensor>> {
        if self.get(key).is_none() {
            return Some(None);
        }
        self.tensor(key, what).map(Some)
    }

    fn direction(&mut self) -> Option<Direction> {
        match self
            .string("direction", "\"forward\" or \"inverse\"")?
            .as_str()
        {
            "forward" => Some(Direction::Forward),
            "inverse" => Some(Direction::Inverse),
            other => {
                self.problem(
                    format!("field \"direction\" is \"{other}\""),
                    "use \"forward\" (sklearn transform) or \"inverse\" (inverse_transform)",
                );
                None
            }
        }
    }

    fn columns(&mut self) -> Option<Option<Vec<usize>>> {
        match self.get("columns").cloned() {
            None => Some(None),
            Some(Value::Array(a)) => {
                let cols: Option<Vec<usize>> = a
                    .iter()
                    .map(|v| v.as_u64().and_then(|c| usize::try_from(c).ok()))
                    .collect();
                if cols.is_none() {
                    self.problem(
                        "field \"columns\" must list non-negative integer column indices".into(),
                        "write e.g. \"columns\": [0, 2, 5]",
                    );
                }
                cols.map(Some)
            }
            Some(other) => {
                self.problem(
                    format!("field \"columns\" must be a list of column indices, found {other}"),
                    "write e.g. \"columns\": [0, 2, 5]",
                );
                None
            }
        }
    }

    fn activation(&mut self, required: bool) -> Option<Activation> {
        let v = match self.get("activation").cloned() {
            None if required => {
                self.missing(
                    "activation",
                    "an activation object such as {\"kind\": \"relu\"}",
                );
                return None;
            }
            None => return Some(Activation::Linear),
            Some(v) => v,
        };
        self.activation_value(v)
    }

    /// Parses an activation object.
    fn activation_value(&mut self, v: Value) -> Option<Activation> {
        let Value::Object(obj) = v else {
            self.problem(format!("field \"activation\" must be an object such as {{\"kind\": \"relu\"}}, found {v}"), "every activation parameter is explicit; see docs/spec.md");
            return None;
        };
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let params: &[&str] = match kind {
            "leaky_relu" | "elu" => &["alpha"],
            "selu" => &["alpha", "scale"],
            "gelu" => &["approximate"],
            "softplus" => &["beta", "threshold"],
            k if Activation::KINDS.contains(&k) => &[],
            _ => {
                self.problem(
                    format!(
                        "activation kind {} is not supported",
                        obj.get("kind")
                            .map_or("(missing)".to_owned(), Value::to_string)
                    ),
                    format!("supported kinds: {}", Activation::KINDS.join(", ")),
                );
                return None;
            }
        };
        let mut bad = false;
        for key in obj.keys() {
            if key != "kind" && !params.contains(&key.as_str()) {
                self.problem(
                    format!("activation {kind} has unknown parameter \"{key}\""),
                    format!(
                        "{kind} takes {}",
                        if params.is_empty() {
                            "no parameters".to_owned()
                        } else {
                            quoted(params)
                        }
                    ),
                );
                bad = true;
            }
        }
        let num = |this: &mut Self, p: &str| -> Option<f32> {
            match obj.get(p) {
                Some(Value::Number(n)) => n.as_f64().map(|x| x as f32),
                Some(Value::Null) if kind == "softplus" && p == "threshold" => Some(f32::INFINITY),
                other => {
                    this.problem(
                        format!(
                            "activation {kind}: parameter \"{p}\" must be a number, found {}",
                            other.map_or("nothing".to_owned(), Value::to_string)
                        ),
                        format!("{kind} needs explicit {}; see docs/spec.md", quoted(params)),
                    );
                    None
                }
            }
        };
        let act = match kind {
            "linear" => Some(Activation::Linear),
            "relu" => Some(Activation::Relu),
            "leaky_relu" => num(self, "alpha").map(|alpha| Activation::LeakyRelu { alpha }),
            "elu" => num(self, "alpha").map(|alpha| Activation::Elu { alpha }),
            "selu" => {
                let (a, s) = (num(self, "alpha"), num(self, "scale"));
                a.zip(s)
                    .map(|(alpha, scale)| Activation::Selu { alpha, scale })
            }
            "silu" => Some(Activation::Silu),
            "gelu" => {
                match obj.get("approximate").and_then(Value::as_str) {
                    Some("none") => Some(Activation::GeluErf),
                    Some("tanh") => Some(Activation::GeluTanh),
                    _ => {
                        self.problem("activation gelu: parameter \"approximate\" must be \"none\" or \"tanh\"".into(), "write \"approximate\": \"none\" (erf) or \"tanh\"");
                        None
                    }
                }
            }
            "tanh" => Some(Activation::Tanh),
            "sigmoid" => Some(Activation::Sigmoid),
            "softplus" => {
                let (b, t) = (num(self, "beta"), num(self, "threshold"));
                b.zip(t)
                    .map(|(beta, threshold)| Activation::Softplus { beta, threshold })
            }
            _ => Some(Activation::Softmax),
        };
        if bad {
            None
        } else {
            act
        }
    }

    fn op(&mut self) -> Option<Op> {
        let ns = self.ns;
        let input = |f: &mut Self| f.string("input", "the name of the value read");
        Some(match ns.op.as_str() {
            "dense" => {
                let input = input(self);
                let kernel = self.tensor("kernel", "tensor [n_in, n_out]");
                let bias = self.opt_tensor("bias", "tensor [n_out]");
                let activation = self.activation(false);
                Op::Dense {
                    input: input?,
                    kernel: kernel?,
                    bias: bias?,
                    activation: activation?,
                    residual: None,
                }
            }
            "activation" => {
                let input = input(self);
                let activation = self.activation(true);
                Op::Activation {
                    input: input?,
                    activation: activation?,
                }
            }
            "add" => {
                let inputs = self.strings("inputs", "the two values added")?;
                match <[String; 2]>::try_from(inputs) {
                    Ok([a, b]) => Op::Add { a, b },
                    Err(v) => {
                        self.problem(
                            format!("add takes exactly 2 inputs, found {}", v.len()),
                            "chain several add nodes to sum more values",
                        );
                        return None;
                    }
                }
            }
            "mul" => {
                let inputs = self.strings("inputs", "the two values multiplied")?;
                match <[String; 2]>::try_from(inputs) {
                    Ok([a, b]) => Op::Mul { a, b },
                    Err(v) => {
                        self.problem(
                            format!("mul takes exactly 2 inputs, found {}", v.len()),
                            "chain several mul nodes to multiply more values",
                        );
                        return None;
                    }
                }
            }
            "concat" => Op::Concat {
                inputs: self.strings("inputs", "the values concatenated")?,
            },
            "batchnorm" => {
                let input = input(self);
                let gamma = self.tensor("gamma", "tensor [n]");
                let beta = self.tensor("beta", "tensor [n]");
                let mean = self.tensor("mean", "tensor [n]");
                let var = self.tensor("var", "tensor [n]");
                let eps = self.number("eps", "the epsilon added to the variance");
                Op::BatchNorm {
                    input: input?,
                    gamma: gamma?,
                    beta: beta?,
                    mean: mean?,
                    var: var?,
                    eps: eps?,
                }
            }
            "layernorm" => {
                let input = input(self);
                let gamma = self.opt_tensor("gamma", "tensor [n]");
                let beta = self.opt_tensor("beta", "tensor [n]");
                let eps = self.number("eps", "the epsilon added to the variance");
                Op::LayerNorm {
                    input: input?,
                    gamma: gamma?,
                    beta: beta?,
                    eps: eps?,
                }
            }
            "standard_scaler" => {
                let input = input(self);
                let direction = self.direction();
                let columns = self.columns();
                let mean = self.tensor("mean", "tensor [n_cols], sklearn mean_");
                let scale = self.tensor("scale", "tensor [n_cols], sklearn scale_");
                Op::StandardScaler {
                    input: input?,
                    direction: direction?,
                    columns: columns?,
                    mean: mean?,
                    scale: scale?,
                }
            }
            "min_max" => {
                let input = input(self);
                let direction = self.direction();
                let columns = self.columns();
                let min = self.tensor("min", "tensor [n_cols], sklearn min_");
                let scale = self.tensor("scale", "tensor [n_cols], sklearn scale_");
                Op::MinMax {
                    input: input?,
                    direction: direction?,
                    columns: columns?,
                    min: min?,
                    scale: scale?,
                }
            }
            "quantile" => {
                let input = input(self);
                let direction = self.direction();
                let columns = self.columns();
                let quantiles = self.tensor("quantiles", "tensor [n_quantiles, n_cols]");
                let references = self.tensor("references", "tensor [n_quantiles]");
                let dist = self.string("output_distribution", "\"normal\" or \"uniform\"");
                let normal = match dist.as_deref() {
                    Some("normal") => Some(true),
                    Some("uniform") => Some(false),
                    Some(other) => {
                        self.problem(
                            format!("field \"output_distribution\" is \"{other}\""),
                            "use \"normal\" or \"uniform\" (sklearn output_distribution)",
                        );
                        None
                    }
                    None => None,
                };
                let bounds_threshold =
                    self.number("bounds_threshold", "sklearn BOUNDS_THRESHOLD, 1e-7");
                Op::Quantile {
                    input: input?,
                    direction: direction?,
                    columns: columns?,
                    quantiles: quantiles?,
                    references: references?,
                    normal: normal?,
                    bounds_threshold: bounds_threshold?,
                }
            }
            "logit" => {
                let input = input(self);
                let direction = self.direction();
                let columns = self.columns();
                let scale = self.number("scale", "the factor a in a·log(x/(1−x))");
                Op::Logit {
                    input: input?,
                    direction: direction?,
                    columns: columns?,
                    scale: scale?,
                }
            }
            "decorrelate" => {
                let input = input(self);
                let direction = self.direction();
                let columns = self.columns();
                let matrix = self.tensor("matrix", "tensor [n, n]");
                let mean = self.opt_tensor("mean", "tensor [n]");
                Op::Decorrelate {
                    input: input?,
                    direction: direction?,
                    columns: columns?,
                    matrix: matrix?,
                    mean: mean?,
                }
            }
            "flow" => return self.flow(),
            other => {
                self.problem(
                    format!("unknown op \"{other}\""),
                    format!("supported ops: {}", Op::NAMES.join(", ")),
                );
                return None;
            }
        })
    }

    /// Reports fields the op does not read.
    fn finish(&mut self) {
        if !Op::NAMES.contains(&self.ns.op.as_str()) {
            return;
        }
        let unknown: Vec<&String> = self
            .ns
            .fields
            .keys()
            .filter(|k| !self.seen.contains(k.as_str()))
            .collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = ["name", "op"]
                .into_iter()
                .chain(self.seen.iter().copied())
                .collect();
            let names: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            let msg = format!("unknown field(s) {}", quoted(&names));
            self.problem(msg, format!("op {} takes {}", self.ns.op, quoted(&known)));
        }
    }
}

/// `"a", "b", "c"`.
pub(crate) fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

//! The intermediate representation: a model as plain data.
//!
//! An [`ir::Model`](Model) is what a spec means, with nothing left implicit: every tensor is
//! decoded to f32 and held inline ([`Tensor`]), every activation parameter, epsilon and bound is
//! a field. Values are named; [`Model::nodes`] is in topological order, each [`Node`] producing
//! the value of its own name from values defined before it (inputs, noise, earlier nodes).
//!
//! [`Op`] is the single list of operations: spec lowering ([`lower`]), validation
//! ([`validate`]), the passes, the reference evaluator ([`crate::reference`]) and codegen all
//! match on it, so adding an op is one variant plus its arms (the compiler lists the places).
//!
//! Stages:
//! * [`lower::lower`]: spec + weights → `Model`, reporting what only the spec can tell (unknown
//!   op, missing field or tensor, unsupported dtype);
//! * [`validate::validate`]: `Model` → [`ValidModel`], collecting every structural problem
//!   (names, widths, shapes, parameters, non-finite values, singular matrices);
//! * `ValidModel` is the unoptimised IR: exactly the spec's graph, checked. It is public so that
//!   baselines (e.g. a naive interpreter) can be built from it;
//! * [`crate::passes`] rewrites it (folding, fusion) and plans buffers for codegen.

pub mod flow;
pub mod lower;
pub mod ode;
pub mod validate;

pub use validate::{validate, ValidModel};

/// A whole model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Model name, `[a-z][a-z0-9_]*` (not a Rust keyword).
    pub name: String,
    /// Free text from the spec.
    pub description: String,
    /// The spec path as given to the transpiler (used in messages and in generated code).
    pub source: String,
    /// Named inputs, concatenated in this order in a caller's batch.
    pub inputs: Vec<Input>,
    /// Optional noise input.
    pub noise: Option<Noise>,
    /// Nodes, in topological order.
    pub nodes: Vec<Node>,
    /// Outputs, concatenated in this order.
    pub outputs: Vec<Output>,
    /// How the model is integrated, when it is a flow-matching vector field.
    pub ode: Option<ode::Ode>,
}

/// One named input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Value name.
    pub name: String,
    /// Column names (the width is their number).
    pub columns: Vec<String>,
}

/// The noise input: `dim` values per row drawn by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    /// Value name.
    pub name: String,
    /// Values per row.
    pub dim: usize,
    /// Distribution.
    pub distribution: Distribution,
}

/// Noise distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// N(0, 1).
    Normal,
    /// U(0, 1).
    Uniform,
}

/// One output.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Value written.
    pub value: String,
    /// Column names (must match the value's width).
    pub columns: Vec<String>,
}

/// A tensor from the weights file, decoded to f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name in the weights file (or a derived name for tensors the passes compute).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A rank-1 tensor.
    pub fn vector(name: impl Into<String>, data: Vec<f32>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: vec![data.len()],
            data,
        }
    }
}

/// One node: the value `name` computed by `op`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Name of the value produced.
    pub name: String,
    /// What computes it.
    pub op: Op,
}

/// Direction of a pre/post-processing transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// sklearn `transform`.
    Forward,
    /// sklearn `inverse_transform`.
    Inverse,
}

/// Activation functions, with every parameter explicit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `x`.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `x >= 0 ? x : alpha x`.
    LeakyRelu { alpha: f32 },
    /// `x > 0 ? x : alpha (e^x - 1)`.
    Elu { alpha: f32 },
    /// `scale * elu_alpha(x)`.
    Selu { alpha: f32, scale: f32 },
    /// `x σ(x)`.
    Silu,
    /// `x Φ(x)`.
    GeluErf,
    /// tanh approximation of GELU.
    GeluTanh,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x beta > threshold ? x : log(1 + e^(beta x)) / beta`; `threshold` may be `+inf`.
    Softplus { beta: f32, threshold: f32 },
    /// Softmax over the row (never fused into a dense).
    Softmax,
}

impl Activation {
    /// The spec's `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Elu { .. } => "elu",
            Activation::Selu { .. } => "selu",
            Activation::Silu => "silu",
            Activation::GeluErf | Activation::GeluTanh => "gelu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softplus { .. } => "softplus",
            Activation::Softmax => "softmax",
        }
    }

    /// Every `kind` the spec accepts.
    pub const KINDS: &'static [&'static str] = &[
        "linear",
        "relu",
        "leaky_relu",
        "elu",
        "selu",
        "silu",
        "gelu",
        "tanh",
        "sigmoid",
        "softplus",
        "softmax",
    ];
}

/// A residual added in a dense layer's epilogue (only produced by the fusion pass).
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    /// The value added (same width as the dense output).
    pub value: String,
    /// `false`: `y = act(x W + b) + r`; `true`: `y = act(x W + b + r)`.
    pub before_act: bool,
}

/// The operations. This enum is the single list of ops.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `y = act(x · kernel + bias) (+ residual)`; kernel `[n_in, n_out]` (Keras layout).
    Dense {
        input: String,
        kernel: Tensor,
        bias: Option<Tensor>,
        activation: Activation,
        residual: Option<Residual>,
    },
    /// Element-wise activation (softmax: over the row).
    Activation {
        input: String,
        activation: Activation,
    },
    /// `a + b`, same widths.
    Add { a: String, b: String },
    /// `a ⊙ b` (element-wise product), same widths: GLU gating `h · σ(g)`.
    Mul { a: String, b: String },
    /// Columns of each input in turn.
    Concat { inputs: Vec<String> },
    /// Inference batch normalisation.
    BatchNorm {
        input: String,
        gamma: Tensor,
        beta: Tensor,
        mean: Tensor,
        var: Tensor,
        eps: f64,
    },
    /// Layer normalisation over the row; `gamma`/`beta` both present or both absent.
    LayerNorm {
        input: String,
        gamma: Option<Tensor>,
        beta: Option<Tensor>,
        eps: f64,
    },
    /// sklearn `StandardScaler` on `columns` (all when `None`).
    StandardScaler {
        input: String,
        direction: Direction,
        columns: Option<Vec<usize>>,
        mean: Tensor,
        scale: Tensor,
    },
    /// sklearn `MinMaxScaler` (`min_`, `scale_`) on `columns`.
    MinMax {
        input: String,
        direction: Direction,
        columns: Option<Vec<usize>>,
        min: Tensor,
        scale: Tensor,
    },
    /// sklearn `QuantileTransformer` on `columns`; `quantiles` is `[n_quantiles, n_cols]`.
    Quantile {
        input: String,
        direction: Direction,
        columns: Option<Vec<usize>>,
        quantiles: Tensor,
        references: Tensor,
        normal: bool,
        bounds_threshold: f64,
    },
    /// `a log(x / (1 - x))` on `columns` (inverse: `1 / (1 + exp(-y / a))`).
    Logit {
        input: String,
        direction: Direction,
        columns: Option<Vec<usize>>,
        scale: f64,
    },
    /// `(x - mean) · matrix` on `columns` (all when `None`); the inverse uses the matrix inverse.
    Decorrelate {
        input: String,
        direction: Direction,
        columns: Option<Vec<usize>>,
        matrix: Tensor,
        mean: Option<Tensor>,
    },
    /// A normalizing flow: sampling or log density ([`flow`]).
    Flow(Box<flow::Flow>),
}

impl Op {
    /// Every op name the spec accepts, in documentation order.
    pub const NAMES: &'static [&'static str] = &[
        "dense",
        "activation",
        "add",
        "mul",
        "concat",
        "batchnorm",
        "layernorm",
        "standard_scaler",
        "min_max",
        "quantile",
        "logit",
        "decorrelate",
        "flow",
    ];

    /// The spec's op name.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Dense { .. } => "dense",
            Op::Activation { .. } => "activation",
            Op::Add { .. } => "add",
            Op::Mul { .. } => "mul",
            Op::Concat { .. } => "concat",
            Op::BatchNorm { .. } => "batchnorm",
            Op::LayerNorm { .. } => "layernorm",
            Op::StandardScaler { .. } => "standard_scaler",
            Op::MinMax { .. } => "min_max",
            Op::Quantile { .. } => "quantile",
            Op::Logit { .. } => "logit",
            Op::Decorrelate { .. } => "decorrelate",
            Op::Flow(_) => "flow",
        }
    }

    /// The values this op reads, in order (a residual included).
    pub fn inputs(&self) -> Vec<&str> {
        match self {
            Op::Dense {
                input, residual, ..
            } => {
                let mut v = vec![input.as_str()];
                if let Some(r) = residual {
                    v.push(r.value.as_str());
                }
                v
            }
            Op::Add { a, b } | Op::Mul { a, b } => vec![a.as_str(), b.as_str()],
            Op::Concat { inputs } => inputs.iter().map(String::as_str).collect(),
            Op::Flow(f) => std::iter::once(f.input.as_str()).chain(f.context.as_deref()).collect(),
            Op::Activation { input, .. }
            | Op::BatchNorm { input, .. }
            | Op::LayerNorm { input, .. }
            | Op::StandardScaler { input, .. }
            | Op::MinMax { input, .. }
            | Op::Quantile { input, .. }
            | Op::Logit { input, .. }
            | Op::Decorrelate { input, .. } => vec![input.as_str()],
        }
    }

    /// Every tensor the op holds.
    pub fn tensors(&self) -> Vec<&Tensor> {
        match self {
            Op::Dense { kernel, bias, .. } => {
                std::iter::once(kernel).chain(bias.as_ref()).collect()
            }
            Op::Activation { .. }
            | Op::Add { .. }
            | Op::Mul { .. }
            | Op::Concat { .. }
            | Op::Logit { .. } => vec![],
            Op::BatchNorm {
                gamma,
                beta,
                mean,
                var,
                ..
            } => vec![gamma, beta, mean, var],
            Op::LayerNorm { gamma, beta, .. } => gamma.iter().chain(beta.as_ref()).collect(),
            Op::StandardScaler { mean, scale, .. } => vec![mean, scale],
            Op::MinMax { min, scale, .. } => vec![min, scale],
            Op::Quantile {
                quantiles,
                references,
                ..
            } => vec![quantiles, references],
            Op::Decorrelate { matrix, mean, .. } => {
                std::iter::once(matrix).chain(mean.as_ref()).collect()
            }
            Op::Flow(f) => f.tensors(),
        }
    }

    /// The single input of a one-input op, mutably (used by passes to rewire).
    pub fn input_mut(&mut self) -> Option<&mut String> {
        match self {
            Op::Dense { input, .. }
            | Op::Activation { input, .. }
            | Op::BatchNorm { input, .. }
            | Op::LayerNorm { input, .. }
            | Op::StandardScaler { input, .. }
            | Op::MinMax { input, .. }
            | Op::Quantile { input, .. }
            | Op::Logit { input, .. }
            | Op::Decorrelate { input, .. } => Some(input),
            Op::Add { .. } | Op::Mul { .. } | Op::Concat { .. } | Op::Flow(_) => None,
        }
    }
}

/// Rust keywords (strict and reserved): a model name must not be one, since it names a module.
pub const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// A decorrelation over the full row of width `width`, in f64: the `[k, k]` matrix of a node
/// acting on `columns` embedded into a `[width, width]` one, with the identity on the pass-through
/// columns and a zero mean there. Exact: a pass-through column gets `1·x` plus exact zeros.
pub fn decorrelate_full_width(
    width: usize,
    columns: &Option<Vec<usize>>,
    matrix: &Tensor,
    mean: &Option<Tensor>,
) -> (Vec<f64>, Option<Vec<f64>>) {
    let cols: Vec<usize> = columns.clone().unwrap_or_else(|| (0..width).collect());
    let k = cols.len();
    let mut full = vec![0.0f64; width * width];
    for c in (0..width).filter(|c| !cols.contains(c)) {
        full[c * width + c] = 1.0;
    }
    for (a, &ca) in cols.iter().enumerate() {
        for (b, &cb) in cols.iter().enumerate() {
            if let (Some(slot), Some(&v)) = (full.get_mut(ca * width + cb), matrix.data.get(a * k + b)) {
                *slot = f64::from(v);
            }
        }
    }
    let mean = mean.as_ref().map(|t| {
        let mut m = vec![0.0f64; width];
        for (a, &ca) in cols.iter().enumerate() {
            if let (Some(slot), Some(&v)) = (m.get_mut(ca), t.data.get(a)) {
                *slot = f64::from(v);
            }
        }
        m
    });
    (full, mean)
}

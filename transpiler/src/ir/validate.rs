//! Validation: [`Model`] → [`ValidModel`], collecting every problem.
//!
//! Checks names (valid, unique, defined before use), widths (dense `n_in`, `add`/`mul` operands,
//! `columns` in range), tensor shapes, parameters (activations, epsilons, scales, quantile
//! tables), finiteness of every tensor value, and invertibility of decorrelation matrices.
//! A `ValidModel` can only be built here, so later stages rely on all of it without checking.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::*;
use crate::error::Problem;
use crate::Error;

mod flow;

/// A model that passed validation, with the width of every value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidModel {
    model: Model,
    widths: BTreeMap<String, usize>,
    warnings: Vec<String>,
}

impl ValidModel {
    /// The (unoptimised) IR.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Consumes self, giving the IR back.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// Width (columns per row) of a value; 0 for an unknown name.
    pub fn width(&self, value: &str) -> usize {
        self.widths.get(value).copied().unwrap_or(0)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Total input width (all inputs concatenated).
    pub fn n_inputs(&self) -> usize {
        self.model.inputs.iter().map(|i| i.columns.len()).sum()
    }

    /// Noise width.
    pub fn n_noise(&self) -> usize {
        self.model.noise.as_ref().map_or(0, |n| n.dim)
    }

    /// Total output width.
    pub fn n_outputs(&self) -> usize {
        self.model.outputs.iter().map(|o| o.columns.len()).sum()
    }

    /// Non-fatal findings (tensors of the weights file that the spec does not use, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of weights (tensor elements).
    pub fn params(&self) -> usize {
        self.model
            .nodes
            .iter()
            .flat_map(|n| n.op.tensors())
            .map(|t| t.data.len())
            .sum()
    }

    /// Multiply-adds per row of the matrix products (dense layers and decorrelations).
    pub fn macs_per_row(&self) -> usize {
        self.model
            .nodes
            .iter()
            .map(|n| match &n.op {
                Op::Dense { kernel, .. } | Op::Decorrelate { matrix: kernel, .. } => {
                    kernel.data.len()
                }
                Op::Flow(f) => f
                    .transforms
                    .iter()
                    .map(|t| match t {
                        super::flow::FlowTransform::AffineAutoregressive { made, .. } => made.macs(),
                        super::flow::FlowTransform::Coupling { net, .. } => net.macs(),
                        _ => 0,
                    })
                    .sum(),
                _ => 0,
            })
            .sum()
    }

    pub(crate) fn replace_model(
        &self,
        model: Model,
        widths: BTreeMap<String, usize>,
    ) -> ValidModel {
        ValidModel {
            model,
            widths,
            warnings: self.warnings.clone(),
        }
    }

    pub(crate) fn widths(&self) -> &BTreeMap<String, usize> {
        &self.widths
    }
}

impl fmt::Display for ValidModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.model;
        writeln!(f, "model {} (from {})", m.name, m.source)?;
        if !m.description.is_empty() {
            writeln!(f, "  {}", m.description)?;
        }
        let inputs: Vec<String> = m
            .inputs
            .iter()
            .map(|i| format!("{} [{}]", i.name, i.columns.len()))
            .collect();
        writeln!(f, "  inputs:  {} ({})", self.n_inputs(), inputs.join(", "))?;
        if let Some(n) = &m.noise {
            writeln!(f, "  noise:   {} ({:?})", n.dim, n.distribution)?;
        }
        let outputs: Vec<String> = m
            .outputs
            .iter()
            .map(|o| format!("{} [{}]", o.value, o.columns.len()))
            .collect();
        writeln!(
            f,
            "  outputs: {} ({})",
            self.n_outputs(),
            outputs.join(", ")
        )?;
        let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &m.nodes {
            *ops.entry(n.op.name()).or_default() += 1;
        }
        let ops: Vec<String> = Op::NAMES
            .iter()
            .filter_map(|o| ops.get(o).map(|c| format!("{o} {c}")))
            .collect();
        writeln!(f, "  ops:     {} ({})", m.nodes.len(), ops.join(", "))?;
        if let Some(o) = &m.ode {
            let how = match o.method {
                ode::Method::Euler { steps }
                | ode::Method::Midpoint { steps }
                | ode::Method::Rk4 { steps }
                | ode::Method::Rk4ThreeEighths { steps } => format!("{steps} steps"),
                ode::Method::Dopri5 { rtol, atol } => format!("rtol {rtol:e}, atol {atol:e}"),
            };
            writeln!(
                f,
                "  ode:     {}, {how} (state {}, time {})",
                o.method.name(),
                o.state.len(),
                o.time
            )?;
        }
        writeln!(f, "  params:  {}", self.params())?;
        write!(f, "  MACs per row: {}", self.macs_per_row())
    }
}

/// Validates a model built in code (no lowering problems to merge).
pub fn validate(model: Model) -> Result<ValidModel, Error> {
    validate_with(model, Vec::new(), &BTreeSet::new(), Vec::new())
}

/// Validates `model`, adding `problems` found earlier; values in `broken` are known to be bad
/// already and are not reported again where they are used.
pub(crate) fn validate_with(
    model: Model,
    mut problems: Vec<Problem>,
    broken: &BTreeSet<String>,
    warnings: Vec<String>,
) -> Result<ValidModel, Error> {
    let widths = check(&model, &mut problems, broken);
    if problems.is_empty() {
        Ok(ValidModel {
            model,
            widths,
            warnings,
        })
    } else {
        Err(Error::Invalid {
            file: model.source,
            problems,
        })
    }
}

/// `[a-z][a-z0-9_]*`, not a Rust keyword.
pub fn is_model_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|c| c.is_ascii_lowercase())
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RUST_KEYWORDS.contains(&s)
}

/// A value name: ASCII letters, digits and `_ . : / -`, starting with a letter, digit or `_`
/// (PyTorch names `Sequential` children "0", "1", ...).
pub fn is_value_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-'))
}

/// All checks; returns the widths of the values that have one.
fn check(
    m: &Model,
    problems: &mut Vec<Problem>,
    broken: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let file = m.source.as_str();
    if !is_model_name(&m.name) {
        problems.push(Problem::model(
            file,
            format!("model name \"{}\" is not a valid identifier", m.name),
            "use lower case letters, digits and _, starting with a letter, e.g. \"tracking_resolution\" (not a Rust keyword)",
        ));
    }
    let camel = crate::codegen::rust::camel_name(&m.name);
    if is_model_name(&m.name)
        && (camel == crate::codegen::rust::upper_name(&m.name)
            || camel == "Self"
            || m.name == "models")
    {
        problems.push(Problem::model(
            file,
            format!("model name \"{}\" clashes in generated code (type {camel}, static {})", m.name, crate::codegen::rust::upper_name(&m.name)),
            "choose another name: a word of two or more letters (\"acc\" rather than \"a\"), not \"models\" or \"self_\"",
        ));
    }
    let mut widths: BTreeMap<String, usize> = BTreeMap::new();
    let mut defined: BTreeSet<String> = BTreeSet::new();
    let mut define =
        |name: &str, what: String, problems: &mut Vec<Problem>, node: Option<&Node>| -> bool {
            let mk = |msg: String, hint: &str| match node {
                Some(n) => Problem::node(file, &n.name, n.op.name(), msg, hint),
                None => Problem::model(file, msg, hint),
            };
            if !is_value_name(name) {
                problems.push(mk(
                    format!("{what} name \"{name}\" is not a valid identifier"),
                    "value names start with a letter, digit or _ and use letters, digits and _ . : / -",
                ));
            }
            if !defined.insert(name.to_owned()) {
                problems.push(mk(
                    format!("duplicate value name \"{name}\" ({what})"),
                    "inputs, the noise and graph nodes share one namespace; rename one of them",
                ));
                return false;
            }
            true
        };
    if m.inputs.is_empty() {
        problems.push(Problem::model(
            file,
            "the model has no inputs",
            "list at least one input with its columns",
        ));
    }
    for i in &m.inputs {
        if define(&i.name, "input".into(), problems, None) {
            if i.columns.is_empty() {
                problems.push(Problem::model(
                    file,
                    format!("input \"{}\" has no columns", i.name),
                    "list the input's column names",
                ));
            }
            widths.insert(i.name.clone(), i.columns.len());
        }
    }
    if let Some(n) = &m.noise {
        if define(&n.name, "noise".into(), problems, None) {
            if n.dim == 0 {
                problems.push(Problem::model(
                    file,
                    format!("noise \"{}\" has dim 0", n.name),
                    "omit \"noise\" for a model without noise",
                ));
            }
            widths.insert(n.name.clone(), n.dim);
        }
    }
    let mut seen_broken: BTreeSet<&str> = BTreeSet::new();
    for node in &m.nodes {
        let mut c = NodeCheck {
            file,
            node,
            problems: &mut *problems,
            widths: &widths,
            broken,
            seen_broken: &seen_broken,
            unknown: false,
        };
        let width = c.op();
        let unknown = c.unknown;
        let is_new = define(&node.name, "node".into(), problems, Some(node));
        for t in node.op.tensors() {
            if let Some((i, v)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                problems.push(
                    Problem::node(
                        file,
                        &node.name,
                        node.op.name(),
                        format!(
                            "value {v} at index {} (flat index {i}) is not finite",
                            multi_index(i, &t.shape)
                        ),
                        "the trained model has NaN or infinite weights; retrain or re-export it",
                    )
                    .with_tensor(&t.name),
                );
            }
        }
        if let (true, Some(w), false) = (is_new, width, unknown) {
            widths.insert(node.name.clone(), w);
        }
        if width.is_none() || unknown {
            seen_broken.insert(node.name.as_str());
        }
    }
    if let Some(ode) = &m.ode {
        super::ode::check(m, ode, problems);
    }
    let all_broken = |v: &str| broken.contains(v) || seen_broken.contains(v);
    if m.outputs.is_empty() {
        problems.push(Problem::model(
            file,
            "the model has no outputs",
            "list at least one output value with its columns",
        ));
    }
    for o in &m.outputs {
        match widths.get(&o.value) {
            Some(&w) if w != o.columns.len() => problems.push(Problem::model(
                file,
                format!(
                    "output \"{}\" lists {} column(s), but the value has width {w}",
                    o.value,
                    o.columns.len()
                ),
                "list one column name per column of the value",
            )),
            Some(_) => {}
            None if all_broken(&o.value) => {}
            None => problems.push(Problem::model(
                file,
                format!("output value \"{}\" is not defined", o.value),
                format!(
                    "outputs name an input, the noise or a node; defined values: {}",
                    list_defined(&widths)
                ),
            )),
        }
    }
    widths
}

fn list_defined(widths: &BTreeMap<String, usize>) -> String {
    let names: Vec<&str> = widths.keys().map(String::as_str).take(20).collect();
    super::lower::quoted(&names)
}

/// `[r, c]` for a flat index into `shape`.
fn multi_index(mut i: usize, shape: &[usize]) -> String {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            if let Some(slot) = idx.get_mut(k) {
                *slot = i % d;
            }
            i /= d;
        }
    }
    format!("{idx:?}")
}

/// Checks one node and computes its output width (`None`: unknown, error already reported or
/// caused by a broken input).
struct NodeCheck<'a> {
    file: &'a str,
    node: &'a Node,
    problems: &'a mut Vec<Problem>,
    widths: &'a BTreeMap<String, usize>,
    broken: &'a BTreeSet<String>,
    seen_broken: &'a BTreeSet<&'a str>,
    unknown: bool,
}

impl NodeCheck<'_> {
    fn report(&mut self, message: String, hint: impl Into<String>) {
        self.problems.push(Problem::node(
            self.file,
            &self.node.name,
            self.node.op.name(),
            message,
            hint,
        ));
    }

    fn report_t(&mut self, t: &Tensor, message: String, hint: impl Into<String>) {
        self.problems.push(
            Problem::node(
                self.file,
                &self.node.name,
                self.node.op.name(),
                message,
                hint,
            )
            .with_tensor(&t.name),
        );
    }

    /// Width of an input value, reporting it when undefined.
    fn input(&mut self, v: &str) -> Option<usize> {
        if let Some(&w) = self.widths.get(v) {
            return Some(w);
        }
        self.unknown = true;
        if !self.broken.contains(v) && !self.seen_broken.contains(v) {
            let msg = if v == self.node.name {
                format!("reads its own output \"{v}\"")
            } else {
                format!("reads value \"{v}\", which is not defined before this node")
            };
            self.report(
                msg,
                format!(
                    "nodes are in topological order and read earlier values; defined so far: {}",
                    list_defined(self.widths)
                ),
            );
        }
        None
    }

    fn shape(&mut self, t: &Tensor, want: &[usize], why: &str) -> bool {
        if t.shape != want {
            self.report_t(
                t,
                format!("has shape {:?}, expected {:?} ({why})", t.shape, want),
                "re-export the model, or fix the node's \"input\"",
            );
            return false;
        }
        true
    }

    fn activation(&mut self, a: &Activation) {
        let bad = |x: f32| !x.is_finite();
        let msg = match *a {
            Activation::LeakyRelu { alpha } | Activation::Elu { alpha } if bad(alpha) => {
                Some(format!("alpha = {alpha}"))
            }
            Activation::Selu { alpha, scale } if bad(alpha) || bad(scale) => {
                Some(format!("alpha = {alpha}, scale = {scale}"))
            }
            Activation::Softplus { beta, threshold }
                if bad(beta) || beta <= 0.0 || threshold.is_nan() =>
            {
                Some(format!("beta = {beta}, threshold = {threshold}"))
            }
            _ => None,
        };
        if let Some(m) = msg {
            self.report(
                format!("activation {} has invalid parameters: {m}", a.kind()),
                "parameters must be finite f32 numbers (softplus: beta > 0, threshold a number or null for none)",
            );
        }
    }

    /// Checks `columns` against the input width; returns the number of transformed columns.
    fn columns(&mut self, columns: &Option<Vec<usize>>, w: usize) -> Option<usize> {
        let Some(cols) = columns else { return Some(w) };
        let mut ok = !cols.is_empty();
        if cols.is_empty() {
            self.report(
                "\"columns\" is empty".into(),
                "omit \"columns\" to transform every column",
            );
        }
        let mut seen = BTreeSet::new();
        for &c in cols {
            if c >= w {
                ok = false;
                self.report(
                    format!("column index {c} is out of range (the input has width {w})"),
                    "column indices are 0-based positions in the input value",
                );
            } else if !seen.insert(c) {
                ok = false;
                self.report(
                    format!("column index {c} is listed twice"),
                    "list each column once",
                );
            }
        }
        ok.then_some(cols.len())
    }

    fn vector(&mut self, t: &Tensor, n: usize, why: &str) -> bool {
        self.shape(t, &[n], why)
    }

    fn nonzero(&mut self, t: &Tensor) {
        if let Some(i) = t.data.iter().position(|&x| x == 0.0) {
            self.report_t(t, format!("is 0 at index {i}"), "a scale must be non-zero (sklearn replaces zero scales by 1); re-export the transformer");
        }
    }

    fn op(&mut self) -> Option<usize> {
        let node = self.node;
        match &node.op {
            Op::Dense {
                input,
                kernel,
                bias,
                activation,
                residual,
            } => {
                let w = self.input(input);
                self.activation(activation);
                let r = residual.as_ref().map(|r| self.input(&r.value));
                if kernel.shape.len() != 2 {
                    self.report_t(kernel, format!("has shape {:?}, expected [n_in, n_out]", kernel.shape), "the kernel is a matrix in Keras layout (x @ K); PyTorch weights are exported transposed");
                    return None;
                }
                let (n_in, n_out) = (kernel.shape[0], kernel.shape[1]);
                let mut ok = true;
                if let Some(w) = w {
                    if n_in != w {
                        ok = false;
                        self.report_t(
                            kernel,
                            format!("has shape {:?}, expected [{w}, {n_out}] (n_in = width {w} of input \"{input}\")", kernel.shape),
                            "re-export the model, or fix the \"input\" of the node",
                        );
                    }
                }
                if n_out == 0 {
                    ok = false;
                    self.report_t(
                        kernel,
                        "has no output columns".into(),
                        "n_out must be at least 1",
                    );
                }
                if let Some(b) = bias {
                    ok &= self.vector(b, n_out, "n_out of the kernel");
                }
                if let Some(Some(rw)) = r {
                    if rw != n_out {
                        ok = false;
                        self.report(
                            format!("residual has width {rw}, the dense output {n_out}"),
                            "a residual must have the dense layer's output width",
                        );
                    }
                }
                (ok && w.is_some()).then_some(n_out)
            }
            Op::Activation { input, activation } => {
                self.activation(activation);
                self.input(input)
            }
            Op::Add { a, b } => {
                let (wa, wb) = (self.input(a), self.input(b));
                match (wa, wb) {
                    (Some(x), Some(y)) if x != y => {
                        self.report(
                            format!("inconsistent dimensions: \"{a}\" has width {x}, \"{b}\" has width {y}"),
                            "add needs two values of the same width",
                        );
                        None
                    }
                    (Some(x), Some(_)) => Some(x),
                    _ => None,
                }
            }
            Op::Mul { a, b } => {
                let (wa, wb) = (self.input(a), self.input(b));
                match (wa, wb) {
                    (Some(x), Some(y)) if x != y => {
                        self.report(
                            format!("inconsistent dimensions: \"{a}\" has width {x}, \"{b}\" has width {y}"),
                            "mul multiplies two values of the same width element by element (for GLU gating, split the gate into its own dense layer of the gated width)",
                        );
                        None
                    }
                    (Some(x), Some(_)) => Some(x),
                    _ => None,
                }
            }
            Op::Concat { inputs } => {
                if inputs.is_empty() {
                    self.report(
                        "concat has no inputs".into(),
                        "list the values to concatenate in \"inputs\"",
                    );
                    return None;
                }
                let ws: Vec<Option<usize>> = inputs.iter().map(|v| self.input(v)).collect();
                ws.into_iter().sum()
            }
            Op::BatchNorm {
                input,
                gamma,
                beta,
                mean,
                var,
                eps,
            } => {
                let w = self.input(input)?;
                let mut ok = true;
                for t in [gamma, beta, mean, var] {
                    ok &= self.vector(t, w, "one entry per input column");
                }
                if !eps.is_finite() || *eps < 0.0 {
                    ok = false;
                    self.report(
                        format!("eps = {eps} is invalid"),
                        "eps is a finite number >= 0 (Keras 1e-3, PyTorch 1e-5, nflows 1e-3)",
                    );
                } else if let Some(i) = var.data.iter().position(|&v| !(f64::from(v) + eps > 0.0)) {
                    ok = false;
                    self.report_t(
                        var,
                        format!("var + eps is not positive at index {i}"),
                        "variances are >= 0; re-export the layer's moving variance",
                    );
                }
                ok.then_some(w)
            }
            Op::LayerNorm {
                input,
                gamma,
                beta,
                eps,
            } => {
                let w = self.input(input)?;
                let mut ok = true;
                if gamma.is_some() != beta.is_some() {
                    ok = false;
                    self.report(
                        "gamma and beta must be given together".into(),
                        "give both (affine layer norm) or neither",
                    );
                }
                for t in gamma.iter().chain(beta.iter()) {
                    ok &= self.vector(t, w, "one entry per input column");
                }
                if !eps.is_finite() || *eps <= 0.0 || *eps as f32 <= 0.0 {
                    ok = false;
                    self.report(
                        format!("eps = {eps} is invalid"),
                        "eps is a positive number (Keras 1e-3, PyTorch 1e-5)",
                    );
                }
                ok.then_some(w)
            }
            Op::StandardScaler {
                input,
                columns,
                mean: a,
                scale,
                ..
            }
            | Op::MinMax {
                input,
                columns,
                min: a,
                scale,
                ..
            } => {
                let w = self.input(input)?;
                let n = self.columns(columns, w)?;
                let ok = self.vector(a, n, "one entry per transformed column")
                    & self.vector(scale, n, "one entry per transformed column");
                self.nonzero(scale);
                ok.then_some(w)
            }
            Op::Quantile {
                input,
                columns,
                quantiles,
                references,
                bounds_threshold,
                ..
            } => {
                let w = self.input(input)?;
                let n = self.columns(columns, w)?;
                let nq = quantiles.shape.first().copied().unwrap_or(0);
                let mut ok = self.shape(quantiles, &[nq, n], "[n_quantiles, n_cols]")
                    & self.vector(references, nq, "n_quantiles");
                if nq < 2 {
                    ok = false;
                    self.report_t(
                        quantiles,
                        format!("has {nq} quantile(s)"),
                        "a quantile transform needs at least 2 quantiles",
                    );
                }
                if !(*bounds_threshold > 0.0 && *bounds_threshold < 0.5) {
                    ok = false;
                    self.report(
                        format!("bounds_threshold = {bounds_threshold} is invalid"),
                        "use sklearn's BOUNDS_THRESHOLD, 1e-7",
                    );
                }
                if ok {
                    if references.data.windows(2).any(|p| !(p[0] <= p[1])) {
                        ok = false;
                        self.report_t(
                            references,
                            "is not non-decreasing".into(),
                            "references are sklearn's references_, increasing from 0 to 1",
                        );
                    }
                    for c in 0..n {
                        let col: Vec<f32> = (0..nq)
                            .filter_map(|q| quantiles.data.get(q * n + c).copied())
                            .collect();
                        if col.windows(2).any(|p| !(p[0] <= p[1])) {
                            ok = false;
                            self.report_t(
                                quantiles,
                                format!("column {c} is not non-decreasing"),
                                "quantiles are sklearn's quantiles_, sorted per column",
                            );
                            break;
                        }
                    }
                }
                ok.then_some(w)
            }
            Op::Logit {
                input,
                columns,
                scale,
                ..
            } => {
                let w = self.input(input)?;
                self.columns(columns, w)?;
                if !scale.is_finite() || *scale == 0.0 || !(*scale as f32).is_normal() {
                    self.report(
                        format!("scale = {scale} is invalid"),
                        "the logit scale is a finite non-zero number",
                    );
                    return None;
                }
                Some(w)
            }
            Op::Decorrelate {
                input,
                columns,
                matrix,
                mean,
                ..
            } => {
                let w = self.input(input)?;
                let n = self.columns(columns, w)?;
                let mut ok = self.shape(matrix, &[n, n], "[n, n], n = number of transformed columns");
                if let Some(m) = mean {
                    ok &= self.vector(m, n, "one entry per transformed column");
                }
                if ok && matrix.data.iter().all(|x| x.is_finite()) {
                    let m64: Vec<f64> = matrix.data.iter().map(|&x| f64::from(x)).collect();
                    if crate::linalg::invert(&m64, n).is_none() {
                        ok = false;
                        self.report_t(matrix, "is singular (not invertible)".into(), "a decorrelation matrix must be invertible; check the exported matrix (e.g. drop constant columns before the transform)");
                    }
                }
                ok.then_some(w)
            }
            Op::Flow(f) => self.flow(f),
        }
    }
}

//! Lowering the optimised IR to a [`Program`]: a straight-line list of kernel calls over tile
//! buffers, plus one weight blob.
//!
//! * **Buffers.** Every value lives in a *slot*, a stack buffer of `TILE` rows; a value of width
//!   `w` uses row stride `round_up(w, PANEL)` (the dense kernel writes whole panels). A slot is
//!   freed after the last node reading its value and reused by later values (its size is the
//!   largest stride it ever holds). In-place ops (activations, scalers, quantile, logit, norms)
//!   take over their input's slot when the input dies there; otherwise the input is copied first.
//!   A node's output is allocated before its inputs are freed, so a kernel never reads and writes
//!   the same buffer.
//! * **Tile.** `TILE = clamp(16384 / max_stride, 1, 64)` rows, so each buffer is at most 64 KiB.
//! * **Weights.** Dense kernels are packed in panels of [`PANEL`] output columns
//!   (`packed[(p·n_in + k)·PANEL + j] = K[k][p·PANEL + j]`, zero padded; bias padded to whole
//!   panels); quantile tables are stored column-major; a decorrelation inverse is computed in
//!   f64. Every array starts at a multiple of 16 floats (64 bytes) of the blob.

use std::collections::BTreeMap;

use crate::ir::{Activation, Direction, Distribution, Op, Tensor, ValidModel};

pub mod flow;
pub use flow::FlowStep;

/// Output columns per packed kernel panel (the runtime's `dense::PANEL`).
pub const PANEL: usize = 16;
/// Largest tile buffer, in f32.
pub const MAX_BUFFER_FLOATS: usize = 16384;
/// Largest tile, in rows.
pub const MAX_TILE: usize = 64;

/// `x` rounded up to a multiple of [`PANEL`] (at least one panel).
pub fn round_up(x: usize) -> usize {
    x.div_ceil(PANEL).max(1) * PANEL
}

/// A model lowered for codegen.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Model name.
    pub name: String,
    /// Spec path as given.
    pub source: String,
    /// Description.
    pub description: String,
    /// All input columns, in order.
    pub input_columns: Vec<String>,
    /// All output columns, in order.
    pub output_columns: Vec<String>,
    /// Noise width (0 without noise).
    pub n_noise: usize,
    /// Noise distribution.
    pub noise: Option<Distribution>,
    /// Rows per tile.
    pub tile: usize,
    /// Multiply-adds per row of the dense layers (after folding).
    pub macs_per_row: u64,
    /// Size of each slot, as a row stride (floats per row).
    pub slots: Vec<usize>,
    /// The weight blob, f32.
    pub blob: Vec<f32>,
    /// Arrays in the blob; steps refer to them by index.
    pub arrays: Vec<BlobArray>,
    /// The calls, in order, run once per tile.
    pub steps: Vec<Step>,
    /// Scratch floats per row the flow kernels need (0 without flows).
    pub flow_scratch: usize,
    /// How the model is integrated, when it is a flow-matching vector field (`ode` section).
    pub ode: Option<Ode>,
}

/// A model's `ode` section with its columns resolved to input column indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Ode {
    /// The method and its constants.
    pub method: crate::ir::ode::Method,
    /// State, time and context columns.
    pub columns: crate::ir::ode::Columns,
}

/// An array in the weight blob.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobArray {
    /// First float.
    pub offset: usize,
    /// Number of floats.
    pub len: usize,
    /// What it is (for docs in generated code).
    pub what: String,
}

/// A value's place: slot and row stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buf {
    /// Slot index.
    pub slot: usize,
    /// Row stride in floats.
    pub stride: usize,
}

/// One kernel call on a tile of `n` rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Copies `width` input columns starting at `col0` of the caller's input rows.
    LoadInput { col0: usize, width: usize, dst: Buf },
    /// Copies the noise rows.
    LoadNoise { width: usize, dst: Buf },
    /// Copies columns between slots.
    Copy {
        src: Buf,
        src_col0: usize,
        width: usize,
        dst: Buf,
        dst_col0: usize,
    },
    /// Dense layer with fused epilogue.
    Dense {
        node: String,
        x: Buf,
        y: Buf,
        n_in: usize,
        n_out: usize,
        kernel: usize,
        bias: usize,
        act: Activation,
        /// The residual and whether it is added before the activation.
        residual: Option<(Buf, bool)>,
    },
    /// Element-wise activation (or softmax) in place.
    Act {
        node: String,
        data: Buf,
        width: usize,
        act: Activation,
    },
    /// `x[c] = x[c]·mul[i] + add[i]` on columns `cols`, in place.
    Affine {
        node: String,
        data: Buf,
        cols: Vec<u32>,
        mul: usize,
        add: usize,
    },
    /// `x = x·mul + add` on all `width` columns, in place (unfolded batch norm).
    ScaleShift {
        node: String,
        data: Buf,
        width: usize,
        mul: usize,
        add: usize,
    },
    /// Quantile transform on `cols`, in place.
    Quantile {
        node: String,
        data: Buf,
        cols: Vec<u32>,
        n_quantiles: usize,
        quantiles: usize,
        references: usize,
        normal: bool,
        bounds_threshold: f64,
        inverse: bool,
    },
    /// Logit transform on `cols`, in place.
    Logit {
        node: String,
        data: Buf,
        cols: Vec<u32>,
        scale: f32,
        inverse: bool,
    },
    /// `y = (x − sub)·m`, `m` `[n][n]`.
    MatMul {
        node: String,
        x: Buf,
        y: Buf,
        n: usize,
        m: usize,
        sub: Option<usize>,
    },
    /// Layer norm in place.
    LayerNorm {
        node: String,
        data: Buf,
        width: usize,
        gamma: Option<usize>,
        beta: Option<usize>,
        eps: f32,
    },
    /// `y = a + b`.
    Add {
        node: String,
        a: Buf,
        b: Buf,
        y: Buf,
        width: usize,
    },
    /// `y = a ⊙ b` (element-wise product).
    Mul {
        node: String,
        a: Buf,
        b: Buf,
        y: Buf,
        width: usize,
    },
    /// Copies a value to the caller's output rows at column `col0`.
    Store { src: Buf, width: usize, col0: usize },
    /// A normalizing-flow kernel call of flow node `node`.
    Flow { node: String, step: FlowStep },
}

struct Planner {
    blob: Vec<f32>,
    arrays: Vec<BlobArray>,
    slots: Vec<usize>,
    free: Vec<bool>,
    bufs: BTreeMap<String, Buf>,
    steps: Vec<Step>,
}

impl Planner {
    fn array(&mut self, data: impl IntoIterator<Item = f32>, what: String) -> usize {
        while self.blob.len() % PANEL != 0 {
            self.blob.push(0.0);
        }
        let offset = self.blob.len();
        self.blob.extend(data);
        self.arrays.push(BlobArray {
            offset,
            len: self.blob.len() - offset,
            what,
        });
        self.arrays.len() - 1
    }

    fn tensor(&mut self, t: &Tensor, node: &str, role: &str) -> usize {
        self.array(
            t.data.iter().copied(),
            format!("{node}: {role} ({})", t.name),
        )
    }

    fn alloc(&mut self, value: &str, width: usize) -> Buf {
        let stride = round_up(width);
        // A free slot already big enough (the smallest such), else the biggest free one, else a new one.
        let free: Vec<usize> = (0..self.slots.len())
            .filter(|&s| self.free.get(s) == Some(&true))
            .collect();
        let size = |s: &usize| self.slots.get(*s).copied().unwrap_or(0);
        let pick = free
            .iter()
            .filter(|s| size(s) >= stride)
            .min_by_key(|s| (size(s), **s))
            .or_else(|| free.iter().max_by_key(|s| (size(s), usize::MAX - **s)));
        let slot = match pick {
            Some(&s) => s,
            None => {
                self.slots.push(0);
                self.free.push(false);
                self.slots.len() - 1
            }
        };
        if let Some(sz) = self.slots.get_mut(slot) {
            *sz = (*sz).max(stride);
        }
        if let Some(f) = self.free.get_mut(slot) {
            *f = false;
        }
        let buf = Buf { slot, stride };
        self.bufs.insert(value.to_owned(), buf);
        buf
    }

    fn buf(&self, value: &str) -> Buf {
        self.bufs.get(value).copied().unwrap_or(Buf {
            slot: 0,
            stride: PANEL,
        })
    }

    fn release(&mut self, buf: Buf) {
        if !self.bufs.values().any(|b| b.slot == buf.slot) {
            if let Some(f) = self.free.get_mut(buf.slot) {
                *f = true;
            }
        }
    }
}

/// Plans `model` (validated, normally optimised).
pub fn plan(model: &ValidModel) -> Program {
    let m = model.model();
    let mut p = Planner {
        blob: Vec::new(),
        arrays: Vec::new(),
        slots: Vec::new(),
        free: Vec::new(),
        bufs: BTreeMap::new(),
        steps: Vec::new(),
    };
    // Last node index reading each value; model outputs live to the end.
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in m.nodes.iter().enumerate() {
        for v in n.op.inputs() {
            last.insert(v, i);
        }
    }
    for o in &m.outputs {
        last.insert(&o.value, usize::MAX);
    }
    let mut col0 = 0;
    for inp in &m.inputs {
        let width = inp.columns.len();
        if last.contains_key(inp.name.as_str()) {
            let dst = p.alloc(&inp.name, width);
            p.steps.push(Step::LoadInput { col0, width, dst });
        }
        col0 += width;
    }
    if let Some(nz) = &m.noise {
        if last.contains_key(nz.name.as_str()) {
            let dst = p.alloc(&nz.name, nz.dim);
            p.steps.push(Step::LoadNoise { width: nz.dim, dst });
        }
    }
    for (i, node) in m.nodes.iter().enumerate() {
        let name = node.name.as_str();
        let width = model.width(name);
        let dies = |v: &str| last.get(v).copied() == Some(i);
        let cols_of = |c: &Option<Vec<usize>>, w: usize| -> Vec<u32> {
            match c {
                Some(c) => c.iter().map(|&x| x as u32).collect(),
                None => (0..w as u32).collect(),
            }
        };
        // In-place ops: the output takes the input's slot if the input dies here, else a copy.
        let in_place = |p: &mut Planner, input: &str| -> Buf {
            let src = p.buf(input);
            if dies(input) {
                p.bufs.remove(input);
                p.bufs.insert(name.to_owned(), src);
                src
            } else {
                let dst = p.alloc(name, width);
                p.steps.push(Step::Copy {
                    src,
                    src_col0: 0,
                    width,
                    dst,
                    dst_col0: 0,
                });
                dst
            }
        };
        let node_s = name.to_owned();
        match &node.op {
            Op::Dense {
                input,
                kernel,
                bias,
                activation,
                residual,
            } => {
                let n_in = kernel.shape.first().copied().unwrap_or(0);
                let n_out = kernel.shape.get(1).copied().unwrap_or(0);
                let n_panels = n_out.div_ceil(PANEL);
                let packed = (0..n_panels).flat_map(|pn| {
                    (0..n_in).flat_map(move |k| {
                        (0..PANEL).map(move |j| {
                            let c = pn * PANEL + j;
                            if c < n_out {
                                kernel.data.get(k * n_out + c).copied().unwrap_or(0.0)
                            } else {
                                0.0
                            }
                        })
                    })
                });
                let kernel_i = p.array(
                    packed.collect::<Vec<f32>>(),
                    format!(
                        "{name}: kernel ({}), packed in panels of {PANEL}",
                        kernel.name
                    ),
                );
                let bias_data = (0..n_panels * PANEL).map(|c| {
                    bias.as_ref()
                        .and_then(|b| b.data.get(c))
                        .copied()
                        .unwrap_or(0.0)
                });
                let bias_what = match bias {
                    Some(b) => format!("{name}: bias ({}), padded", b.name),
                    None => format!("{name}: zero bias"),
                };
                let bias_i = p.array(bias_data.collect::<Vec<f32>>(), bias_what);
                let x = p.buf(input);
                let residual = residual.as_ref().map(|r| (p.buf(&r.value), r.before_act));
                let y = p.alloc(name, width);
                p.steps.push(Step::Dense {
                    node: node_s,
                    x,
                    y,
                    n_in,
                    n_out,
                    kernel: kernel_i,
                    bias: bias_i,
                    act: *activation,
                    residual,
                });
            }
            Op::Activation { input, activation } => {
                let data = in_place(&mut p, input);
                p.steps.push(Step::Act {
                    node: node_s,
                    data,
                    width,
                    act: *activation,
                });
            }
            Op::Add { a, b } => {
                let (a, b) = (p.buf(a), p.buf(b));
                let y = p.alloc(name, width);
                p.steps.push(Step::Add {
                    node: node_s,
                    a,
                    b,
                    y,
                    width,
                });
            }
            Op::Mul { a, b } => {
                let (a, b) = (p.buf(a), p.buf(b));
                let y = p.alloc(name, width);
                p.steps.push(Step::Mul {
                    node: node_s,
                    a,
                    b,
                    y,
                    width,
                });
            }
            Op::Concat { inputs } => {
                let y = p.alloc(name, width);
                let mut c0 = 0;
                for v in inputs {
                    let w = model.width(v);
                    let src = p.buf(v);
                    p.steps.push(Step::Copy {
                        src,
                        src_col0: 0,
                        width: w,
                        dst: y,
                        dst_col0: c0,
                    });
                    c0 += w;
                }
            }
            Op::BatchNorm { input, .. } => {
                let (mul, add) = super::fold::affine_of(&node.op, width).unwrap_or_default();
                let mul = p.array(
                    mul.iter().map(|&x| x as f32),
                    format!("{name}: gamma / sqrt(var + eps)"),
                );
                let add = p.array(
                    add.iter().map(|&x| x as f32),
                    format!("{name}: beta - mean * gamma / sqrt(var + eps)"),
                );
                let data = in_place(&mut p, input);
                p.steps.push(Step::ScaleShift {
                    node: node_s,
                    data,
                    width,
                    mul,
                    add,
                });
            }
            Op::StandardScaler { input, columns, .. } | Op::MinMax { input, columns, .. } => {
                let cols = cols_of(columns, width);
                let (mul, add) = super::fold::affine_of(&node.op, width).unwrap_or_default();
                let pick = |v: &[f64]| {
                    cols.iter()
                        .map(|&c| v.get(c as usize).copied().unwrap_or(0.0) as f32)
                        .collect::<Vec<f32>>()
                };
                let (mul_v, add_v) = (pick(&mul), pick(&add));
                let mul = p.array(mul_v, format!("{name}: multiplier per column"));
                let add = p.array(add_v, format!("{name}: offset per column"));
                let data = in_place(&mut p, input);
                p.steps.push(Step::Affine {
                    node: node_s,
                    data,
                    cols,
                    mul,
                    add,
                });
            }
            Op::Quantile {
                input,
                direction,
                columns,
                quantiles,
                references,
                normal,
                bounds_threshold,
            } => {
                let cols = cols_of(columns, width);
                let nq = references.data.len();
                let nc = cols.len();
                let col_major = (0..nc).flat_map(|c| {
                    (0..nq).map(move |q| quantiles.data.get(q * nc + c).copied().unwrap_or(0.0))
                });
                let qi = p.array(
                    col_major.collect::<Vec<f32>>(),
                    format!("{name}: quantiles ({}), column-major", quantiles.name),
                );
                let ri = p.tensor(references, name, "references");
                let data = in_place(&mut p, input);
                p.steps.push(Step::Quantile {
                    node: node_s,
                    data,
                    cols,
                    n_quantiles: nq,
                    quantiles: qi,
                    references: ri,
                    normal: *normal,
                    bounds_threshold: *bounds_threshold,
                    inverse: *direction == Direction::Inverse,
                });
            }
            Op::Logit {
                input,
                direction,
                columns,
                scale,
            } => {
                let cols = cols_of(columns, width);
                let data = in_place(&mut p, input);
                p.steps.push(Step::Logit {
                    node: node_s,
                    data,
                    cols,
                    scale: *scale as f32,
                    inverse: *direction == Direction::Inverse,
                });
            }
            Op::LayerNorm {
                input,
                gamma,
                beta,
                eps,
            } => {
                let gamma = gamma.as_ref().map(|t| p.tensor(t, name, "gamma"));
                let beta = beta.as_ref().map(|t| p.tensor(t, name, "beta"));
                let data = in_place(&mut p, input);
                p.steps.push(Step::LayerNorm {
                    node: node_s,
                    data,
                    width,
                    gamma,
                    beta,
                    eps: *eps as f32,
                });
            }
            Op::Decorrelate {
                input,
                direction,
                columns,
                matrix,
                mean,
            } => {
                let n = width;
                // A column subset is embedded into a full-width matrix (identity elsewhere).
                let (m64, mean64) = crate::ir::decorrelate_full_width(n, columns, matrix, mean);
                let (mat, sub): (Vec<f64>, Option<Vec<f64>>) = match direction {
                    Direction::Forward => (m64, mean64),
                    Direction::Inverse => {
                        // x = y·M⁻¹ + mean = (y − (−mean·M))·M⁻¹
                        let inv =
                            crate::linalg::invert(&m64, n).unwrap_or_else(|| vec![0.0; n * n]);
                        let sub = mean64.as_ref().map(|t| {
                            (0..n)
                                .map(|j| {
                                    -(0..n)
                                        .map(|k| t[k] * m64.get(k * n + j).copied().unwrap_or(0.0))
                                        .sum::<f64>()
                                })
                                .collect()
                        });
                        (inv, sub)
                    }
                };
                let what = if *direction == Direction::Forward {
                    "matrix"
                } else {
                    "matrix inverse"
                };
                let mi = p.array(
                    mat.iter().map(|&x| x as f32),
                    format!("{name}: {what} ({})", matrix.name),
                );
                let si = sub.map(|s| {
                    p.array(
                        s.iter().map(|&x| x as f32),
                        format!("{name}: subtracted row"),
                    )
                });
                let x = p.buf(input);
                let y = p.alloc(name, width);
                p.steps.push(Step::MatMul {
                    node: node_s,
                    x,
                    y,
                    n,
                    m: mi,
                    sub: si,
                });
            }
            Op::Flow(fl) => {
                let d = model.width(&fl.input);
                let c = fl.context.as_deref().map_or(0, |v| model.width(v));
                flow::plan(&mut p, name, fl, d, c);
            }
        }
        // Free the inputs that die here.
        let inputs: Vec<&str> = node.op.inputs();
        for v in inputs {
            if dies(v) {
                if let Some(b) = p.bufs.remove(v) {
                    p.release(b);
                }
            }
        }
    }
    let mut col0 = 0;
    for o in &m.outputs {
        let width = o.columns.len();
        let src = p.buf(&o.value);
        p.steps.push(Step::Store { src, width, col0 });
        col0 += width;
    }
    let max_stride = p.slots.iter().copied().max().unwrap_or(PANEL);
    let tile = (MAX_BUFFER_FLOATS / max_stride).clamp(1, MAX_TILE);
    Program {
        name: m.name.clone(),
        source: m.source.clone(),
        description: m.description.clone(),
        input_columns: m
            .inputs
            .iter()
            .flat_map(|i| i.columns.iter().cloned())
            .collect(),
        output_columns: m
            .outputs
            .iter()
            .flat_map(|o| o.columns.iter().cloned())
            .collect(),
        n_noise: m.noise.as_ref().map_or(0, |n| n.dim),
        noise: m.noise.as_ref().map(|n| n.distribution),
        tile,
        macs_per_row: p
            .steps
            .iter()
            .map(|s| match s {
                Step::Dense { n_in, n_out, .. } => (n_in * n_out) as u64,
                Step::Flow { step: FlowStep::Maf { made, .. }, .. } => made.macs as u64,
                Step::Flow { step: FlowStep::Coupling { net, .. }, .. } => net.macs as u64,
                _ => 0,
            })
            .sum(),
        flow_scratch: p
            .steps
            .iter()
            .map(|s| match s {
                Step::Flow { step: FlowStep::Maf { made, .. }, .. } => made.per_row,
                Step::Flow { step: FlowStep::Coupling { net, .. }, .. } => net.per_row,
                _ => 0,
            })
            .max()
            .unwrap_or(0),
        slots: p.slots,
        blob: p.blob,
        arrays: p.arrays,
        steps: p.steps,
        ode: m.ode.as_ref().and_then(|o| {
            crate::ir::ode::columns(m, o).map(|columns| Ode {
                method: o.method,
                columns,
            })
        }),
    }
}

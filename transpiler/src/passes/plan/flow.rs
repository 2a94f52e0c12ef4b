//! Planning a `flow` node: its transforms in execution order (inverted and reversed for
//! sampling), ping-ponging between two row buffers, and each MADE lowered to the runtime's
//! degree-sliced program (`runtime::flow`): hidden units sorted by degree (units of degree ≥ D,
//! which no output reads, dropped), masked weights packed per degree group over the source
//! prefix only, batch norms as per-unit `(mul, add)`.

use super::{Buf, Planner, Step};
use crate::ir::flow::{
    AffineScale, AffineShift, CouplingElementwise, Flow, FlowMode, FlowTransform, Linear, Made,
    MadeBlock, MadeKind, MaskedLinear, Norm, ResidualNet, Spline, SplineStyle,
};
use crate::ir::{Activation, Tensor};

/// Group widths are padded to a multiple of this in packed weights (`runtime::flow::PAD`).
pub const PAD: usize = 8;
/// Extra floats at the end of every packed array (`runtime::flow::SLACK`).
pub const SLACK: usize = 16;

fn padded(n: usize) -> usize {
    n.div_ceil(PAD) * PAD
}

/// One kernel call of a flow.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowStep {
    /// `dst[j] = src[idx[j]]`.
    Gather { src: Buf, dst: Buf, idx: Vec<u32> },
    /// Column 0 of `data` = `value`.
    Fill { data: Buf, value: f32 },
    /// Column 0 of `data` += `value`.
    AddConst { data: Buf, value: f32 },
    /// `x = x·mul + add` on `width` columns, in place (a flow batch norm, either direction).
    ScaleShift {
        data: Buf,
        width: usize,
        mul: usize,
        add: usize,
    },
    /// A masked affine autoregressive transform.
    Maf {
        x: Buf,
        ctx: Option<Buf>,
        y: Buf,
        logdet: Option<Buf>,
        inverse: bool,
        made: Box<MadePlan>,
        elementwise: ElementwisePlan,
    },
    /// A coupling transform (`runtime::flow::coupling`).
    Coupling {
        x: Buf,
        ctx: Option<Buf>,
        y: Buf,
        logdet: Option<Buf>,
        inverse: bool,
        net: Box<NetPlan>,
        elementwise: ElementwisePlan,
    },
    /// nflows' `LULinear` (`runtime::flow::lu_linear`): `lower`, `upper` `[D][D]`, `bias` `[D]`
    /// blob arrays; the log-det is a separate [`FlowStep::AddConst`].
    LuLinear {
        src: Buf,
        dst: Buf,
        width: usize,
        lower: usize,
        upper: usize,
        bias: usize,
        inverse: bool,
    },
    /// `y = −½·Σ z² − log_z + logdet`.
    NormalLogProb {
        z: Buf,
        width: usize,
        log_z: f32,
        logdet: Buf,
        y: Buf,
    },
}

/// The elementwise transform a MADE parametrises (`runtime::flow::Elementwise`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ElementwisePlan {
    Affine {
        scale: ScalePlan,
        scale_param: usize,
        /// `s = clamp(s, min, max)` (±∞ for an open end).
        clamp: Option<(f32, f32)>,
        shift: ShiftPlan,
    },
    Spline(SplinePlan),
}

/// A spline, in f32 (`runtime::flow::Spline`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplinePlan {
    pub bins: usize,
    pub bound: f32,
    pub divisor: f32,
    pub style: SplineStylePlan,
}

/// `runtime::flow::SplineStyle`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplineStylePlan {
    Nflows {
        min_width: f32,
        min_height: f32,
        min_derivative: f32,
        /// `ln(e^{1 − min_derivative} − 1)` in f64, rounded (as nflows fills its f32 tensor).
        end_logit: f32,
    },
    Zuko {
        ln_slope: f32,
    },
}

fn spline_plan(s: &Spline) -> SplinePlan {
    SplinePlan {
        bins: s.bins,
        bound: s.bound as f32,
        divisor: s.divisor as f32,
        style: match s.style {
            SplineStyle::Nflows {
                min_width,
                min_height,
                min_derivative,
            } => SplineStylePlan::Nflows {
                min_width: min_width as f32,
                min_height: min_height as f32,
                min_derivative: min_derivative as f32,
                end_logit: ((1.0 - min_derivative).exp() - 1.0).ln() as f32,
            },
            SplineStyle::Zuko { slope } => SplineStylePlan::Zuko {
                ln_slope: slope.ln() as f32,
            },
        },
    }
}

/// The scale of an affine transform, in f32 (`runtime::flow::Scale`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalePlan {
    Softplus { threshold: f32, eps: f32 },
    SoftClipExp { bound: f32 },
    Sigmoid { factor: f32, offset: f32, eps: f32 },
    Atan { factor: f32 },
}

/// `runtime::flow::Shift`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftPlan {
    pub offset: f32,
    pub clamp: Option<(f32, f32)>,
    pub clamp_inverse: bool,
}

impl ShiftPlan {
    fn of(s: &AffineShift) -> ShiftPlan {
        ShiftPlan {
            offset: s.offset as f32,
            clamp: s.clamp.map(|c| (c.min as f32, c.max as f32)),
            clamp_inverse: s.clamp.is_some_and(|c| c.inverse),
        }
    }
}

/// A MADE as the runtime's program (`runtime::flow::Made`); arrays are blob indices.
#[derive(Debug, Clone, PartialEq)]
pub struct MadePlan {
    pub features: usize,
    pub context: usize,
    pub order: Option<Vec<u32>>,
    /// `bounds` of each hidden value.
    pub values: Vec<Vec<u32>>,
    pub context_layers: Vec<ContextPlan>,
    pub ops: Vec<MadeOpPlan>,
    /// `(src value, params, weight, bias)`.
    pub output: (usize, usize, usize, usize),
    /// Scratch floats per row the kernel needs.
    pub per_row: usize,
    /// Multiply-adds per row of the one-sweep evaluation.
    pub macs: usize,
}

/// A coupling layer's conditioner (`runtime::flow::Coupling`); `(weight, bias)` are blob
/// indices of a dense layer packed `[n_in][padded(n_out)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetPlan {
    pub features: usize,
    pub context: usize,
    pub identity: Vec<u32>,
    pub transform: Vec<u32>,
    pub hidden: usize,
    pub activation: Activation,
    pub initial: (usize, usize),
    pub blocks: Vec<NetBlockPlan>,
    /// Per transformed feature, `[H][padded(params)]` blocks; the bias feature-major.
    pub final_layer: (usize, usize),
    pub params: usize,
    /// Scratch floats per row the kernel needs.
    pub per_row: usize,
    /// Multiply-adds per row.
    pub macs: usize,
}

/// `runtime::flow::NetBlock`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetBlockPlan {
    /// `(mul, add)` of each batch norm.
    pub norms: Option<[(usize, usize); 2]>,
    pub linear: [(usize, usize); 2],
    pub context: Option<(usize, usize)>,
}

/// A dense layer packed `[n_in][padded(n_out)]` (+ slack), its bias (zeros when absent).
fn dense_arrays(p: &mut Planner, node: &str, at: &str, l: &Linear) -> (usize, usize) {
    let (n_out, n_in) = (l.weight.shape[0], l.weight.shape[1]);
    let gp = padded(n_out);
    let mut packed = vec![0.0f32; n_in * gp + SLACK];
    for o in 0..n_out {
        for v in 0..n_in {
            packed[v * gp + o] = l.weight.data[o * n_in + v];
        }
    }
    let w = p.array(
        packed,
        format!(
            "{node}: {at} weight ({}), packed [n_in][n_out]",
            l.weight.name
        ),
    );
    let bias: Vec<f32> = match &l.bias {
        Some(b) => b.data.clone(),
        None => vec![0.0; n_out],
    };
    let b = p.array(
        bias.into_iter().chain([0.0; SLACK]).collect::<Vec<f32>>(),
        format!("{node}: {at} bias"),
    );
    (w, b)
}

/// Lowers a (validated) coupling layer's net; `rows(j, q)` is the net output row of parameter
/// `q` of transformed feature `j`.
#[allow(clippy::too_many_arguments)]
fn lower_net(
    p: &mut Planner,
    node: &str,
    at: &str,
    net: &ResidualNet,
    identity: &[u32],
    transform: &[u32],
    d: usize,
    c: usize,
    m: usize,
    row: impl Fn(usize, usize) -> usize,
) -> NetPlan {
    let h = net.initial.weight.shape[0];
    let initial = dense_arrays(p, node, &format!("{at}.net.initial"), &net.initial);
    let mut blocks = Vec::new();
    for (i, b) in net.blocks.iter().enumerate() {
        let bp = format!("{at}.net.blocks[{i}]");
        let norms = b.norms.as_ref().map(|n| {
            let mut f = |q: usize| {
                let (mul, add) = n[q].affine();
                let mul = p.array(
                    mul.iter()
                        .map(|&v| v as f32)
                        .chain([0.0; SLACK])
                        .collect::<Vec<f32>>(),
                    format!("{node}: {bp}.batchnorm[{q}] gamma / sqrt(var + eps)"),
                );
                let add = p.array(
                    add.iter()
                        .map(|&v| v as f32)
                        .chain([0.0; SLACK])
                        .collect::<Vec<f32>>(),
                    format!("{node}: {bp}.batchnorm[{q}] beta - mean * gamma / sqrt(var + eps)"),
                );
                (mul, add)
            };
            [f(0), f(1)]
        });
        let linear = [
            dense_arrays(p, node, &format!("{bp}.linear[0]"), &b.linear[0]),
            dense_arrays(p, node, &format!("{bp}.linear[1]"), &b.linear[1]),
        ];
        let context = b
            .context
            .as_ref()
            .map(|l| dense_arrays(p, node, &format!("{bp}.context"), l));
        blocks.push(NetBlockPlan {
            norms,
            linear,
            context,
        });
    }
    let fl = &net.final_layer;
    let gp = padded(m);
    let mut packed = Vec::new();
    let mut bias = Vec::new();
    for j in 0..transform.len() {
        for v in 0..h {
            for q in 0..gp {
                packed.push(if q < m {
                    fl.weight.data[row(j, q) * h + v]
                } else {
                    0.0
                });
            }
        }
        for q in 0..m {
            bias.push(fl.bias.as_ref().map_or(0.0, |b| b.data[row(j, q)]));
        }
    }
    packed.extend([0.0; SLACK]);
    bias.extend([0.0; SLACK]);
    let fw = p.array(
        packed,
        format!(
            "{node}: {at}.net.final weight ({}), packed per transformed feature",
            fl.weight.name
        ),
    );
    let fb = p.array(
        bias,
        format!("{node}: {at}.net.final bias, per transformed feature"),
    );
    NetPlan {
        features: d,
        context: c,
        identity: identity.to_vec(),
        transform: transform.to_vec(),
        hidden: h,
        activation: net.activation,
        initial,
        blocks,
        final_layer: (fw, fb),
        params: m,
        per_row: 2 * d + identity.len() + c + 4 * h + m + 1,
        macs: net.macs(),
    }
}

/// `runtime::flow::ContextLayer`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPlan {
    pub dst: usize,
    pub weight: usize,
    pub bias: usize,
    pub act: Activation,
}

/// `runtime::flow::MadeOp`.
#[derive(Debug, Clone, PartialEq)]
pub enum MadeOpPlan {
    Masked {
        src: Option<usize>,
        dst: usize,
        weight: usize,
        bias: usize,
        add: Option<usize>,
    },
    Map {
        src: usize,
        dst: usize,
        affine: Option<(usize, usize)>,
        act: Activation,
    },
}

/// A hidden value while lowering: degrees of the retained units, their original indices.
#[derive(Clone)]
struct Hidden {
    id: usize,
    /// Original unit index of each sorted unit.
    perm: Vec<usize>,
    bounds: Vec<u32>,
}

/// A source while lowering: its units' original indices and prefix bounds.
struct Source {
    value: Option<usize>,
    perm: Vec<usize>,
    bounds: Vec<u32>,
}

struct Lower<'p, 'a> {
    p: &'p mut Planner,
    node: &'a str,
    at: String,
    d: usize,
    values: Vec<Vec<u32>>,
    ops: Vec<MadeOpPlan>,
    context_layers: Vec<ContextPlan>,
    macs: usize,
}

impl Lower<'_, '_> {
    fn hidden(&mut self, degrees: &[usize]) -> Hidden {
        let mut perm: Vec<usize> = (0..degrees.len())
            .filter(|&u| degrees[u] < self.d)
            .collect();
        perm.sort_by_key(|&u| degrees[u]);
        let bounds = (0..self.d)
            .map(|k| perm.iter().filter(|&&u| degrees[u] <= k).count() as u32)
            .collect();
        self.values.push(bounds);
        Hidden {
            id: self.values.len() - 1,
            perm,
            bounds: self.values[self.values.len() - 1].clone(),
        }
    }

    /// A value with the same units and degrees as `h`.
    fn like(&mut self, h: &Hidden) -> Hidden {
        self.values.push(h.bounds.clone());
        Hidden {
            id: self.values.len() - 1,
            ..h.clone()
        }
    }

    fn source(h: &Hidden) -> Source {
        Source {
            value: Some(h.id),
            perm: h.perm.clone(),
            bounds: h.bounds.clone(),
        }
    }

    fn vector(&mut self, v: impl IntoIterator<Item = f32>, what: String) -> usize {
        let data: Vec<f32> = v.into_iter().chain([0.0; SLACK]).collect();
        self.p.array(data, format!("{}: {what}", self.node))
    }

    fn sorted(&mut self, t: &Tensor, perm: &[usize], what: &str) -> usize {
        let v: Vec<f32> = perm
            .iter()
            .map(|&u| t.data.get(u).copied().unwrap_or(0.0))
            .collect();
        self.vector(
            v,
            format!("{} {what} ({}), sorted by degree", self.at, t.name),
        )
    }

    fn masked(&mut self, l: &MaskedLinear, src: &Source, dst: &Hidden, add: Option<usize>) {
        let n_in = l.weight.shape.get(1).copied().unwrap_or(0);
        let mut packed = Vec::new();
        for k in 0..self.d {
            let g0 = if k == 0 {
                0
            } else {
                dst.bounds[k - 1] as usize
            };
            let g1 = dst.bounds[k] as usize;
            let gp = padded(g1 - g0);
            for &v in &src.perm[..src.bounds[k] as usize] {
                for j in 0..gp {
                    packed.push(if g0 + j < g1 {
                        l.weight
                            .data
                            .get(dst.perm[g0 + j] * n_in + v)
                            .copied()
                            .unwrap_or(0.0)
                    } else {
                        0.0
                    });
                }
            }
            self.macs += src.bounds[k] as usize * (g1 - g0);
        }
        packed.extend([0.0; SLACK]);
        let weight = self.p.array(
            packed,
            format!(
                "{}: {} weight ({}), packed per degree group",
                self.node, self.at, l.weight.name
            ),
        );
        let bias = self.sorted(&l.bias, &dst.perm, "bias");
        self.ops.push(MadeOpPlan::Masked {
            src: src.value,
            dst: dst.id,
            weight,
            bias,
            add,
        });
    }

    fn context(&mut self, l: &Linear, dst: &Hidden, act: Activation, c: usize) -> usize {
        let v = self.like(dst);
        let w = dst.perm.len();
        let gp = padded(w);
        let mut packed = vec![0.0f32; c * gp + SLACK];
        for (u, &o) in dst.perm.iter().enumerate() {
            for q in 0..c {
                packed[q * gp + u] = l.weight.data.get(o * c + q).copied().unwrap_or(0.0);
            }
        }
        self.macs += c * w;
        let weight = self.p.array(
            packed,
            format!(
                "{}: {} weight ({}), packed",
                self.node, self.at, l.weight.name
            ),
        );
        let bias = match &l.bias {
            Some(b) => self.sorted(b, &dst.perm, "bias"),
            None => self.vector(vec![0.0; w], format!("{} zero bias", self.at)),
        };
        self.context_layers.push(ContextPlan {
            dst: v.id,
            weight,
            bias,
            act,
        });
        v.id
    }

    fn map(&mut self, src: &Hidden, dst: &Hidden, norm: Option<&Norm>, act: Activation) {
        let affine = norm.map(|n| {
            let (mul, add) = n.affine();
            let m = self.vector(
                src.perm
                    .iter()
                    .map(|&u| mul.get(u).copied().unwrap_or(0.0) as f32),
                format!("{} gamma / sqrt(var + eps), sorted", self.at),
            );
            let a = self.vector(
                src.perm
                    .iter()
                    .map(|&u| add.get(u).copied().unwrap_or(0.0) as f32),
                format!("{} beta - mean * gamma / sqrt(var + eps), sorted", self.at),
            );
            (m, a)
        });
        self.ops.push(MadeOpPlan::Map {
            src: src.id,
            dst: dst.id,
            affine,
            act,
        });
    }
}

fn degrees(l: &MaskedLinear) -> Vec<usize> {
    l.degrees
        .as_ref()
        .map(|t| t.data.iter().map(|&x| x as usize).collect())
        .unwrap_or_default()
}

/// Lowers a (validated) MADE with `m` parameters per feature.
fn lower_made(
    p: &mut Planner,
    node: &str,
    at: &str,
    made: &Made,
    d: usize,
    c: usize,
    m: usize,
) -> MadePlan {
    let din = made.input_degrees(d);
    // order[k]: the column of the feature of degree k + 1.
    let mut order = vec![0u32; d];
    for (col, &g) in din.iter().enumerate() {
        if let Some(slot) = order.get_mut(g.saturating_sub(1)) {
            *slot = col as u32;
        }
    }
    let identity = order.iter().enumerate().all(|(k, &c)| k == c as usize);
    let mut lw = Lower {
        p,
        node,
        at: String::new(),
        d,
        values: Vec::new(),
        ops: Vec::new(),
        context_layers: Vec::new(),
        macs: 0,
    };
    let input = Source {
        value: None,
        perm: order.iter().map(|&c| c as usize).collect(),
        bounds: (0..d as u32).collect(),
    };
    lw.at = format!("{at}.initial");
    let mut h = lw.hidden(&degrees(&made.initial));
    let c0 = made.context.as_ref().map(|(l, act)| {
        lw.at = format!("{at}.context");
        lw.context(l, &h, *act, c)
    });
    lw.at = format!("{at}.initial");
    lw.masked(&made.initial, &input, &h, c0);
    if made.kind == MadeKind::Feedforward {
        lw.map(&h.clone(), &h.clone(), None, made.activation);
    }
    for (i, b) in made.blocks.iter().enumerate() {
        let bp = format!("{at}.blocks[{i}]");
        match b {
            MadeBlock::Residual {
                norms,
                linear,
                context,
            } => {
                let a = lw.like(&h);
                lw.at = format!("{bp}.batchnorm[0]");
                lw.map(&h, &a, norms.as_ref().map(|n| &n[0]), made.activation);
                let t = lw.hidden(&degrees(&linear[0]));
                let cb = context.as_ref().map(|l| {
                    lw.at = format!("{bp}.context");
                    lw.context(l, &t, Activation::Linear, c)
                });
                lw.at = format!("{bp}.linear[0]");
                lw.masked(&linear[0], &Lower::source(&a), &t, cb);
                lw.at = format!("{bp}.batchnorm[1]");
                lw.map(&t, &t, norms.as_ref().map(|n| &n[1]), made.activation);
                lw.at = format!("{bp}.linear[1]");
                lw.masked(&linear[1], &Lower::source(&t), &h, Some(h.id));
            }
            MadeBlock::Feedforward { norm, linear } => {
                let src = match norm {
                    Some(n) => {
                        let a = lw.like(&h);
                        lw.at = format!("{bp}.batchnorm");
                        lw.map(&h, &a, Some(n), Activation::Linear);
                        a
                    }
                    None => h.clone(),
                };
                let t = lw.hidden(&degrees(linear));
                lw.at = format!("{bp}.linear");
                lw.masked(linear, &Lower::source(&src), &t, None);
                lw.map(&t, &t, None, made.activation);
                h = t;
            }
        }
    }
    // The output layer, per feature in degree order.
    let fl = &made.final_layer;
    let n_in = fl.weight.shape.get(1).copied().unwrap_or(0);
    let gp = padded(m);
    let mut packed = Vec::new();
    let mut bias = Vec::new();
    for (k, &col) in order.iter().enumerate() {
        let col = col as usize;
        for &v in &h.perm[..h.bounds[k] as usize] {
            for j in 0..gp {
                packed.push(if j < m {
                    fl.weight
                        .data
                        .get((col * m + j) * n_in + v)
                        .copied()
                        .unwrap_or(0.0)
                } else {
                    0.0
                });
            }
        }
        lw.macs += h.bounds[k] as usize * m;
        bias.extend((0..m).map(|j| fl.bias.data.get(col * m + j).copied().unwrap_or(0.0)));
    }
    packed.extend([0.0; SLACK]);
    let w = lw.p.array(
        packed,
        format!(
            "{node}: {at}.final weight ({}), packed per feature",
            fl.weight.name
        ),
    );
    lw.at = format!("{at}.final");
    let b = lw.vector(
        bias,
        format!(
            "{at}.final bias ({}), per feature in degree order",
            fl.bias.name
        ),
    );
    let widths: usize = lw
        .values
        .iter()
        .map(|b| b.last().copied().unwrap_or(0) as usize)
        .sum();
    MadePlan {
        features: d,
        context: c,
        order: (!identity).then_some(order),
        per_row: 2 * d + c + widths + m + 1,
        values: lw.values,
        context_layers: lw.context_layers,
        ops: lw.ops,
        output: (h.id, m, w, b),
        macs: lw.macs,
    }
}

/// The runtime's scale function and the clamp applied after it.
fn scale_plan(s: &AffineScale) -> (ScalePlan, Option<(f32, f32)>) {
    let clamp = |min: Option<f64>, max: Option<f64>| {
        Some((
            min.map_or(f32::NEG_INFINITY, |m| m as f32),
            max.map_or(f32::INFINITY, |m| m as f32),
        ))
    };
    match *s {
        AffineScale::Softplus { threshold, eps } => (
            ScalePlan::Softplus {
                threshold: threshold as f32,
                eps: eps as f32,
            },
            None,
        ),
        AffineScale::SoftClipExp { bound } => (
            ScalePlan::SoftClipExp {
                bound: bound as f32,
            },
            None,
        ),
        AffineScale::SoftplusClamped {
            threshold,
            eps,
            min,
            max,
        } => (
            ScalePlan::Softplus {
                threshold: threshold as f32,
                eps: eps as f32,
            },
            clamp(min, max),
        ),
        AffineScale::Sigmoid {
            factor,
            offset,
            eps,
        } => (
            ScalePlan::Sigmoid {
                factor: factor as f32,
                offset: offset as f32,
                eps: eps as f32,
            },
            None,
        ),
        AffineScale::Atan { factor, min, max } => (
            ScalePlan::Atan {
                factor: factor as f32,
            },
            clamp(Some(min), max),
        ),
    }
}

/// The blob arrays of an LU-linear transform's `L` and `U` (`[D][D]` row-major, as validated)
/// and its log-det `Σ ln U_ii` in f64.
fn lu_arrays(
    p: &mut Planner,
    name: &str,
    at: &str,
    lower: &Tensor,
    upper: &Tensor,
    d: usize,
) -> (usize, usize, f64) {
    let ld = (0..d)
        .map(|i| f64::from(upper.data.get(i * d + i).copied().unwrap_or(1.0)).ln())
        .sum();
    let l = p.array(
        lower.data.clone(),
        format!("{name}: {at} LU-linear L ({}), [D][D]", lower.name),
    );
    let u = p.array(
        upper.data.clone(),
        format!("{name}: {at} LU-linear U ({}), [D][D]", upper.name),
    );
    (l, u, ld)
}

/// Plans flow node `name` (output width `width`); the caller frees its inputs afterwards.
pub(super) fn plan(p: &mut Planner, name: &str, fl: &Flow, d: usize, c: usize) {
    let input = p.buf(&fl.input);
    let ctx = fl.context.as_ref().map(|v| p.buf(v));
    let sample = fl.mode == FlowMode::Sample;
    // Ping-pong buffers: the output (sample) or a temporary, and one more temporary.
    let tmp = |i: usize| format!("{name}/flow{i}");
    let (b0, out, logdet) = if sample {
        (p.alloc(name, d), None, None)
    } else {
        let out = p.alloc(name, 1);
        let ld = p.alloc(&tmp(2), 1);
        (p.alloc(&tmp(0), d), Some(out), Some(ld))
    };
    let b1 = p.alloc(&tmp(1), d);
    let mut steps = Vec::new();
    if let Some(ld) = logdet {
        steps.push(FlowStep::Fill {
            data: ld,
            value: 0.0,
        });
    }
    let mut cur = input;
    let other = |cur: Buf| if cur.slot == b0.slot { b1 } else { b0 };
    let order: Vec<(usize, &FlowTransform)> = if sample {
        fl.transforms.iter().enumerate().rev().collect()
    } else {
        fl.transforms.iter().enumerate().collect()
    };
    for (i, t) in order {
        let at = format!("transforms[{i}]");
        match t {
            FlowTransform::Permutation { permutation } => {
                let perm: Vec<u32> = permutation.data.iter().map(|&x| x as u32).collect();
                let idx = if sample {
                    // x[perm[j]] = y[j]  ⇔  x = y[argsort(perm)]
                    let mut inv = vec![0u32; perm.len()];
                    for (j, &q) in perm.iter().enumerate() {
                        if let Some(s) = inv.get_mut(q as usize) {
                            *s = j as u32;
                        }
                    }
                    inv
                } else {
                    perm
                };
                let dst = other(cur);
                steps.push(FlowStep::Gather { src: cur, dst, idx });
                cur = dst;
            }
            FlowTransform::BatchNorm {
                weight,
                bias,
                mean,
                var,
                eps,
            } => {
                // forward y = x·(w/sd) + (b − mean·w/sd); inverse x = y·(sd/w) + (mean − b·sd/w), in f64.
                let (mut mul, mut add, mut ld) = (Vec::new(), Vec::new(), 0.0f64);
                for j in 0..d {
                    let g = |t: &Tensor| f64::from(t.data.get(j).copied().unwrap_or(1.0));
                    let sd = (g(var) + eps).sqrt();
                    let k = g(weight) / sd;
                    ld += g(weight).ln() - sd.ln();
                    if sample {
                        mul.push((1.0 / k) as f32);
                        add.push((g(mean) - g(bias) / k) as f32);
                    } else {
                        mul.push(k as f32);
                        add.push((g(bias) - g(mean) * k) as f32);
                    }
                }
                let mul = p.array(mul, format!("{name}: {at} batch norm multiplier"));
                let add = p.array(add, format!("{name}: {at} batch norm offset"));
                if cur.slot == input.slot {
                    let dst = other(cur);
                    steps.push(FlowStep::Gather {
                        src: cur,
                        dst,
                        idx: (0..d as u32).collect(),
                    });
                    cur = dst;
                }
                steps.push(FlowStep::ScaleShift {
                    data: cur,
                    width: d,
                    mul,
                    add,
                });
                if let Some(l) = logdet {
                    steps.push(FlowStep::AddConst {
                        data: l,
                        value: ld as f32,
                    });
                }
            }
            FlowTransform::LuLinear { lower, upper, bias } => {
                let (lower, upper, ld) = lu_arrays(p, name, &at, lower, upper, d);
                let bias = p.array(
                    bias.data.clone(),
                    format!("{name}: {at} LU-linear bias ({})", bias.name),
                );
                let dst = other(cur);
                steps.push(FlowStep::LuLinear {
                    src: cur,
                    dst,
                    width: d,
                    lower,
                    upper,
                    bias,
                    inverse: sample,
                });
                cur = dst;
                if let Some(l) = logdet {
                    steps.push(FlowStep::AddConst {
                        data: l,
                        value: ld as f32,
                    });
                }
            }
            FlowTransform::AffineAutoregressive {
                made,
                scale,
                scale_param,
                shift,
            } => {
                let plan = lower_made(p, name, &at, made, d, c, 2);
                let (scale, clamp) = scale_plan(scale);
                let dst = other(cur);
                steps.push(FlowStep::Maf {
                    x: cur,
                    ctx,
                    y: dst,
                    logdet,
                    inverse: sample,
                    made: Box::new(plan),
                    elementwise: ElementwisePlan::Affine {
                        scale,
                        scale_param: *scale_param,
                        clamp,
                        shift: ShiftPlan::of(shift),
                    },
                });
                cur = dst;
            }
            FlowTransform::Coupling {
                identity,
                transform,
                net,
                elementwise,
            } => {
                let cols = |t: &Tensor| t.data.iter().map(|&v| v as u32).collect::<Vec<u32>>();
                let (id, tr) = (cols(identity), cols(transform));
                let n = tr.len();
                let (plan, ew) = match elementwise {
                    // nflows: outputs [shift (n) | unconstrained scale (n)]; per feature here
                    // (shift, scale).
                    CouplingElementwise::Affine { scale } => {
                        let (scale, clamp) = scale_plan(scale);
                        (
                            lower_net(p, name, &at, net, &id, &tr, d, c, 2, |j, q| q * n + j),
                            ElementwisePlan::Affine {
                                scale,
                                scale_param: 1,
                                clamp,
                                shift: ShiftPlan::of(&AffineShift::default()),
                            },
                        )
                    }
                    CouplingElementwise::Spline(sp) => {
                        let m = sp.params();
                        (
                            lower_net(p, name, &at, net, &id, &tr, d, c, m, |j, q| j * m + q),
                            ElementwisePlan::Spline(spline_plan(sp)),
                        )
                    }
                };
                let dst = other(cur);
                steps.push(FlowStep::Coupling {
                    x: cur,
                    ctx,
                    y: dst,
                    logdet,
                    inverse: sample,
                    net: Box::new(plan),
                    elementwise: ew,
                });
                cur = dst;
            }
            FlowTransform::SplineAutoregressive { made, spline } => {
                let plan = lower_made(p, name, &at, made, d, c, spline.params());
                let dst = other(cur);
                steps.push(FlowStep::Maf {
                    x: cur,
                    ctx,
                    y: dst,
                    logdet,
                    inverse: sample,
                    made: Box::new(plan),
                    elementwise: ElementwisePlan::Spline(spline_plan(spline)),
                });
                cur = dst;
            }
        }
    }
    match out {
        None => {
            if cur.slot != b0.slot {
                steps.push(FlowStep::Gather {
                    src: cur,
                    dst: b0,
                    idx: (0..d as u32).collect(),
                });
            }
        }
        Some(y) => {
            let log_z = (0.5 * d as f64 * std::f64::consts::TAU.ln()) as f32;
            steps.push(FlowStep::NormalLogProb {
                z: cur,
                width: d,
                log_z,
                logdet: logdet.unwrap_or(y),
                y,
            });
        }
    }
    for s in steps {
        p.steps.push(Step::Flow {
            node: name.to_owned(),
            step: s,
        });
    }
    for i in 0..3 {
        if let Some(b) = p.bufs.remove(&tmp(i)) {
            p.release(b);
        }
    }
}

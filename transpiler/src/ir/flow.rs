//! Normalizing flows in the IR: one [`Op::Flow`](super::Op::Flow) node holds a whole flow (its
//! transforms in the data → noise order of nflows' `CompositeTransform`, and the base
//! distribution), evaluated either in the sampling direction (noise → data, every transform
//! inverted, last to first) or as a log density. `docs/flows.md` gives the maths.
//!
//! Weight matrices of flows are in PyTorch layout, `[n_out, n_in]` (the masks and degrees of a
//! MADE are defined on that layout); masked layers hold the *masked* weights.

use super::{Activation, Tensor};

/// What a flow node computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowMode {
    /// `x = T⁻¹(z; context)`: the input is the base noise `z`, the output the sample (width `D`).
    Sample,
    /// `log p(x | context) = log N(T(x); 0, I) + log|det ∂T/∂x|`: the input is `x`, the output one
    /// column.
    LogProb,
}

impl FlowMode {
    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            FlowMode::Sample => "sample",
            FlowMode::LogProb => "log_prob",
        }
    }
}

/// One transform of a flow (forward = data → noise).
// A flow holds a few dozen of these, built once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FlowTransform {
    /// `y = x[:, perm]` (nflows `Permutation`: `RandomPermutation`, `ReversePermutation`).
    Permutation {
        /// Integer tensor `[D]`, a permutation of `0..D`.
        permutation: Tensor,
    },
    /// nflows' `BatchNorm` transform in inference mode:
    /// `y = weight·(x − mean)/sqrt(var + eps) + bias`, `weight > 0`.
    BatchNorm {
        weight: Tensor,
        bias: Tensor,
        mean: Tensor,
        var: Tensor,
        eps: f64,
    },
    /// A masked affine autoregressive transform: `y_i = s_i·x_i + shift_i`, `(u_i, shift_i) =
    /// MADE(x_<i; context)`, `s_i = scale(u_i)`.
    AffineAutoregressive {
        made: Box<Made>,
        scale: AffineScale,
        /// Position of the unconstrained scale among a feature's two parameters (nflows 0,
        /// zuko 1); the shift is the other one.
        scale_param: usize,
        /// What is done to the shift parameter (FlashSim: an offset and a clamp).
        shift: AffineShift,
    },
    /// nflows' `LULinear`: `y = L·U·x + bias`, `log|det| = Σ ln U_ii`; inverted by two triangular
    /// solves, `x = U⁻¹·L⁻¹·(y − bias)`.
    LuLinear {
        /// `[D, D]`: unit lower-triangular (ones on the diagonal, zeros above).
        lower: Tensor,
        /// `[D, D]`: upper-triangular (zeros below the diagonal) with a positive diagonal.
        upper: Tensor,
        /// `[D]`.
        bias: Tensor,
    },
    /// A masked rational-quadratic spline autoregressive transform (nflows
    /// `MaskedPiecewiseRationalQuadraticAutoregressiveTransform`, zuko `NSF`): feature `i` goes
    /// through the spline whose `3K − 1` parameters are `MADE(x_<i; context)`.
    SplineAutoregressive { made: Box<Made>, spline: Spline },
    /// A coupling transform (nflows `AffineCouplingTransform`,
    /// `PiecewiseRationalQuadraticCouplingTransform`): the `identity` features pass unchanged,
    /// and `net(x[identity], context)` gives the parameters of the elementwise transform of the
    /// `transform` features.
    Coupling {
        /// Integer tensor `[n_identity]`: the columns passed unchanged (the net's inputs, in
        /// this order).
        identity: Tensor,
        /// Integer tensor `[n_transform]`: the columns transformed.
        transform: Tensor,
        net: Box<ResidualNet>,
        elementwise: CouplingElementwise,
    },
}

/// The elementwise transform of a coupling layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CouplingElementwise {
    /// `y = s·x + shift`: the net's outputs are `[shift (n), unconstrained scale (n)]` (nflows
    /// `AffineCouplingTransform`, scale `σ(u + 2) + 1e-3`).
    Affine { scale: AffineScale },
    /// A spline per transformed feature: output `j·(3K − 1) + p` is parameter `p` of feature `j`.
    Spline(Spline),
}

impl CouplingElementwise {
    /// Parameters per transformed feature.
    pub fn params(&self) -> usize {
        match self {
            CouplingElementwise::Affine { .. } => 2,
            CouplingElementwise::Spline(s) => s.params(),
        }
    }
}

/// nflows' `ResidualNet` (the conditioner of a coupling layer): `h = W₀·[x; c] + b₀`, then per
/// block `t = L₂·act(bn₁(L₁·act(bn₀(h))))`, `t = t·σ(W_c·c + b_c)` (with context), `h = h + t`;
/// out `= W_f·h + b_f`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualNet {
    pub activation: Activation,
    /// `[H, n_in + C]`: the identity features, then the context.
    pub initial: Linear,
    pub blocks: Vec<ResidualNetBlock>,
    /// `[n_out, H]`.
    pub final_layer: Linear,
}

/// A block of a [`ResidualNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualNetBlock {
    /// `[bn0, bn1]`, or none.
    pub norms: Option<Box<[Norm; 2]>>,
    /// `[H, H]` each.
    pub linear: Box<[Linear; 2]>,
    /// `[H, C]`: the gate `σ(W_c·c + b_c)` of the block's output.
    pub context: Option<Linear>,
}

impl ResidualNet {
    /// Every tensor.
    pub fn tensors(&self) -> Vec<&Tensor> {
        fn lin(l: &Linear) -> Vec<&Tensor> {
            let mut v = vec![&l.weight];
            v.extend(l.bias.as_ref());
            v
        }
        let mut v = lin(&self.initial);
        for b in &self.blocks {
            if let Some(n) = &b.norms {
                v.extend(n[0].tensors());
                v.extend(n[1].tensors());
            }
            v.extend(lin(&b.linear[0]));
            v.extend(lin(&b.linear[1]));
            if let Some(c) = &b.context {
                v.extend(lin(c));
            }
        }
        v.extend(lin(&self.final_layer));
        v
    }

    /// Multiply-adds per row.
    pub fn macs(&self) -> usize {
        self.tensors()
            .iter()
            .filter(|t| t.shape.len() == 2)
            .map(|t| t.data.len())
            .sum()
    }
}

impl FlowTransform {
    /// The spec's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            FlowTransform::Permutation { .. } => "permutation",
            FlowTransform::BatchNorm { .. } => "batchnorm",
            FlowTransform::AffineAutoregressive { .. } => "affine_autoregressive",
            FlowTransform::SplineAutoregressive { .. } => "rqs_autoregressive",
            FlowTransform::LuLinear { .. } => "lu_linear",
            FlowTransform::Coupling {
                elementwise: CouplingElementwise::Affine { .. },
                ..
            } => "affine_coupling",
            FlowTransform::Coupling {
                elementwise: CouplingElementwise::Spline(_),
                ..
            } => "rqs_coupling",
        }
    }

    /// Every `kind` the spec accepts.
    pub const KINDS: &'static [&'static str] = &[
        "permutation",
        "batchnorm",
        "affine_autoregressive",
        "rqs_autoregressive",
        "lu_linear",
        "affine_coupling",
        "rqs_coupling",
    ];

    /// Every tensor the transform holds.
    pub fn tensors(&self) -> Vec<&Tensor> {
        match self {
            FlowTransform::Permutation { permutation } => vec![permutation],
            FlowTransform::BatchNorm {
                weight,
                bias,
                mean,
                var,
                ..
            } => vec![weight, bias, mean, var],
            FlowTransform::AffineAutoregressive { made, .. }
            | FlowTransform::SplineAutoregressive { made, .. } => made.tensors(),
            FlowTransform::LuLinear { lower, upper, bias } => vec![lower, upper, bias],
            FlowTransform::Coupling {
                identity,
                transform,
                net,
                ..
            } => {
                let mut v = vec![identity, transform];
                v.extend(net.tensors());
                v
            }
        }
    }
}

/// How an affine transform's scale is made from its unconstrained parameter `u`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AffineScale {
    /// `s = softplus(u) + eps`, `softplus(u) = u > threshold ? u : log(1 + eᵘ)` (nflows:
    /// threshold 20, eps 1e-3).
    Softplus { threshold: f64, eps: f64 },
    /// `s = exp(u / (1 + |u| / bound))` (zuko: bound = −ln(slope) = −ln 1e-3).
    SoftClipExp { bound: f64 },
    /// `s = clamp(softplus(u) + eps, min, max)` (FlashSim's `softplus` affine type; either bound
    /// may be absent).
    SoftplusClamped {
        threshold: f64,
        eps: f64,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// `s = factor·σ(u + offset) + eps` (FlashSim's `sigmoid` affine type: 1000·σ(u + 1) + 0.05).
    Sigmoid { factor: f64, offset: f64, eps: f64 },
    /// `s = clamp(factor·atan(u / factor), min, max)` (FlashSim's `atan` affine type: factor
    /// 1000, clamp [0.001, 50]); `max` may be absent.
    Atan {
        factor: f64,
        min: f64,
        max: Option<f64>,
    },
}

/// What an affine transform does to its shift parameter `t`: `shift = t + offset`, then, when
/// `clamp` is given, `shift = clamp(shift, min, max)` in the forward direction and, if
/// `clamp.inverse`, also when inverting (FlashSim's `nbd` clamps in the forward direction only,
/// FlowSim in both).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AffineShift {
    pub offset: f64,
    pub clamp: Option<ShiftClamp>,
}

/// The clamp of an affine shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftClamp {
    pub min: f64,
    pub max: f64,
    /// Whether the clamp also applies when inverting (sampling).
    pub inverse: bool,
}

/// A monotonic rational-quadratic spline on `[−bound, bound]` with `bins` bins; its `3·bins − 1`
/// parameters per feature are the width logits, the height logits and the inner derivative
/// logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spline {
    pub bins: usize,
    pub bound: f64,
    /// Width and height logits are divided by this (nflows coupling: `√hidden`; else 1).
    pub divisor: f64,
    pub style: SplineStyle,
}

impl Spline {
    /// Parameters per feature.
    pub fn params(&self) -> usize {
        3 * self.bins - 1
    }
}

/// How a spline's knots come from its parameters (`docs/flows.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplineStyle {
    /// nflows with linear tails: minimum bin width, height and derivative; end slopes 1.
    Nflows {
        min_width: f64,
        min_height: f64,
        min_derivative: f64,
    },
    /// zuko: soft-clipped logits (`slope`: the minimum slope, 1e-3), no minimum bin size.
    Zuko { slope: f64 },
}

/// A masked linear layer: `y = W·x + b` with `W` already masked.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedLinear {
    /// `[n_out, n_in]`.
    pub weight: Tensor,
    /// `[n_out]`.
    pub bias: Tensor,
    /// Integer tensor `[n_out]`: the output units' degrees (optional for the final layer, whose
    /// degrees follow from the features).
    pub degrees: Option<Tensor>,
}

/// A plain linear layer on the context: `y = W·c + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `[n_out, n_in]`.
    pub weight: Tensor,
    /// `[n_out]`; absent: zero.
    pub bias: Option<Tensor>,
}

/// Batch normalisation in inference mode: `(x − mean)/sqrt(var + eps)·gamma + beta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Norm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub mean: Tensor,
    pub var: Tensor,
    pub eps: f64,
}

impl Norm {
    /// Every tensor.
    pub fn tensors(&self) -> Vec<&Tensor> {
        vec![&self.gamma, &self.beta, &self.mean, &self.var]
    }

    /// Per-unit `(mul, add)` in f64: `y = x·mul + add`.
    pub fn affine(&self) -> (Vec<f64>, Vec<f64>) {
        let (mut mul, mut add) = (Vec::new(), Vec::new());
        for (((g, b), m), v) in self
            .gamma
            .data
            .iter()
            .zip(&self.beta.data)
            .zip(&self.mean.data)
            .zip(&self.var.data)
        {
            let k = f64::from(*g) / (f64::from(*v) + self.eps).sqrt();
            mul.push(k);
            add.push(f64::from(*b) - f64::from(*m) * k);
        }
        (mul, add)
    }
}

/// The blocks of a MADE.
#[derive(Debug, Clone, PartialEq)]
pub enum MadeBlock {
    /// nflows `MaskedResidualBlock`: `t = act(bn0(h)); t = L0·t + ctx(c); t = act(bn1(t));
    /// h = h + L1·t`.
    Residual {
        /// `[bn0, bn1]`, or none.
        norms: Option<Box<[Norm; 2]>>,
        linear: Box<[MaskedLinear; 2]>,
        context: Option<Linear>,
    },
    /// nflows `MaskedFeedforwardBlock` (and zuko's hidden layers): `h = act(L·bn(h))`.
    Feedforward {
        norm: Option<Box<Norm>>,
        linear: Box<MaskedLinear>,
    },
}

/// Whether a MADE's blocks are residual or feed-forward (nflows `use_residual_blocks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeKind {
    /// `h = L·x + act_c(ctx(c))`, then residual blocks.
    Residual,
    /// `h = act(L·x + act_c(ctx(c)))`, then feed-forward blocks.
    Feedforward,
}

/// A MADE (masked autoencoder for distribution estimation) with optional context, as nflows'
/// `MADE` and zuko's `MaskedMLP` build it.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    pub kind: MadeKind,
    /// The hidden activation.
    pub activation: Activation,
    /// Integer tensor `[D]`: the input features' degrees, a permutation of `1..=D`; absent:
    /// `1, 2, …, D`.
    pub input_degrees: Option<Tensor>,
    pub initial: MaskedLinear,
    /// The context layer of the initial layer and the activation applied to it (nflows: the
    /// hidden activation; zuko: linear).
    pub context: Option<(Linear, Activation)>,
    pub blocks: Vec<MadeBlock>,
    /// `[D·m, H]`: row `i·m + j` is parameter `j` of feature `i`.
    pub final_layer: MaskedLinear,
}

impl Made {
    /// Every tensor.
    pub fn tensors(&self) -> Vec<&Tensor> {
        fn ml(l: &MaskedLinear) -> Vec<&Tensor> {
            let mut v = vec![&l.weight, &l.bias];
            v.extend(l.degrees.as_ref());
            v
        }
        let mut v: Vec<&Tensor> = self.input_degrees.iter().collect();
        v.extend(ml(&self.initial));
        if let Some((c, _)) = &self.context {
            v.push(&c.weight);
            v.extend(c.bias.as_ref());
        }
        for b in &self.blocks {
            match b {
                MadeBlock::Residual {
                    norms,
                    linear,
                    context,
                } => {
                    if let Some(n) = norms {
                        v.extend(n[0].tensors());
                        v.extend(n[1].tensors());
                    }
                    v.extend(ml(&linear[0]));
                    v.extend(ml(&linear[1]));
                    if let Some(c) = context {
                        v.push(&c.weight);
                        v.extend(c.bias.as_ref());
                    }
                }
                MadeBlock::Feedforward { norm, linear } => {
                    if let Some(n) = norm {
                        v.extend(n.tensors());
                    }
                    v.extend(ml(linear));
                }
            }
        }
        v.extend(ml(&self.final_layer));
        v
    }

    /// Input degrees, `1..=D` by default.
    pub fn input_degrees(&self, d: usize) -> Vec<usize> {
        match &self.input_degrees {
            Some(t) => t.data.iter().map(|&x| x as usize).collect(),
            None => (1..=d).collect(),
        }
    }

    /// Multiply-adds per row of one full pass (masked zeros included).
    pub fn macs(&self) -> usize {
        self.tensors()
            .iter()
            .filter(|t| t.shape.len() == 2)
            .map(|t| t.data.len())
            .sum()
    }
}

/// A whole flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The value read: the base noise (`Sample`) or the data (`LogProb`).
    pub input: String,
    /// The context value, if the flow is conditional.
    pub context: Option<String>,
    pub mode: FlowMode,
    /// In the forward (data → noise) order.
    pub transforms: Vec<FlowTransform>,
}

impl Flow {
    /// Every tensor.
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.transforms
            .iter()
            .flat_map(FlowTransform::tensors)
            .collect()
    }
}

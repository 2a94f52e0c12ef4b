//! Lowering of the `flow` op: the nested objects of a flow node (transforms, MADE, layers), each
//! problem named by its path in the node (`transforms[2].made.blocks[0].linear[1]`).

use serde_json::{Map, Value};

use super::{quoted, Fields};
use crate::ir::flow::{
    AffineScale, AffineShift, CouplingElementwise, Flow, FlowMode, FlowTransform, Linear, Made,
    MadeBlock, MadeKind, MaskedLinear, Norm, ResidualNet, ResidualNetBlock, ShiftClamp, Spline,
    SplineStyle,
};
use crate::ir::{Activation, Op, Tensor};

/// A nested object and the keys read from it.
struct Obj<'v> {
    map: &'v Map<String, Value>,
    path: String,
    seen: Vec<&'static str>,
}

const DOC: &str = "see docs/flows.md";

impl Fields<'_> {
    pub(super) fn flow(&mut self) -> Option<Op> {
        let input = self.string(
            "input",
            "the value read: the base noise (mode sample) or the data (mode log_prob)",
        );
        let context = match self.get("context").cloned() {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            Some(other) => {
                self.problem(
                    format!("field \"context\" must be a value name, found {other}"),
                    "name the context value, or omit the field for an unconditional flow",
                );
                None
            }
        };
        let mode = match self.string("mode", "\"sample\" or \"log_prob\"").as_deref() {
            Some("sample") => Some(FlowMode::Sample),
            Some("log_prob") => Some(FlowMode::LogProb),
            Some(other) => {
                self.problem(
                    format!("field \"mode\" is \"{other}\""),
                    "use \"sample\" (noise → data, every transform inverted) or \"log_prob\" (the log density of the input)",
                );
                None
            }
            None => None,
        };
        let base = match self
            .string("base", "the base distribution, \"standard_normal\"")
            .as_deref()
        {
            Some("standard_normal") => Some(()),
            Some(other) => {
                self.problem(
                    format!("field \"base\" is \"{other}\""),
                    "the supported base distribution is \"standard_normal\" (N(0, I))",
                );
                None
            }
            None => None,
        };
        let transforms = match self.get("transforms").cloned() {
            Some(Value::Array(a)) if !a.is_empty() => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, t) in a.iter().enumerate() {
                    match self.transform(&format!("transforms[{i}]"), t) {
                        Some(t) => out.push(t),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            Some(other) => {
                self.problem(format!("field \"transforms\" must be a non-empty list of transform objects, found {other}"), DOC);
                None
            }
            None => {
                self.missing("transforms", "the flow's transforms, data → noise");
                None
            }
        };
        base?;
        Some(Op::Flow(Box::new(Flow {
            input: input?,
            context: context?,
            mode: mode?,
            transforms: transforms?,
        })))
    }

    fn obj<'v>(&mut self, path: &str, v: &'v Value) -> Option<Obj<'v>> {
        match v {
            Value::Object(map) => Some(Obj {
                map,
                path: path.to_owned(),
                seen: Vec::new(),
            }),
            other => {
                self.problem(format!("{path} must be an object, found {other}"), DOC);
                None
            }
        }
    }

    fn field<'v>(o: &mut Obj<'v>, key: &'static str) -> Option<&'v Value> {
        o.seen.push(key);
        o.map.get(key).filter(|v| !v.is_null())
    }

    fn req<'v>(&mut self, o: &mut Obj<'v>, key: &'static str, what: &str) -> Option<&'v Value> {
        let v = Self::field(o, key);
        if v.is_none() {
            self.problem(format!("{}: missing field \"{key}\" ({what})", o.path), DOC);
        }
        v
    }

    fn o_string(&mut self, o: &mut Obj, key: &'static str, what: &str) -> Option<String> {
        match self.req(o, key, what)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    format!(
                        "{}: field \"{key}\" must be a string ({what}), found {other}",
                        o.path
                    ),
                    DOC,
                );
                None
            }
        }
    }

    /// An optional number: `Some(None)` when absent.
    fn o_opt_number(&mut self, o: &mut Obj, key: &'static str, what: &str) -> Option<Option<f64>> {
        match Self::field(o, key) {
            None => Some(None),
            Some(_) => self.o_number(o, key, what).map(Some),
        }
    }

    fn o_number(&mut self, o: &mut Obj, key: &'static str, what: &str) -> Option<f64> {
        match self.req(o, key, what)? {
            Value::Number(n) => n.as_f64(),
            other => {
                self.problem(
                    format!(
                        "{}: field \"{key}\" must be a number ({what}), found {other}",
                        o.path
                    ),
                    DOC,
                );
                None
            }
        }
    }

    fn o_tensor_value(
        &mut self,
        path: &str,
        key: &str,
        v: &Value,
        what: &str,
        integer: bool,
    ) -> Option<Tensor> {
        match v {
            Value::String(name) => self.tensor_of(&format!("{path}.{key}"), name, integer),
            other => {
                self.problem(
                    format!("{path}: field \"{key}\" must name a tensor ({what}), found {other}"),
                    DOC,
                );
                None
            }
        }
    }

    fn o_tensor(
        &mut self,
        o: &mut Obj,
        key: &'static str,
        what: &str,
        integer: bool,
    ) -> Option<Tensor> {
        let v = self.req(o, key, what)?;
        let path = o.path.clone();
        self.o_tensor_value(&path, key, v, what, integer)
    }

    fn o_opt_tensor(
        &mut self,
        o: &mut Obj,
        key: &'static str,
        what: &str,
        integer: bool,
    ) -> Option<Option<Tensor>> {
        match Self::field(o, key) {
            None => Some(None),
            Some(v) => {
                let path = o.path.clone();
                self.o_tensor_value(&path, key, v, what, integer).map(Some)
            }
        }
    }

    /// A list field: each element through `item` (with its path `key[i]`); every element is
    /// checked, so all problems are reported.
    fn o_list<T>(
        &mut self,
        o: &mut Obj,
        key: &'static str,
        what: &str,
        mut item: impl FnMut(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<Vec<T>> {
        let path = o.path.clone();
        match self.req(o, key, what)? {
            Value::Array(a) => {
                let items: Vec<Option<T>> = a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| item(self, &format!("{path}.{key}[{i}]"), v))
                    .collect();
                items.into_iter().collect()
            }
            other => {
                self.problem(
                    format!("{path}: field \"{key}\" must be a list, found {other}"),
                    DOC,
                );
                None
            }
        }
    }

    fn o_activation(&mut self, o: &mut Obj, key: &'static str) -> Option<Activation> {
        let v = self.req(o, key, "an activation object such as {\"kind\": \"relu\"}")?;
        self.activation_value(v.clone())
    }

    /// Reports keys of `o` that were not read.
    fn o_finish(&mut self, o: &Obj) {
        let unknown: Vec<&str> = o
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !o.seen.contains(k))
            .collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = o.seen.clone();
            self.problem(
                format!("{}: unknown field(s) {}", o.path, quoted(&unknown)),
                format!("this object takes {}; {DOC}", quoted(&known)),
            );
        }
    }

    fn transform(&mut self, path: &str, v: &Value) -> Option<FlowTransform> {
        let mut o = self.obj(path, v)?;
        let kind = self.o_string(&mut o, "kind", "the transform kind")?;
        let t = match kind.as_str() {
            "permutation" => {
                let p = self.o_tensor(
                    &mut o,
                    "permutation",
                    "integer tensor [D], a permutation of 0..D",
                    true,
                );
                p.map(|permutation| FlowTransform::Permutation { permutation })
            }
            "batchnorm" => {
                let weight = self.o_tensor(
                    &mut o,
                    "weight",
                    "tensor [D], the positive scale softplus(unconstrained_weight) + eps",
                    false,
                );
                let bias = self.o_tensor(&mut o, "bias", "tensor [D]", false);
                let mean = self.o_tensor(&mut o, "mean", "tensor [D], running_mean", false);
                let var = self.o_tensor(&mut o, "var", "tensor [D], running_var", false);
                let eps = self.o_number(
                    &mut o,
                    "eps",
                    "the epsilon added to the variance (nflows 1e-5)",
                );
                Some(FlowTransform::BatchNorm {
                    weight: weight?,
                    bias: bias?,
                    mean: mean?,
                    var: var?,
                    eps: eps?,
                })
            }
            "affine_autoregressive" => {
                let made = self
                    .req(&mut o, "made", "the MADE giving each feature's parameters")
                    .and_then(|m| self.made(&format!("{path}.made"), m));
                let scale = self
                    .req(&mut o, "scale", "how the scale is made from its parameter")
                    .and_then(|s| self.scale(&format!("{path}.scale"), s));
                let params = self.req(&mut o, "params", "the order of a feature's parameters, e.g. [\"scale\", \"shift\"]").and_then(|p| {
                    match p.as_array().map(|a| a.iter().map(|v| v.as_str()).collect::<Vec<_>>()).as_deref() {
                        Some([Some("scale"), Some("shift")]) => Some(0),
                        Some([Some("shift"), Some("scale")]) => Some(1),
                        _ => {
                            self.problem(
                                format!("{path}: field \"params\" must be [\"scale\", \"shift\"] or [\"shift\", \"scale\"], found {p}"),
                                "nflows orders a feature's parameters (unconstrained scale, shift), zuko (shift, scale)",
                            );
                            None
                        }
                    }
                });
                let shift = self.shift(&mut o, path);
                Some(FlowTransform::AffineAutoregressive {
                    made: Box::new(made?),
                    scale: scale?,
                    scale_param: params?,
                    shift: shift?,
                })
            }
            "lu_linear" => {
                let lower = self.o_tensor(
                    &mut o,
                    "lower",
                    "tensor [D, D], the unit lower-triangular L (ones on the diagonal)",
                    false,
                );
                let upper = self.o_tensor(
                    &mut o,
                    "upper",
                    "tensor [D, D], the upper-triangular U with its positive diagonal",
                    false,
                );
                let bias = self.o_tensor(&mut o, "bias", "tensor [D]", false);
                Some(FlowTransform::LuLinear {
                    lower: lower?,
                    upper: upper?,
                    bias: bias?,
                })
            }
            "rqs_autoregressive" => {
                let made = self
                    .req(&mut o, "made", "the MADE giving each feature's parameters")
                    .and_then(|m| self.made(&format!("{path}.made"), m));
                let spline = self
                    .req(&mut o, "spline", "the spline's bins, bound and style")
                    .and_then(|s| self.spline(&format!("{path}.spline"), s));
                Some(FlowTransform::SplineAutoregressive {
                    made: Box::new(made?),
                    spline: spline?,
                })
            }
            "affine_coupling" | "rqs_coupling" => {
                let identity = self.o_tensor(
                    &mut o,
                    "identity",
                    "integer tensor, the columns passed unchanged (nflows identity_features)",
                    true,
                );
                let transform = self.o_tensor(
                    &mut o,
                    "transform",
                    "integer tensor, the columns transformed (nflows transform_features)",
                    true,
                );
                let net = self
                    .req(&mut o, "net", "the conditioner (nflows ResidualNet)")
                    .and_then(|n| self.residual_net(&format!("{path}.net"), n));
                let elementwise = if kind == "affine_coupling" {
                    self.req(&mut o, "scale", "how the scale is made from its parameter")
                        .and_then(|s| self.scale(&format!("{path}.scale"), s))
                        .map(|scale| CouplingElementwise::Affine { scale })
                } else {
                    self.req(&mut o, "spline", "the spline's bins, bound and style")
                        .and_then(|s| self.spline(&format!("{path}.spline"), s))
                        .map(CouplingElementwise::Spline)
                };
                Some(FlowTransform::Coupling {
                    identity: identity?,
                    transform: transform?,
                    net: Box::new(net?),
                    elementwise: elementwise?,
                })
            }
            other => {
                self.problem(
                    format!("{path}: unknown transform kind \"{other}\""),
                    format!("supported kinds: {}", quoted(FlowTransform::KINDS)),
                );
                return None;
            }
        };
        self.o_finish(&o);
        t
    }

    fn spline(&mut self, path: &str, v: &Value) -> Option<Spline> {
        let mut o = self.obj(path, v)?;
        let style = self.o_string(&mut o, "style", "\"nflows\" or \"zuko\"")?;
        let bins = self.o_number(&mut o, "bins", "the number of bins K (an integer >= 1)");
        let bound = self.o_number(
            &mut o,
            "bound",
            "the spline's interval [-bound, bound] (nflows tail_bound, zuko bound 5)",
        );
        let divisor = if o.map.contains_key("divisor") {
            self.o_number(
                &mut o,
                "divisor",
                "width and height logits are divided by it (default 1)",
            )
        } else {
            Some(1.0)
        };
        let style = match style.as_str() {
            "nflows" => {
                let w = self.o_number(&mut o, "min_bin_width", "nflows min_bin_width (1e-3)");
                let h = self.o_number(&mut o, "min_bin_height", "nflows min_bin_height (1e-3)");
                let d = self.o_number(&mut o, "min_derivative", "nflows min_derivative (1e-3)");
                Some(SplineStyle::Nflows {
                    min_width: w?,
                    min_height: h?,
                    min_derivative: d?,
                })
            }
            "zuko" => {
                let slope = self.o_number(&mut o, "slope", "zuko's minimum slope (1e-3)");
                Some(SplineStyle::Zuko { slope: slope? })
            }
            other => {
                self.problem(
                    format!("{path}: unknown spline style \"{other}\""),
                    "use \"nflows\" (linear tails, minimum bin sizes) or \"zuko\" (soft-clipped logits)",
                );
                return None;
            }
        };
        let bins = bins?;
        if !(bins >= 1.0 && bins.fract() == 0.0 && bins <= 512.0) {
            self.problem(
                format!("{path}: bins = {bins} is not an integer from 1 to 512"),
                "give the number of bins K of the spline (nflows num_bins, zuko bins)",
            );
            return None;
        }
        self.o_finish(&o);
        Some(Spline {
            bins: bins as usize,
            bound: bound?,
            divisor: divisor?,
            style: style?,
        })
    }

    /// The optional `shift_offset` and `shift_clamp` fields of an affine transform.
    fn shift(&mut self, o: &mut Obj, path: &str) -> Option<AffineShift> {
        let offset = self.o_opt_number(o, "shift_offset", "added to the shift parameter");
        let clamp = match Self::field(o, "shift_clamp") {
            None => Some(None),
            Some(v) => {
                let cp = format!("{path}.shift_clamp");
                self.obj(&cp, v).and_then(|mut c| {
                    let min = self.o_number(&mut c, "min", "the lower bound of the shift");
                    let max = self.o_number(&mut c, "max", "the upper bound of the shift");
                    let inverse = match self.req(
                        &mut c,
                        "inverse",
                        "whether the clamp also applies when inverting (sampling)",
                    ) {
                        Some(Value::Bool(b)) => Some(*b),
                        Some(other) => {
                            self.problem(
                                format!("{cp}: field \"inverse\" must be true or false, found {other}"),
                                "true: the shift is clamped in both directions (FlowSim); false: in the forward (log-density) direction only (FlashSim nbd)",
                            );
                            None
                        }
                        None => None,
                    };
                    self.o_finish(&c);
                    Some(Some(ShiftClamp {
                        min: min?,
                        max: max?,
                        inverse: inverse?,
                    }))
                })
            }
        };
        Some(AffineShift {
            offset: offset?.unwrap_or(0.0),
            clamp: clamp?,
        })
    }

    fn scale(&mut self, path: &str, v: &Value) -> Option<AffineScale> {
        let mut o = self.obj(path, v)?;
        let kind = self.o_string(
            &mut o,
            "kind",
            "\"softplus\", \"soft_clip_exp\", \"sigmoid\" or \"atan\"",
        )?;
        let s = match kind.as_str() {
            "softplus" => {
                let threshold = self.o_number(
                    &mut o,
                    "threshold",
                    "u above it is taken as softplus(u) (PyTorch 20)",
                );
                let eps = self.o_number(&mut o, "eps", "added to the softplus (nflows 1e-3)");
                let min = self.o_opt_number(&mut o, "min", "the lower clamp of the scale");
                let max = self.o_opt_number(&mut o, "max", "the upper clamp of the scale");
                match (min?, max?) {
                    (None, None) => Some(AffineScale::Softplus {
                        threshold: threshold?,
                        eps: eps?,
                    }),
                    (min, max) => Some(AffineScale::SoftplusClamped {
                        threshold: threshold?,
                        eps: eps?,
                        min,
                        max,
                    }),
                }
            }
            "sigmoid" => {
                let factor = self.o_number(&mut o, "factor", "s = factor·σ(u + offset) + eps");
                let offset = self.o_number(&mut o, "offset", "added to u inside the sigmoid");
                let eps = self.o_number(&mut o, "eps", "added to the scaled sigmoid");
                Some(AffineScale::Sigmoid {
                    factor: factor?,
                    offset: offset?,
                    eps: eps?,
                })
            }
            "atan" => {
                let factor = self.o_number(
                    &mut o,
                    "factor",
                    "s = clamp(factor·atan(u/factor), min, max)",
                );
                let min = self.o_number(&mut o, "min", "the lower clamp of the scale, > 0");
                let max = self.o_opt_number(&mut o, "max", "the upper clamp of the scale");
                Some(AffineScale::Atan {
                    factor: factor?,
                    min: min?,
                    max: max?,
                })
            }
            "soft_clip_exp" => {
                let bound = self.o_number(
                    &mut o,
                    "bound",
                    "the log-scale bound, −ln(slope) (zuko: 6.907755278982137)",
                );
                Some(AffineScale::SoftClipExp { bound: bound? })
            }
            other => {
                self.problem(format!("{path}: unknown scale kind \"{other}\""), "use \"softplus\" (s = clamp(softplus(u) + eps, min, max)), \"soft_clip_exp\" (s = exp(u / (1 + |u|/bound))), \"sigmoid\" (s = factor·σ(u + offset) + eps) or \"atan\" (s = clamp(factor·atan(u/factor), min, max))");
                return None;
            }
        };
        self.o_finish(&o);
        s
    }

    fn masked_linear(
        &mut self,
        path: &str,
        v: &Value,
        degrees_required: bool,
    ) -> Option<MaskedLinear> {
        let mut o = self.obj(path, v)?;
        let weight = self.o_tensor(
            &mut o,
            "weight",
            "tensor [n_out, n_in], masked (weight · mask)",
            false,
        );
        let bias = self.o_tensor(&mut o, "bias", "tensor [n_out]", false);
        let degrees = if degrees_required {
            self.o_tensor(
                &mut o,
                "degrees",
                "integer tensor [n_out], the output units' degrees",
                true,
            )
            .map(Some)
        } else {
            self.o_opt_tensor(&mut o, "degrees", "integer tensor [n_out]", true)
        };
        self.o_finish(&o);
        Some(MaskedLinear {
            weight: weight?,
            bias: bias?,
            degrees: degrees?,
        })
    }

    fn linear(&mut self, path: &str, v: &Value) -> Option<Linear> {
        let mut o = self.obj(path, v)?;
        let weight = self.o_tensor(&mut o, "weight", "tensor [n_out, n_context]", false);
        let bias = self.o_opt_tensor(&mut o, "bias", "tensor [n_out]", false);
        self.o_finish(&o);
        Some(Linear {
            weight: weight?,
            bias: bias?,
        })
    }

    fn norm(&mut self, path: &str, v: &Value) -> Option<Norm> {
        let mut o = self.obj(path, v)?;
        let gamma = self.o_tensor(&mut o, "gamma", "tensor [n]", false);
        let beta = self.o_tensor(&mut o, "beta", "tensor [n]", false);
        let mean = self.o_tensor(&mut o, "mean", "tensor [n]", false);
        let var = self.o_tensor(&mut o, "var", "tensor [n]", false);
        let eps = self.o_number(
            &mut o,
            "eps",
            "the epsilon added to the variance (nflows MADE: 1e-3)",
        );
        self.o_finish(&o);
        Some(Norm {
            gamma: gamma?,
            beta: beta?,
            mean: mean?,
            var: var?,
            eps: eps?,
        })
    }

    /// A list of exactly `n` objects read by `f`.
    fn list<T>(
        &mut self,
        path: &str,
        v: &Value,
        n: usize,
        f: impl Fn(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<Vec<T>> {
        match v.as_array() {
            Some(a) if a.len() == n => {
                let items: Vec<Option<T>> = a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| f(self, &format!("{path}[{i}]"), x))
                    .collect();
                items.into_iter().collect()
            }
            _ => {
                self.problem(
                    format!("{path} must be a list of {n} objects, found {v}"),
                    DOC,
                );
                None
            }
        }
    }

    fn made(&mut self, path: &str, v: &Value) -> Option<Made> {
        let mut o = self.obj(path, v)?;
        let kind = match self
            .o_string(&mut o, "kind", "\"residual\" or \"feedforward\"")
            .as_deref()
        {
            Some("residual") => Some(MadeKind::Residual),
            Some("feedforward") => Some(MadeKind::Feedforward),
            Some(other) => {
                self.problem(
                    format!("{path}: field \"kind\" is \"{other}\""),
                    "use \"residual\" (nflows use_residual_blocks=True) or \"feedforward\"",
                );
                None
            }
            None => None,
        };
        let activation = self.o_activation(&mut o, "activation");
        let input_degrees = self.o_opt_tensor(
            &mut o,
            "input_degrees",
            "integer tensor [D], a permutation of 1..D",
            true,
        );
        let initial = self
            .req(&mut o, "initial", "the initial masked layer")
            .and_then(|v| self.masked_linear(&format!("{path}.initial"), v, true));
        let context = match Self::field(&mut o, "context") {
            None => Some(None),
            Some(cv) => {
                let cpath = format!("{path}.context");
                match self.obj(&cpath, cv) {
                    Some(mut co) => {
                        let weight = self.o_tensor(&mut co, "weight", "tensor [H, C]", false);
                        let bias = self.o_opt_tensor(&mut co, "bias", "tensor [H]", false);
                        let act = self.o_activation(&mut co, "activation");
                        self.o_finish(&co);
                        match (weight, bias, act) {
                            (Some(weight), Some(bias), Some(act)) => {
                                Some(Some((Linear { weight, bias }, act)))
                            }
                            _ => None,
                        }
                    }
                    None => None,
                }
            }
        };
        let blocks = self.o_list(
            &mut o,
            "blocks",
            "the hidden blocks (may be empty)",
            |s, p, b| s.block(p, b, kind),
        );
        let final_layer = self
            .req(&mut o, "final", "the output masked layer")
            .and_then(|v| self.masked_linear(&format!("{path}.final"), v, false));
        self.o_finish(&o);
        Some(Made {
            kind: kind?,
            activation: activation?,
            input_degrees: input_degrees?,
            initial: initial?,
            context: context?,
            blocks: blocks?,
            final_layer: final_layer?,
        })
    }

    /// nflows' `ResidualNet`: `activation`, `initial`, `blocks`, `final`.
    fn residual_net(&mut self, path: &str, v: &Value) -> Option<ResidualNet> {
        let mut o = self.obj(path, v)?;
        let activation = self.o_activation(&mut o, "activation");
        let initial = self
            .req(
                &mut o,
                "initial",
                "the initial layer on [identity features, context]",
            )
            .and_then(|v| self.linear(&format!("{path}.initial"), v));
        let blocks = self.o_list(
            &mut o,
            "blocks",
            "the residual blocks (may be empty)",
            |s, p, b| s.net_block(p, b),
        );
        let final_layer = self
            .req(&mut o, "final", "the output layer")
            .and_then(|v| self.linear(&format!("{path}.final"), v));
        self.o_finish(&o);
        Some(ResidualNet {
            activation: activation?,
            initial: initial?,
            blocks: blocks?,
            final_layer: final_layer?,
        })
    }

    fn net_block(&mut self, path: &str, v: &Value) -> Option<ResidualNetBlock> {
        let mut o = self.obj(path, v)?;
        let norms = match Self::field(&mut o, "batchnorm") {
            None => Some(None),
            Some(n) => self
                .list(&format!("{path}.batchnorm"), n, 2, |f, p, x| f.norm(p, x))
                .map(|v| <[Norm; 2]>::try_from(v).ok().map(Box::new)),
        };
        let linear = self
            .req(&mut o, "linear", "the block's two linear layers")
            .and_then(|l| self.list(&format!("{path}.linear"), l, 2, |f, p, x| f.linear(p, x)))
            .and_then(|v| <[Linear; 2]>::try_from(v).ok());
        let context = match Self::field(&mut o, "context") {
            None => Some(None),
            Some(c) => self.linear(&format!("{path}.context"), c).map(Some),
        };
        self.o_finish(&o);
        Some(ResidualNetBlock {
            norms: norms?,
            linear: Box::new(linear?),
            context: context?,
        })
    }

    fn block(&mut self, path: &str, v: &Value, kind: Option<MadeKind>) -> Option<MadeBlock> {
        let mut o = self.obj(path, v)?;
        let b = match kind? {
            MadeKind::Residual => {
                let norms = match Self::field(&mut o, "batchnorm") {
                    None => Some(None),
                    Some(n) => self
                        .list(&format!("{path}.batchnorm"), n, 2, |f, p, x| f.norm(p, x))
                        .map(|v| <[Norm; 2]>::try_from(v).ok().map(Box::new)),
                };
                let linear = self
                    .req(&mut o, "linear", "the block's two masked layers")
                    .and_then(|l| {
                        self.list(&format!("{path}.linear"), l, 2, |f, p, x| {
                            f.masked_linear(p, x, true)
                        })
                    })
                    .and_then(|v| <[MaskedLinear; 2]>::try_from(v).ok());
                let context = match Self::field(&mut o, "context") {
                    None => Some(None),
                    Some(c) => self.linear(&format!("{path}.context"), c).map(Some),
                };
                Some(MadeBlock::Residual {
                    norms: norms?,
                    linear: Box::new(linear?),
                    context: context?,
                })
            }
            MadeKind::Feedforward => {
                let norm = match Self::field(&mut o, "batchnorm") {
                    None => Some(None),
                    Some(n) => self.norm(&format!("{path}.batchnorm"), n).map(Some),
                };
                let linear = self
                    .req(&mut o, "linear", "the block's masked layer")
                    .and_then(|l| self.masked_linear(&format!("{path}.linear"), l, true));
                Some(MadeBlock::Feedforward {
                    norm: norm?.map(Box::new),
                    linear: Box::new(linear?),
                })
            }
        };
        self.o_finish(&o);
        b
    }
}

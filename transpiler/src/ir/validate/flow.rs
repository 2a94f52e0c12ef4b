//! Validation of the `flow` op: widths, shapes, permutations, positivity of scales, and the
//! autoregressive structure of every MADE (each masked weight against the degrees).

use super::NodeCheck;
use crate::ir::flow::{
    AffineScale, AffineShift, CouplingElementwise, Flow, FlowMode, FlowTransform, Linear, Made,
    MadeBlock, MadeKind, MaskedLinear, Norm, ResidualNet, Spline, SplineStyle,
};
use crate::ir::Tensor;

const MASK_HINT: &str = "export the masked weights (weight · mask) together with the degrees of the same layer; a MADE hidden unit reads only units of degree ≤ its own, an output of feature i only units of degree < i's";

impl NodeCheck<'_> {
    pub(super) fn flow(&mut self, f: &Flow) -> Option<usize> {
        let d = self.input(&f.input);
        let c = match &f.context {
            Some(v) => self.input(v).map(Some),
            None => Some(None),
        };
        let (d, c) = (d?, c?);
        let mut ok = true;
        for (i, t) in f.transforms.iter().enumerate() {
            ok &= self.transform(&format!("transforms[{i}]"), t, d, c);
        }
        ok.then_some(match f.mode {
            FlowMode::Sample => d,
            FlowMode::LogProb => 1,
        })
    }

    fn at(&mut self, path: &str, t: &Tensor, message: String, hint: &str) {
        self.report_t(t, format!("{path}: {message}"), hint);
    }

    fn shape_at(&mut self, path: &str, t: &Tensor, want: &[usize], why: &str) -> bool {
        if t.shape != want {
            self.at(
                path,
                t,
                format!("has shape {:?}, expected {want:?} ({why})", t.shape),
                "re-export the flow; see docs/flows.md",
            );
            return false;
        }
        true
    }

    fn transform(&mut self, path: &str, t: &FlowTransform, d: usize, c: Option<usize>) -> bool {
        match t {
            FlowTransform::Permutation { permutation } => {
                if !self.shape_at(path, permutation, &[d], "one entry per feature") {
                    return false;
                }
                let mut seen = vec![false; d];
                for (i, &p) in permutation.data.iter().enumerate() {
                    let p = p as usize;
                    if p >= d || seen[p] {
                        self.at(
                            path,
                            permutation,
                            format!("is not a permutation of 0..{d} (entry {i} is {p})"),
                            "save the transform's _permutation buffer as it is",
                        );
                        return false;
                    }
                    seen[p] = true;
                }
                true
            }
            FlowTransform::BatchNorm {
                weight,
                bias,
                mean,
                var,
                eps,
            } => {
                let mut ok = true;
                for x in [weight, bias, mean, var] {
                    ok &= self.shape_at(path, x, &[d], "one entry per feature");
                }
                if !eps.is_finite() || *eps < 0.0 {
                    self.report(
                        format!("{path}: eps = {eps} is invalid"),
                        "eps is a finite number >= 0 (nflows BatchNorm: 1e-5)",
                    );
                    return false;
                }
                if let Some(i) = weight.data.iter().position(|&w| !(w > 0.0)) {
                    ok = false;
                    self.at(path, weight, format!("is not positive at index {i}"), "the weight is nflows' softplus(unconstrained_weight) + eps, always > 0; export BatchNorm.weight");
                }
                if let Some(i) = var.data.iter().position(|&v| !(f64::from(v) + eps > 0.0)) {
                    ok = false;
                    self.at(
                        path,
                        var,
                        format!("var + eps is not positive at index {i}"),
                        "variances are >= 0; re-export the running variance",
                    );
                }
                ok
            }
            FlowTransform::LuLinear { lower, upper, bias } => {
                self.lu_linear(path, lower, upper, bias, d)
            }
            FlowTransform::AffineAutoregressive {
                made, scale, shift, ..
            } => {
                let mut ok = self.affine_shift(path, shift);
                ok &= self.scale_ok(path, scale);
                ok &= self.made(&format!("{path}.made"), made, d, c, 2);
                ok
            }
            FlowTransform::SplineAutoregressive { made, spline } => {
                let ok = self.spline(&format!("{path}.spline"), spline);
                // Without valid bins the parameter count is unknown.
                ok && self.made(&format!("{path}.made"), made, d, c, spline.params())
            }
            FlowTransform::Coupling {
                identity,
                transform,
                net,
                elementwise,
            } => {
                let mut ok = match elementwise {
                    CouplingElementwise::Affine { scale } => self.scale_ok(path, scale),
                    CouplingElementwise::Spline(s) => self.spline(&format!("{path}.spline"), s),
                };
                let n = self.coupling_split(path, identity, transform, d);
                ok &= n.is_some();
                if let (Some((ni, nt)), true) = (n, ok) {
                    ok &= self.residual_net(
                        &format!("{path}.net"),
                        net,
                        ni,
                        c,
                        nt * elementwise.params(),
                    );
                }
                ok
            }
        }
    }

    /// The scale of an affine transform.
    fn scale_ok(&mut self, path: &str, scale: &AffineScale) -> bool {
        match *scale {
            AffineScale::Softplus { threshold, eps } => {
                let good =
                    !threshold.is_nan() && eps.is_finite() && eps > 0.0 && (eps as f32) > 0.0;
                if !good {
                    self.report(format!("{path}.scale: threshold = {threshold}, eps = {eps} are invalid"), "eps must be > 0 so that the scale is positive (nflows: threshold 20, eps 1e-3)");
                }
                good
            }
            AffineScale::SoftClipExp { bound } => {
                let good = bound.is_finite() && bound > 0.0;
                if !good {
                    self.report(
                        format!("{path}.scale: bound = {bound} is invalid"),
                        "the bound is −ln(slope) > 0 (zuko: 6.907755278982137)",
                    );
                }
                good
            }
            _ => self.affine_scale(path, scale),
        }
    }

    /// The `identity` and `transform` columns of a coupling layer: a partition of `0..D` with
    /// at least one transformed column. Returns their counts.
    fn coupling_split(
        &mut self,
        path: &str,
        identity: &Tensor,
        transform: &Tensor,
        d: usize,
    ) -> Option<(usize, usize)> {
        const HINT: &str = "export the layer's identity_features and transform_features buffers: together each column 0..D once (nflows: mask <= 0 and mask > 0)";
        let mut ok = true;
        for (key, t) in [("identity", identity), ("transform", transform)] {
            if t.shape.len() != 1 {
                self.at(
                    &format!("{path}.{key}"),
                    t,
                    format!("has shape {:?}, expected a list of columns [n]", t.shape),
                    HINT,
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        if transform.data.is_empty() {
            self.at(
                &format!("{path}.transform"),
                transform,
                "is empty: a coupling layer transforms at least one column".into(),
                HINT,
            );
            return None;
        }
        let mut seen: Vec<Option<&str>> = vec![None; d];
        for (key, t) in [("identity", identity), ("transform", transform)] {
            for (i, &v) in t.data.iter().enumerate() {
                let col = v as usize;
                if v < 0.0 || col >= d {
                    self.at(
                        &format!("{path}.{key}"),
                        t,
                        format!("entry {i} is column {v}, outside 0..{d}"),
                        HINT,
                    );
                    return None;
                }
                if let Some(first) = seen[col] {
                    self.at(
                        &format!("{path}.{key}"),
                        t,
                        format!("entry {i} is column {col}, already listed in \"{first}\": identity and transform columns must be a partition of 0..{d}"),
                        HINT,
                    );
                    return None;
                }
                seen[col] = Some(key);
            }
        }
        if let Some(col) = seen.iter().position(Option::is_none) {
            let missing = seen.iter().filter(|s| s.is_none()).count();
            self.at(
                &format!("{path}.transform"),
                transform,
                format!("column {col} is neither an identity nor a transform column ({missing} missing): identity and transform columns must be a partition of 0..{d}"),
                HINT,
            );
            return None;
        }
        Some((identity.data.len(), transform.data.len()))
    }

    /// A linear layer `[n_out, n_in]` with an optional bias; `n_out` from its weight when `None`.
    fn dense_at(
        &mut self,
        path: &str,
        l: &Linear,
        n_out: Option<usize>,
        n_in: usize,
        why: &str,
    ) -> Option<usize> {
        let n = n_out
            .or_else(|| l.weight.shape.first().copied())
            .unwrap_or(0);
        let mut ok = self.shape_at(path, &l.weight, &[n, n_in], why);
        if ok && n == 0 {
            self.at(
                path,
                &l.weight,
                "has no output units".into(),
                "a layer needs at least one unit",
            );
            ok = false;
        }
        if let Some(b) = &l.bias {
            ok &= self.shape_at(path, b, &[n], "one entry per output unit");
        }
        ok.then_some(n)
    }

    /// nflows' `ResidualNet` on `n_in` identity features (and the context), `n_out` outputs.
    fn residual_net(
        &mut self,
        path: &str,
        net: &ResidualNet,
        n_in: usize,
        c: Option<usize>,
        n_out: usize,
    ) -> bool {
        self.activation(&net.activation);
        let cw = c.unwrap_or(0);
        let Some(h) = self.dense_at(
            &format!("{path}.initial"),
            &net.initial,
            None,
            n_in + cw,
            "[hidden, identity columns + context width]: nflows' initial layer reads cat(x[identity], context)",
        ) else {
            return false;
        };
        let mut ok = true;
        for (i, b) in net.blocks.iter().enumerate() {
            let bp = format!("{path}.blocks[{i}]");
            if let Some(n) = &b.norms {
                ok &= self.norm(&format!("{bp}.batchnorm[0]"), &n[0], h);
                ok &= self.norm(&format!("{bp}.batchnorm[1]"), &n[1], h);
            }
            for q in 0..2 {
                ok &= self
                    .dense_at(
                        &format!("{bp}.linear[{q}]"),
                        &b.linear[q],
                        Some(h),
                        h,
                        "[hidden, hidden]",
                    )
                    .is_some();
            }
            if let Some(cl) = &b.context {
                if c.is_none() {
                    self.at(
                        &format!("{bp}.context"),
                        &cl.weight,
                        "belongs to a conditional net, but the flow has no \"context\"".into(),
                        "give the flow node a \"context\" value",
                    );
                    ok = false;
                } else {
                    ok &= self
                        .dense_at(
                            &format!("{bp}.context"),
                            cl,
                            Some(h),
                            cw,
                            "[hidden, context width]",
                        )
                        .is_some();
                }
            }
        }
        let fl = &net.final_layer;
        if fl.weight.shape.first() != Some(&n_out) || fl.weight.shape.len() != 2 {
            self.at(
                &format!("{path}.final"),
                &fl.weight,
                format!(
                    "has shape {:?}, expected [{n_out}, {h}] (parameters per transformed column × transformed columns)",
                    fl.weight.shape
                ),
                "an affine coupling has 2 parameters per transformed column ([shift, scale] blocks), a spline with K bins 3K − 1 (K = \"bins\" of its \"spline\"); re-export the flow, see docs/flows.md",
            );
            return false;
        }
        ok &= self
            .dense_at(
                &format!("{path}.final"),
                fl,
                Some(n_out),
                h,
                "[outputs, hidden]",
            )
            .is_some();
        ok
    }

    fn spline(&mut self, path: &str, s: &Spline) -> bool {
        let k = s.bins as f64;
        let mut ok = true;
        if !(s.bound.is_finite() && s.bound > 0.0) {
            ok = false;
            self.report(
                format!("{path}: bound = {} is invalid", s.bound),
                "the spline acts on [-bound, bound], bound > 0 (nflows tail_bound, zuko 5)",
            );
        }
        if !(s.divisor.is_finite() && s.divisor > 0.0) {
            ok = false;
            self.report(
                format!("{path}: divisor = {} is invalid", s.divisor),
                "the logit divisor is > 0 (1, or sqrt(hidden features) for nflows coupling)",
            );
        }
        match s.style {
            SplineStyle::Nflows {
                min_width,
                min_height,
                min_derivative,
            } => {
                for (name, v) in [("min_bin_width", min_width), ("min_bin_height", min_height)] {
                    if !(v >= 0.0 && v * k < 1.0) {
                        ok = false;
                        self.report(
                            format!("{path}: {name} = {v} with {} bins is invalid", s.bins),
                            "the minimum bin size times the number of bins must be below 1 (nflows 1e-3)",
                        );
                    }
                }
                if !(min_derivative.is_finite() && (0.0..1.0).contains(&min_derivative)) {
                    ok = false;
                    self.report(
                        format!("{path}: min_derivative = {min_derivative} is invalid"),
                        "the minimum derivative is in [0, 1) (nflows 1e-3)",
                    );
                }
            }
            SplineStyle::Zuko { slope } => {
                if !(slope > 0.0 && slope < 1.0) {
                    ok = false;
                    self.report(
                        format!("{path}: slope = {slope} is invalid"),
                        "zuko's minimum slope is in (0, 1) (default 1e-3)",
                    );
                }
            }
        }
        ok
    }

    /// The FlashSim scale variants: constants that keep the scale finite and positive.
    fn affine_scale(&mut self, path: &str, scale: &AffineScale) -> bool {
        let pos = |x: f64| x.is_finite() && x > 0.0 && (x as f32) > 0.0;
        let num = |x: f64| x.is_finite() && (x as f32).is_finite();
        let (good, what, hint) = match *scale {
            AffineScale::SoftplusClamped {
                threshold,
                eps,
                min,
                max,
            } => (
                !threshold.is_nan()
                    && pos(eps)
                    && min.is_none_or(num)
                    && max.is_none_or(pos)
                    && match (min, max) {
                        (Some(a), Some(b)) => a <= b,
                        _ => true,
                    },
                format!("threshold = {threshold}, eps = {eps}, min = {min:?}, max = {max:?}"),
                "eps > 0, and min ≤ max with max > 0, so that the clamped scale is positive (FlashSim: eps 0.05, clamp [0, 10])",
            ),
            AffineScale::Sigmoid {
                factor,
                offset,
                eps,
            } => (
                num(factor) && factor >= 0.0 && num(offset) && pos(eps),
                format!("factor = {factor}, offset = {offset}, eps = {eps}"),
                "factor ≥ 0 and eps > 0, so that s = factor·σ(u + offset) + eps is positive (FlashSim: 1000, 1, 0.05)",
            ),
            AffineScale::Atan { factor, min, max } => (
                pos(factor)
                    && pos(min)
                    && max.is_none_or(|m| num(m) && m >= min),
                format!("factor = {factor}, min = {min}, max = {max:?}"),
                "factor > 0 and a positive min ≤ max, so that the clamped scale is positive (FlashSim: factor 1000, clamp [0.001, 50])",
            ),
            AffineScale::Softplus { .. } | AffineScale::SoftClipExp { .. } => return true,
        };
        if !good {
            self.report(format!("{path}.scale: {what} are invalid"), hint);
        }
        good
    }

    fn affine_shift(&mut self, path: &str, shift: &AffineShift) -> bool {
        let num = |x: f64| x.is_finite() && (x as f32).is_finite();
        let mut ok = true;
        if !num(shift.offset) {
            self.report(
                format!("{path}: shift_offset = {} is invalid", shift.offset),
                "the shift offset is a finite number (FlashSim: 7.906, -0.5414 or -1)",
            );
            ok = false;
        }
        if let Some(c) = shift.clamp {
            if !(num(c.min) && num(c.max) && c.min <= c.max) {
                self.report(
                    format!(
                        "{path}.shift_clamp: min = {}, max = {} are invalid",
                        c.min, c.max
                    ),
                    "the clamp is two finite numbers min ≤ max (FlashSim: -50, 50)",
                );
                ok = false;
            }
        }
        ok
    }

    /// nflows' `LULinear`: L unit lower-triangular, U upper-triangular with a positive diagonal.
    fn lu_linear(
        &mut self,
        path: &str,
        lower: &Tensor,
        upper: &Tensor,
        bias: &Tensor,
        d: usize,
    ) -> bool {
        let mut ok = self.shape_at(
            &format!("{path}.lower"),
            lower,
            &[d, d],
            "the unit lower-triangular L, [D, D]",
        );
        ok &= self.shape_at(
            &format!("{path}.upper"),
            upper,
            &[d, d],
            "the upper-triangular U, [D, D]",
        );
        ok &= self.shape_at(&format!("{path}.bias"), bias, &[d], "one entry per feature");
        if !ok {
            return false;
        }
        const HINT: &str = "export L and U as nflows' LULinear._create_lower_upper() builds them (flashc_export.nflows does)";
        // L: ones on the diagonal, zeros above.
        let mut bad = 0;
        let mut first = None;
        for i in 0..d {
            for j in i..d {
                let v = lower.data[i * d + j];
                let want = if i == j { 1.0 } else { 0.0 };
                if v != want {
                    bad += 1;
                    first.get_or_insert((i, j, v));
                }
            }
        }
        if let Some((i, j, v)) = first {
            let why = if i == j {
                "a diagonal entry is not 1"
            } else {
                "an entry above the diagonal is not 0"
            };
            self.at(
                &format!("{path}.lower"),
                lower,
                format!(
                    "[{i}, {j}] = {v}: L is not unit lower-triangular: {why} ({bad} such entries)"
                ),
                HINT,
            );
            ok = false;
        }
        let mut bad = 0;
        let mut first = None;
        for i in 0..d {
            for j in 0..i {
                let v = upper.data[i * d + j];
                if v != 0.0 {
                    bad += 1;
                    first.get_or_insert((i, j, v));
                }
            }
        }
        if let Some((i, j, v)) = first {
            self.at(
                &format!("{path}.upper"),
                upper,
                format!("[{i}, {j}] = {v}: U is not upper-triangular: an entry below the diagonal is not 0 ({bad} such entries)"),
                HINT,
            );
            ok = false;
        }
        let diag: Vec<(usize, f32)> = (0..d)
            .map(|i| (i, upper.data[i * d + i]))
            .filter(|&(_, v)| !(v.is_finite() && v > 0.0))
            .collect();
        if let Some(&(i, v)) = diag.first() {
            self.at(
                &format!("{path}.upper"),
                upper,
                format!(
                    "non-invertible LU: diagonal entry {i} = {v} ({} diagonal entries are not finite and > 0)",
                    diag.len()
                ),
                "nflows' diagonal is softplus(unconstrained_upper_diag) + eps, always > 0: export it as LULinear computes it",
            );
            ok = false;
        }
        ok
    }

    fn degrees_of(&mut self, path: &str, t: &Tensor, n: usize) -> Option<Vec<usize>> {
        if !self.shape_at(path, t, &[n], "one degree per unit") {
            return None;
        }
        if let Some(i) = t.data.iter().position(|&x| x < 0.0) {
            self.at(
                path,
                t,
                format!("has a negative degree at index {i}"),
                "degrees are integers >= 0",
            );
            return None;
        }
        Some(t.data.iter().map(|&x| x as usize).collect())
    }

    fn norm(&mut self, path: &str, n: &Norm, width: usize) -> bool {
        let mut ok = true;
        for t in n.tensors() {
            ok &= self.shape_at(path, t, &[width], "one entry per unit");
        }
        if !n.eps.is_finite() || n.eps < 0.0 {
            self.report(
                format!("{path}: eps = {} is invalid", n.eps),
                "eps is a finite number >= 0 (nflows MADE: 1e-3)",
            );
            return false;
        }
        if ok {
            if let Some(i) = n
                .var
                .data
                .iter()
                .position(|&v| !(f64::from(v) + n.eps > 0.0))
            {
                self.at(
                    path,
                    &n.var,
                    format!("var + eps is not positive at index {i}"),
                    "variances are >= 0; re-export the running variance",
                );
                ok = false;
            }
        }
        ok
    }

    /// A masked layer from units of degrees `din`; returns its output degrees. `strict`: the
    /// output rule (`deg_out > deg_in`) with the given output degrees.
    fn masked(
        &mut self,
        path: &str,
        l: &MaskedLinear,
        din: &[usize],
        out_degrees: Option<&[usize]>,
    ) -> Option<Vec<usize>> {
        let n_in = din.len();
        let n_out = l.weight.shape.first().copied().unwrap_or(0);
        let mut ok = self.shape_at(
            path,
            &l.weight,
            &[n_out, n_in],
            "[n_out, n_in], n_in = units of the layer's input",
        );
        if n_out == 0 {
            self.at(
                path,
                &l.weight,
                "has no output units".into(),
                "a layer needs at least one unit",
            );
            return None;
        }
        ok &= self.shape_at(path, &l.bias, &[n_out], "one entry per output unit");
        let given = match &l.degrees {
            Some(t) => self.degrees_of(path, t, n_out),
            None => out_degrees.map(<[usize]>::to_vec),
        };
        let dout = match (given, out_degrees) {
            (Some(g), Some(implied)) if g != implied => {
                if let Some(t) = &l.degrees {
                    self.at(path, t, format!("are {g:?}, but the outputs of feature i must have feature i's degree: {implied:?}"), "the final layer's rows are feature-major: row i·m + j is parameter j of feature i");
                }
                return None;
            }
            (Some(g), _) => g,
            (None, _) => return None,
        };
        if !ok {
            return None;
        }
        let strict = out_degrees.is_some();
        let mut bad = 0;
        let mut first = None;
        for (o, &deg_o) in dout.iter().enumerate() {
            for (i, &deg_i) in din.iter().enumerate() {
                let w = l.weight.data[o * n_in + i];
                let allowed = if strict {
                    deg_o > deg_i
                } else {
                    deg_o >= deg_i
                };
                if w != 0.0 && !allowed {
                    bad += 1;
                    first.get_or_insert((o, i, w));
                }
            }
        }
        if let Some((o, i, w)) = first {
            let rule = if strict {
                "an output may only read units of lower degree"
            } else {
                "a hidden unit may only read units of degree ≤ its own"
            };
            self.at(
                path,
                &l.weight,
                format!(
                    "weight [{o}, {i}] = {w} connects output unit {o} (degree {}) to input unit {i} (degree {}): {rule} ({bad} such weight(s)); the weights are not consistent with the autoregressive degrees",
                    dout[o], din[i]
                ),
                MASK_HINT,
            );
            return None;
        }
        Some(dout)
    }

    fn made(&mut self, path: &str, m: &Made, d: usize, c: Option<usize>, params: usize) -> bool {
        let mut ok = true;
        let din: Vec<usize> = match &m.input_degrees {
            Some(t) => {
                let p = format!("{path}.input_degrees");
                let mut seen = vec![false; d + 1];
                match self.degrees_of(&p, t, d) {
                    Some(g)
                        if g.iter().all(|&x| {
                            (1..=d).contains(&x) && !std::mem::replace(&mut seen[x], true)
                        }) =>
                    {
                        g
                    }
                    Some(_) => {
                        self.at(
                            &p,
                            t,
                            format!("is not a permutation of 1..{d}"),
                            "input degrees give the autoregressive order: each of 1..D once",
                        );
                        return false;
                    }
                    None => return false,
                }
            }
            None => (1..=d).collect(),
        };
        self.activation(&m.activation);
        let Some(mut h) = self.masked(&format!("{path}.initial"), &m.initial, &din, None) else {
            return false;
        };
        if let Some((lin, act)) = &m.context {
            self.activation(act);
            ok &= self.context_layer(&format!("{path}.context"), lin, h.len(), c);
        }
        for (i, b) in m.blocks.iter().enumerate() {
            let bp = format!("{path}.blocks[{i}]");
            match (b, m.kind) {
                (
                    MadeBlock::Residual {
                        norms,
                        linear,
                        context,
                    },
                    MadeKind::Residual,
                ) => {
                    if let Some(n) = norms {
                        ok &= self.norm(&format!("{bp}.batchnorm[0]"), &n[0], h.len());
                    }
                    let Some(t) = self.masked(&format!("{bp}.linear[0]"), &linear[0], &h, None)
                    else {
                        return false;
                    };
                    if let Some(n) = norms {
                        ok &= self.norm(&format!("{bp}.batchnorm[1]"), &n[1], t.len());
                    }
                    if let Some(cl) = context {
                        ok &= self.context_layer(&format!("{bp}.context"), cl, t.len(), c);
                    }
                    let Some(u) = self.masked(&format!("{bp}.linear[1]"), &linear[1], &t, None)
                    else {
                        return false;
                    };
                    if u != h {
                        if let Some(deg) = &linear[1].degrees {
                            self.at(&format!("{bp}.linear[1]"), deg, "differ from the degrees of the block's input: a residual block adds its output to its input unit by unit".into(), "in a residual MADE every hidden layer has the same degrees (nflows: random_mask=False)");
                        }
                        return false;
                    }
                }
                (MadeBlock::Feedforward { norm, linear }, MadeKind::Feedforward) => {
                    if let Some(n) = norm {
                        ok &= self.norm(&format!("{bp}.batchnorm"), n, h.len());
                    }
                    let Some(t) = self.masked(&format!("{bp}.linear"), linear, &h, None) else {
                        return false;
                    };
                    h = t;
                }
                _ => {
                    self.report(format!("{bp}: the block's fields do not match the MADE kind"), "residual blocks have \"linear\": [two layers]; feed-forward blocks \"linear\": one layer");
                    return false;
                }
            }
        }
        let implied: Vec<usize> = din
            .iter()
            .flat_map(|&g| std::iter::repeat_n(g, params))
            .collect();
        let fl = &m.final_layer;
        if fl.weight.shape.first() != Some(&(d * params)) {
            self.at(
                &format!("{path}.final"),
                &fl.weight,
                format!(
                    "has shape {:?}, expected [{}, {}] ({params} parameters per feature)",
                    fl.weight.shape,
                    d * params,
                    h.len()
                ),
                "an affine transform has 2 parameters per feature, a spline with K bins 3K − 1 (with K = \"bins\" of its \"spline\" object); re-export the flow, see docs/flows.md",
            );
            return false;
        }
        ok &= self
            .masked(&format!("{path}.final"), fl, &h, Some(&implied))
            .is_some();
        ok
    }

    fn context_layer(
        &mut self,
        path: &str,
        l: &crate::ir::flow::Linear,
        n_out: usize,
        c: Option<usize>,
    ) -> bool {
        let Some(c) = c else {
            self.at(
                path,
                &l.weight,
                "belongs to a conditional MADE, but the flow has no \"context\"".into(),
                "give the flow node a \"context\" value",
            );
            return false;
        };
        let mut ok = self.shape_at(path, &l.weight, &[n_out, c], "[units, context width]");
        if let Some(b) = &l.bias {
            ok &= self.shape_at(path, b, &[n_out], "one entry per unit");
        }
        ok
    }
}

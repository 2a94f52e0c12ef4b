//! Batch ODE integration for continuous-flow (flow-matching) sampling.
//!
//! Integrates `dx/dt = v(t, x)` from `t = 0` to `t = 1` for a batch of rows stored row-major
//! (`rows × dim`). The vector field is a caller closure `FnMut(t, x, out)` that sees the whole
//! batch; conditioning context is captured by the closure and stays constant (it is not part of
//! the integrated state).
//!
//! Methods ([`Method`]):
//!
//! * [`Method::Euler`], [`Method::Midpoint`]: fixed steps, identical to torchdiffeq's `euler`
//!   and `midpoint`.
//! * [`Method::Rk4`]: classic RK4 (1/6, 2/6, 2/6, 1/6), identical to torchdiffeq's
//!   `rk4_step_func` (which `odeint` does not expose as a method).
//! * [`Method::Rk4ThreeEighths`]: the 3/8-rule RK4 that torchdiffeq's `method="rk4"` runs
//!   (`rk4_alt_step_func`).
//! * [`Method::Dopri5`]: Dormand–Prince 5(4), adaptive, in a torchdiffeq-compatible mode.
//!
//! Fixed-step grid: `t_k = k · (1/n)` for `k < n` and `t_n = 1`, each step `dt = t_{k+1} − t_k`,
//! all in `f64` — the grid torchdiffeq builds from `options={"step_size": 1/n}`.
//!
//! # dopri5: what matches torchdiffeq (`RKAdaptiveStepsizeODESolver`, dopri5 tableau)
//!
//! * One step size for the whole batch; the error ratio is the RMS over **all rows and
//!   components** of `err / (atol + rtol · max(|y0|, |y1|))`.
//! * Initial step: `_select_initial_step` with order 4 (two field evaluations, including the
//!   one at `t = 0` that the first step reuses), unless [`Dopri5Options::first_step`] is set.
//! * Acceptance `ratio ≤ 1`; next step `dt · min(10, max(0.9 / ratio^(1/5), d))` with
//!   `d = 0.2` after a rejection and `d = 1` after an acceptance (an accepted step never
//!   shrinks the next one); `ratio = 0` gives `10 · dt`.
//! * Stages at `alpha = 1` are evaluated at the float just below `t1` (torchdiffeq's
//!   `Perturb.PREV`); stage times and stage states are computed in the state precision, step
//!   control in `f64`.
//! * Steps are **not** clipped to `t = 1`: like torchdiffeq, the last step may overshoot and the
//!   result at `t = 1` is the 4th-order dense-output polynomial (`_interp_fit` with the
//!   Dormand–Prince mid-point weights) of that step. The number of field evaluations is therefore
//!   the same as torchdiffeq's: `2 + 6 · (accepted + rejected steps)`.
//! * `min_step = 0`, `max_step = ∞` (torchdiffeq's defaults); step-size underflow
//!   (`t + dt == t`) and too many steps are errors, as torchdiffeq's assertions are.
//!
//! What differs: RMS sums are accumulated in `f64` (torch sums in the tensor dtype), so with
//! `f32` state the error ratio can differ in the last bits; with `f64` state results agree with
//! torchdiffeq in `float64` to rounding (the committed fixtures check 1e-10 and equal NFE).
//! torchdiffeq integrates in the dtype of `y0`; here the precision is the type parameter
//! ([`Real`]: `f32` or `f64`). No output times other than `t = 1`, no events, no `step_t`,
//! `jump_t`, adjoint or per-component tolerances.
//!
//! Scratch buffers live in a caller-owned [`Workspace`]; integration allocates nothing.
//!
//! # Compiled vector fields
//!
//! A model compiled from a spec with an `ode` section (`docs/flow-matching.md`) is a vector field
//! `v(x, context, t)` whose input row holds the state, the context and `t` in columns the spec
//! names; generated code exposes them as a [`Settings`] (`generated::NAME::ODE`,
//! `generated::ode_by_name`). [`sample`] integrates such a model from the base noise `z` at
//! `t = 0` to `t = 1`; [`VectorField`] does the same with another method or ISA tier, or without
//! allocating ([`VectorField::integrate`] with a [`Scratch`]).

use std::fmt;
use std::ops::{Add, Div, Mul, Sub};

use crate::isa::{self, Tier};
use crate::model::Model;

/// Floating-point types the integrator runs in (`f32`, `f64`).
pub trait Real:
    Copy
    + PartialOrd
    + Default
    + fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + sealed::Sealed
    + 'static
{
    /// Rounds an `f64` to this type.
    fn from_f64(v: f64) -> Self;
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
    /// Not NaN and not infinite.
    fn finite(self) -> bool;
    /// Absolute value.
    fn abs_(self) -> Self;
    /// The largest representable value below `self` (finite, non-NaN input).
    fn next_down(self) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Real for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn abs_(self) -> Self {
        self.abs()
    }
    fn next_down(self) -> Self {
        if self == 0.0 {
            -f32::from_bits(1)
        } else if self > 0.0 {
            f32::from_bits(self.to_bits() - 1)
        } else {
            f32::from_bits(self.to_bits() + 1)
        }
    }
}

impl Real for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn abs_(self) -> Self {
        self.abs()
    }
    fn next_down(self) -> Self {
        if self == 0.0 {
            -f64::from_bits(1)
        } else if self > 0.0 {
            f64::from_bits(self.to_bits() - 1)
        } else {
            f64::from_bits(self.to_bits() + 1)
        }
    }
}

/// Options of the adaptive dopri5 method (torchdiffeq names and defaults where they exist).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dopri5Options {
    /// Relative tolerance (torchdiffeq default 1e-7).
    pub rtol: f64,
    /// Absolute tolerance (torchdiffeq default 1e-9).
    pub atol: f64,
    /// Most step attempts (accepted + rejected) before [`Error::TooManySteps`].
    pub max_steps: usize,
    /// First step size; `None` selects it as torchdiffeq's `_select_initial_step` does.
    pub first_step: Option<f64>,
}

impl Dopri5Options {
    /// torchdiffeq's defaults (`rtol` 1e-7, `atol` 1e-9), at most 100 000 step attempts, the
    /// first step chosen automatically; usable in constants (`..Dopri5Options::DEFAULT`).
    pub const DEFAULT: Dopri5Options = Dopri5Options {
        rtol: 1e-7,
        atol: 1e-9,
        max_steps: 100_000,
        first_step: None,
    };
}

impl Default for Dopri5Options {
    fn default() -> Self {
        Dopri5Options::DEFAULT
    }
}

/// An integration method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Forward Euler, `steps` equal steps (order 1).
    Euler { steps: usize },
    /// Explicit midpoint, `steps` equal steps (order 2).
    Midpoint { steps: usize },
    /// Classic RK4, `steps` equal steps (order 4).
    Rk4 { steps: usize },
    /// 3/8-rule RK4 (torchdiffeq `method="rk4"`), `steps` equal steps (order 4).
    Rk4ThreeEighths { steps: usize },
    /// Adaptive Dormand–Prince 5(4), torchdiffeq-compatible step control.
    Dopri5(Dopri5Options),
}

impl Method {
    /// The method's name as torchdiffeq spells it (`rk4_classic` for [`Method::Rk4`]).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Euler { .. } => "euler",
            Method::Midpoint { .. } => "midpoint",
            Method::Rk4 { .. } => "rk4_classic",
            Method::Rk4ThreeEighths { .. } => "rk4",
            Method::Dopri5(_) => "dopri5",
        }
    }
}

/// Counters of one integration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Vector-field evaluations (each over the whole batch); torchdiffeq's NFE.
    pub nfe: usize,
    /// Accepted steps (all steps for fixed-step methods).
    pub accepted: usize,
    /// Rejected steps (dopri5 only).
    pub rejected: usize,
}

/// Errors of the integrator.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The state or workspace does not have `rows × dim` values.
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// An invalid method setting (zero steps, negative or non-finite tolerances, ...).
    Config {
        method: &'static str,
        problem: String,
    },
    /// A NaN or infinity appeared in the state or in the vector field's output.
    NonFinite {
        what: &'static str,
        t: f64,
        row: usize,
        col: usize,
    },
    /// dopri5 step size became too small to advance time (`t + dt == t`).
    StepUnderflow { t: f64, dt: f64 },
    /// dopri5 needed more than `max_steps` step attempts.
    TooManySteps { max_steps: usize, t: f64 },
    /// A model's [`Settings`] do not fit the model (columns out of range or overlapping, a
    /// state of another width than the outputs, noise).
    Settings {
        model: &'static str,
        problem: String,
    },
    /// Running the vector-field model failed.
    Model(crate::model::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape {
                what,
                expected,
                got,
            } => write!(
                f,
                "ode: the {what} has {got} values, expected {expected}; hint: the state is \
                 row-major rows × dim, and the workspace must be created with the same rows and dim"
            ),
            Error::Config { method, problem } => {
                write!(f, "ode: invalid `{method}` settings: {problem}")
            }
            Error::NonFinite { what, t, row, col } => write!(
                f,
                "ode: non-finite value in the {what} at t = {t}, row {row}, component {col}; \
                 hint: check the inputs and the vector-field model, or use smaller steps"
            ),
            Error::StepUnderflow { t, dt } => write!(
                f,
                "ode: dopri5 step size underflow at t = {t} (dt = {dt:e}); hint: the vector field \
                 may be discontinuous or blow up, or the tolerances are too tight for the precision"
            ),
            Error::TooManySteps { max_steps, t } => write!(
                f,
                "ode: dopri5 exceeded {max_steps} step attempts, stopped at t = {t}; hint: loosen \
                 rtol/atol, raise max_steps, or use a fixed-step method"
            ),
            Error::Settings { model, problem } => write!(
                f,
                "ode: the integration settings do not fit model `{model}`: {problem}; hint: use \
                 the settings generated for this model (`generated::ode_by_name(\"{model}\")`), \
                 changing only the method"
            ),
            Error::Model(e) => write!(f, "ode: evaluating the vector field failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Caller-owned scratch buffers for one batch shape (`rows × dim`).
#[derive(Clone, Debug)]
pub struct Workspace<T: Real> {
    rows: usize,
    dim: usize,
    /// Stage derivatives (7 for dopri5; fixed-step methods use the first 4).
    k: Vec<Vec<T>>,
    /// Stage state.
    tmp: Vec<T>,
    /// dopri5: candidate end-of-step state.
    y1: Vec<T>,
}

impl<T: Real> Workspace<T> {
    /// Buffers for a batch of `rows` rows of `dim` values (about `9 · rows · dim` values).
    pub fn new(rows: usize, dim: usize) -> Result<Self, Error> {
        let n = rows.checked_mul(dim).ok_or(Error::Shape {
            what: "batch (rows × dim overflows)",
            expected: usize::MAX,
            got: rows,
        })?;
        Ok(Workspace {
            rows,
            dim,
            k: (0..7).map(|_| vec![T::default(); n]).collect(),
            tmp: vec![T::default(); n],
            y1: vec![T::default(); n],
        })
    }

    /// Serves `rows` rows from now on; within the capacity it was created with, this does not
    /// allocate.
    fn set_rows(&mut self, rows: usize) {
        let n = rows * self.dim;
        for b in self.k.iter_mut().chain([&mut self.tmp, &mut self.y1]) {
            b.resize(n, T::default());
        }
        self.rows = rows;
    }

    /// Rows of the batch this workspace serves.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

fn first_non_finite<T: Real>(what: &'static str, t: f64, v: &[T], dim: usize) -> Result<(), Error> {
    match v.iter().position(|x| !x.finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            what,
            t,
            row: i / dim.max(1),
            col: i % dim.max(1),
        }),
    }
}

/// Integrates `x` (row-major `rows × dim`, the state at `t = 0`) in place to `t = 1`.
///
/// `field(t, x, out)` writes `dx/dt` at time `t` for the whole batch into `out`
/// (same length as `x`). `ws` must have been created for the same `rows` and `dim`.
pub fn integrate<T: Real, F: FnMut(T, &[T], &mut [T])>(
    method: &Method,
    x: &mut [T],
    ws: &mut Workspace<T>,
    mut field: F,
) -> Result<Stats, Error> {
    let n = ws.rows * ws.dim;
    if x.len() != n {
        return Err(Error::Shape {
            what: "state buffer",
            expected: n,
            got: x.len(),
        });
    }
    match method {
        Method::Euler { steps }
        | Method::Midpoint { steps }
        | Method::Rk4 { steps }
        | Method::Rk4ThreeEighths { steps } => {
            if *steps == 0 {
                return Err(Error::Config {
                    method: method.name(),
                    problem: "steps must be at least 1".into(),
                });
            }
            if n == 0 {
                return Ok(Stats::default());
            }
            fixed(method, *steps, x, ws, &mut field)
        }
        Method::Dopri5(opt) => {
            let bad_tol = |v: f64| !(v.is_finite() && v >= 0.0);
            if bad_tol(opt.rtol) || bad_tol(opt.atol) || (opt.rtol == 0.0 && opt.atol == 0.0) {
                return Err(Error::Config {
                    method: "dopri5",
                    problem: format!(
                        "rtol = {} and atol = {} must be finite, ≥ 0 and not both 0",
                        opt.rtol, opt.atol
                    ),
                });
            }
            if let Some(h) = opt.first_step {
                if !(h.is_finite() && h > 0.0) {
                    return Err(Error::Config {
                        method: "dopri5",
                        problem: format!("first_step = {h} must be finite and > 0"),
                    });
                }
            }
            if n == 0 {
                return Ok(Stats::default());
            }
            dopri5(opt, x, ws, &mut field)
        }
    }
}

fn fixed<T: Real, F: FnMut(T, &[T], &mut [T])>(
    method: &Method,
    steps: usize,
    y: &mut [T],
    ws: &mut Workspace<T>,
    field: &mut F,
) -> Result<Stats, Error> {
    let dim = ws.dim;
    let h = 1.0 / steps as f64;
    let mut stats = Stats::default();
    let tf = T::from_f64;
    first_non_finite("initial state", 0.0, y, dim)?;
    let (k, tmp) = (&mut ws.k, &mut ws.tmp);
    let (k1, rest) = k.split_at_mut(1);
    let (k2, rest) = rest.split_at_mut(1);
    let (k3, k4) = rest.split_at_mut(1);
    let (k1, k2, k3, k4) = (&mut k1[0], &mut k2[0], &mut k3[0], &mut k4[0]);
    for s in 0..steps {
        let t0 = s as f64 * h;
        let t1 = if s + 1 == steps {
            1.0
        } else {
            (s + 1) as f64 * h
        };
        let dt = t1 - t0;
        let d = tf(dt);
        match method {
            Method::Euler { .. } => {
                field(tf(t0), y, k1);
                stats.nfe += 1;
                for (yi, &a) in y.iter_mut().zip(k1.iter()) {
                    *yi = *yi + d * a;
                }
            }
            Method::Midpoint { .. } => {
                let half = 0.5 * dt;
                let hh = tf(half);
                field(tf(t0), y, k1);
                for i in 0..y.len() {
                    tmp[i] = y[i] + k1[i] * hh;
                }
                field(tf(t0 + half), tmp, k2);
                stats.nfe += 2;
                for (yi, &b) in y.iter_mut().zip(k2.iter()) {
                    *yi = *yi + d * b;
                }
            }
            Method::Rk4 { .. } => {
                let half = dt * 0.5;
                let hh = tf(half);
                field(tf(t0), y, k1);
                for i in 0..y.len() {
                    tmp[i] = y[i] + hh * k1[i];
                }
                field(tf(t0 + half), tmp, k2);
                for i in 0..y.len() {
                    tmp[i] = y[i] + hh * k2[i];
                }
                field(tf(t0 + half), tmp, k3);
                for i in 0..y.len() {
                    tmp[i] = y[i] + d * k3[i];
                }
                field(tf(t1), tmp, k4);
                stats.nfe += 4;
                let (two, sixth) = (tf(2.0), tf(1.0 / 6.0));
                for i in 0..y.len() {
                    y[i] = y[i] + (k1[i] + two * (k2[i] + k3[i]) + k4[i]) * d * sixth;
                }
            }
            Method::Rk4ThreeEighths { .. } => {
                let (third, two_thirds) = (1.0 / 3.0, 2.0 / 3.0);
                let (t3, three, eighth) = (tf(third), tf(3.0), tf(0.125));
                field(tf(t0), y, k1);
                for i in 0..y.len() {
                    tmp[i] = y[i] + d * k1[i] * t3;
                }
                field(tf(t0 + dt * third), tmp, k2);
                for i in 0..y.len() {
                    tmp[i] = y[i] + d * (k2[i] - k1[i] * t3);
                }
                field(tf(t0 + dt * two_thirds), tmp, k3);
                for i in 0..y.len() {
                    tmp[i] = y[i] + d * (k1[i] - k2[i] + k3[i]);
                }
                field(tf(t1), tmp, k4);
                stats.nfe += 4;
                for i in 0..y.len() {
                    y[i] = y[i] + (k1[i] + three * (k2[i] + k3[i]) + k4[i]) * d * eighth;
                }
            }
            Method::Dopri5(_) => unreachable!("fixed() is only called for fixed-step methods"),
        }
        stats.accepted += 1;
        first_non_finite("state", t1, y, dim)?;
    }
    Ok(stats)
}

// Dormand–Prince 5(4) tableau (the Shampine variant torchdiffeq uses).
const ALPHA: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const BETA: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
const C_ERROR: [f64; 7] = [
    35.0 / 384.0 - 1951.0 / 21600.0,
    0.0,
    500.0 / 1113.0 - 22642.0 / 50085.0,
    125.0 / 192.0 - 451.0 / 720.0,
    -2187.0 / 6784.0 - -12231.0 / 42400.0,
    11.0 / 84.0 - 649.0 / 6300.0,
    -1.0 / 60.0,
];
const C_MID: [f64; 7] = [
    6025192743.0 / 30085553152.0 / 2.0,
    0.0,
    51252292925.0 / 65400821598.0 / 2.0,
    -2691868925.0 / 45128329728.0 / 2.0,
    187940372067.0 / 1594534317056.0 / 2.0,
    -1776094331.0 / 19743644256.0 / 2.0,
    11237099.0 / 235043384.0 / 2.0,
];
const SAFETY: f64 = 0.9;
const IFACTOR: f64 = 10.0;
const DFACTOR: f64 = 0.2;
const ORDER: f64 = 5.0;

fn rms<T: Real>(it: impl Iterator<Item = T>, n: usize) -> f64 {
    let s: f64 = it
        .map(|v| {
            let v = v.to_f64();
            v * v
        })
        .sum();
    (s / n as f64).sqrt()
}

/// torchdiffeq `_select_initial_step` (order 4 for dopri5). Evaluates the field once.
fn initial_step<T: Real, F: FnMut(T, &[T], &mut [T])>(
    opt: &Dopri5Options,
    y0: &[T],
    f0: &[T],
    tmp: &mut [T],
    f1: &mut [T],
    field: &mut F,
) -> f64 {
    let n = y0.len();
    let (rtol, atol) = (T::from_f64(opt.rtol), T::from_f64(opt.atol));
    let scale = |i: usize| atol + y0[i].abs_() * rtol;
    let d0 = rms((0..n).map(|i| y0[i] / scale(i)), n);
    let d1 = rms((0..n).map(|i| f0[i] / scale(i)), n);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let h0t = T::from_f64(h0);
    for i in 0..n {
        tmp[i] = y0[i] + h0t * f0[i];
    }
    field(T::from_f64(0.0 + h0), tmp, f1);
    let d2 = (rms((0..n).map(|i| (f1[i] - f0[i]) / scale(i)), n) / h0).abs();
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
        f64::max(1e-6, h0 * 1e-3)
    } else {
        (0.01 / f64::max(d1, d2)).powf(1.0 / 5.0)
    };
    f64::min(100.0 * h0, h1)
}

fn dopri5<T: Real, F: FnMut(T, &[T], &mut [T])>(
    opt: &Dopri5Options,
    y: &mut [T],
    ws: &mut Workspace<T>,
    field: &mut F,
) -> Result<Stats, Error> {
    let n = y.len();
    let dim = ws.dim;
    let tf = T::from_f64;
    let (rtol, atol) = (tf(opt.rtol), tf(opt.atol));
    let mut stats = Stats::default();
    let Workspace { k, tmp, y1, .. } = ws;

    first_non_finite("initial state", 0.0, y, dim)?;
    field(tf(0.0), y, &mut k[0]);
    stats.nfe += 1;
    first_non_finite("vector-field output", 0.0, &k[0], dim)?;
    let mut dt = match opt.first_step {
        Some(h) => h,
        None => {
            let (k0, rest) = k.split_at_mut(1);
            stats.nfe += 1;
            initial_step(opt, y, &k0[0], tmp, &mut rest[0], field)
        }
    };
    let mut t = 0.0f64;
    let mut attempts = 0usize;
    while 1.0 > t {
        if attempts >= opt.max_steps {
            return Err(Error::TooManySteps {
                max_steps: opt.max_steps,
                t,
            });
        }
        if !dt.is_finite() {
            dt = 0.0; // torchdiffeq: min_step
        }
        dt = dt.max(0.0);
        if t + dt <= t {
            return Err(Error::StepUnderflow { t, dt });
        }
        first_non_finite("state", t, y, dim)?;
        let t1 = t + dt;
        let (t0s, dts, t1s) = (tf(t), tf(dt), tf(t1));
        for s in 0..6 {
            let ti = if ALPHA[s] == 1.0 {
                t1s.next_down()
            } else {
                t0s + tf(ALPHA[s]) * dts
            };
            let coef: [T; 6] = std::array::from_fn(|j| {
                if j <= s {
                    tf(BETA[s][j]) * dts
                } else {
                    T::default()
                }
            });
            let (done, rest) = k.split_at_mut(s + 1);
            let stage: &mut [T] = if s == 5 { &mut y1[..] } else { &mut tmp[..] };
            for i in 0..n {
                let mut acc = done[0][i] * coef[0];
                for j in 1..=s {
                    acc = acc + done[j][i] * coef[j];
                }
                stage[i] = y[i] + acc;
            }
            field(ti, stage, &mut rest[0]);
            stats.nfe += 1;
        }
        attempts += 1;
        let ce: [T; 7] = std::array::from_fn(|j| dts * tf(C_ERROR[j]));
        let mut sum = 0.0f64;
        for i in 0..n {
            let mut err = k[0][i] * ce[0];
            for j in 1..7 {
                err = err + k[j][i] * ce[j];
            }
            let a = y[i].abs_();
            let b = y1[i].abs_();
            let tol = atol + rtol * if b > a { b } else { a };
            let r = (err / tol).to_f64();
            sum += r * r;
        }
        let ratio = (sum / n as f64).sqrt();
        if ratio.is_nan() {
            for ks in &k[1..7] {
                first_non_finite("vector-field output", t1, ks, dim)?;
            }
            first_non_finite("stage state", t1, y1, dim)?;
            return Err(Error::NonFinite {
                what: "error estimate",
                t: t1,
                row: 0,
                col: 0,
            });
        }
        let accept = ratio <= 1.0;
        if accept {
            if t1 >= 1.0 {
                // Last step: dense output at t = 1 (torchdiffeq `_interp_fit`/`_interp_evaluate`).
                let cm: [T; 7] = std::array::from_fn(|j| dts * tf(C_MID[j]));
                let x = tf((1.0 - t) / (t1 - t));
                let (c2, c3, c4, c5, c8, c11, c14, c16, c18, c32) = (
                    tf(2.0),
                    tf(3.0),
                    tf(4.0),
                    tf(5.0),
                    tf(8.0),
                    tf(11.0),
                    tf(14.0),
                    tf(16.0),
                    tf(18.0),
                    tf(32.0),
                );
                let x2 = x * x;
                let x3 = x2 * x;
                let x4 = x3 * x;
                for i in 0..n {
                    let mut ym = k[0][i] * cm[0];
                    for j in 1..7 {
                        ym = ym + k[j][i] * cm[j];
                    }
                    let ym = y[i] + ym;
                    let (y0i, y1i, f0, f1) = (y[i], y1[i], k[0][i], k[6][i]);
                    let a = c2 * dts * (f1 - f0) - c8 * (y1i + y0i) + c16 * ym;
                    let b = dts * (c5 * f0 - c3 * f1) + c18 * y0i + c14 * y1i - c32 * ym;
                    let c = dts * (f1 - c4 * f0) - c11 * y0i - c5 * y1i + c16 * ym;
                    let d = dts * f0;
                    let total = y0i + x * d;
                    let total = total + x2 * c;
                    let total = total + x3 * b;
                    y[i] = total + x4 * a;
                }
            } else {
                y.copy_from_slice(y1);
            }
            k.swap(0, 6);
            t = t1;
            stats.accepted += 1;
        } else {
            stats.rejected += 1;
        }
        dt = if ratio == 0.0 {
            dt * IFACTOR
        } else {
            let dfactor = if ratio < 1.0 { 1.0 } else { DFACTOR };
            dt * f64::min(IFACTOR, f64::max(SAFETY / ratio.powf(1.0 / ORDER), dfactor))
        };
    }
    first_non_finite("state", 1.0, y, dim)?;
    Ok(stats)
}

// ------------------------------------------------------------------ compiled vector fields

/// How a compiled vector field is integrated: the spec's `ode` section, as generated code
/// exposes it (`generated::NAME::ODE`, `generated::ode_by_name`). Column indices are positions
/// in the model's input row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The method (and steps or tolerances) of the spec; replace it to integrate differently:
    /// `Settings { method: Method::Rk4 { steps: 8 }, ..S }`.
    pub method: Method,
    /// Input column of each state component, in the order of the model's outputs (`dx/dt`).
    pub state: &'static [usize],
    /// Input column of the time `t`.
    pub time: usize,
    /// Every other input column (the context, constant during the integration), in input order.
    pub context: &'static [usize],
}

/// A compiled vector-field model with [`Settings`] that were checked against it.
///
/// Rows are integrated as one batch: fixed-step methods treat every row independently (a row's
/// result does not depend on the others), while dopri5 chooses one step size for the whole batch
/// from an RMS over all rows, as torchdiffeq does, so its results depend on the batch.
#[derive(Clone, Copy)]
pub struct VectorField<'m> {
    model: &'m dyn Model,
    settings: Settings,
    tier: Tier,
}

/// Caller-owned buffers of [`VectorField::integrate`] for batches of up to `rows` rows.
#[derive(Clone, Debug)]
pub struct Scratch {
    rows: usize,
    dim: usize,
    ws: Workspace<f32>,
    input: Vec<f32>,
}

impl Scratch {
    /// Buffers for batches of `rows` rows of `field`.
    pub fn new(field: &VectorField<'_>, rows: usize) -> Result<Scratch, Error> {
        let dim = field.dim();
        let n_in = field.model.info().n_inputs;
        let input = rows.checked_mul(n_in).ok_or(Error::Shape {
            what: "batch (rows × inputs overflows)",
            expected: usize::MAX,
            got: rows,
        })?;
        Ok(Scratch {
            rows,
            dim,
            ws: Workspace::new(rows, dim)?,
            input: vec![0.0; input],
        })
    }
}

impl<'m> VectorField<'m> {
    /// Checks `settings` against `model`: the state as wide as the outputs, state, time and
    /// context columns together each input column exactly once, no noise.
    pub fn new(model: &'m dyn Model, settings: Settings) -> Result<VectorField<'m>, Error> {
        let info = model.info();
        let bad = |problem: String| Error::Settings {
            model: info.name,
            problem,
        };
        if info.n_noise > 0 {
            return Err(bad(format!(
                "the model takes {} noise value(s) per row; a vector field is deterministic",
                info.n_noise
            )));
        }
        if settings.state.len() != info.n_outputs {
            return Err(bad(format!(
                "{} state column(s), but the model has {} output(s) (dx/dt)",
                settings.state.len(),
                info.n_outputs
            )));
        }
        let mut seen = vec![false; info.n_inputs];
        let all = settings
            .state
            .iter()
            .chain(std::iter::once(&settings.time))
            .chain(settings.context);
        for &c in all {
            match seen.get_mut(c) {
                None => {
                    return Err(bad(format!(
                        "column {c} is out of range (the model has {} input columns)",
                        info.n_inputs
                    )))
                }
                Some(true) => return Err(bad(format!("input column {c} is named twice"))),
                Some(s) => *s = true,
            }
        }
        if let Some(c) = seen.iter().position(|s| !s) {
            return Err(bad(format!(
                "input column {c} (`{}`) is neither state, time nor context",
                info.input_columns.get(c).copied().unwrap_or("?")
            )));
        }
        Ok(VectorField {
            model,
            settings,
            tier: isa::active(),
        })
    }

    /// The same field integrated with `method`.
    pub fn with_method(mut self, method: Method) -> VectorField<'m> {
        self.settings.method = method;
        self
    }

    /// The same field evaluated on `tier` (an unsupported tier falls back to the active one).
    pub fn on_tier(mut self, tier: Tier) -> VectorField<'m> {
        self.tier = tier;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The model.
    pub fn model(&self) -> &'m dyn Model {
        self.model
    }

    /// Values per row of the state (the sample).
    pub fn dim(&self) -> usize {
        self.settings.state.len()
    }

    /// Values per row of the context.
    pub fn context_width(&self) -> usize {
        self.settings.context.len()
    }

    /// Integrates the rows of `x` (row-major `rows × dim`, the base noise at `t = 0`) in place to
    /// `t = 1`, with `context` (row-major `rows × context_width`) held constant. Allocates
    /// nothing: the buffers are `scratch`'s, made for at least `rows` rows.
    // `usize::is_multiple_of` needs a newer Rust than the workspace's rust-version.
    #[allow(clippy::manual_is_multiple_of)]
    pub fn integrate(&self, context: &[f32], x: &mut [f32], scratch: &mut Scratch) -> Result<Stats, Error> {
        let (dim, cw) = (self.dim(), self.context_width());
        let n_in = self.model.info().n_inputs;
        if dim == 0 || x.len() % dim != 0 {
            return Err(Error::Shape {
                what: "state buffer (a whole number of rows of the state width)",
                expected: dim * (x.len() / dim.max(1)),
                got: x.len(),
            });
        }
        let rows = x.len() / dim;
        if context.len() != rows * cw {
            return Err(Error::Shape {
                what: "context buffer",
                expected: rows * cw,
                got: context.len(),
            });
        }
        if rows > scratch.rows || scratch.dim != dim || scratch.input.len() < scratch.rows * n_in {
            return Err(Error::Shape {
                what: "scratch (made for another field or fewer rows)",
                expected: rows * dim,
                got: scratch.rows * scratch.dim,
            });
        }
        if rows == 0 {
            return Ok(Stats::default());
        }
        scratch.ws.set_rows(rows);
        let s = &self.settings;
        let input = &mut scratch.input[..rows * n_in];
        for (row, ctx) in input.chunks_exact_mut(n_in).zip(context.chunks_exact(cw.max(1))) {
            for (&c, &v) in s.context.iter().zip(ctx) {
                row[c] = v;
            }
        }
        let mut failed = None;
        let stats = integrate(&s.method, x, &mut scratch.ws, |t, state, out| {
            for (row, st) in input.chunks_exact_mut(n_in).zip(state.chunks_exact(dim)) {
                for (&c, &v) in s.state.iter().zip(st) {
                    row[c] = v;
                }
                row[s.time] = t;
            }
            if let Err(e) = self.model.run_on(self.tier, input, &[], out) {
                out.fill(f32::NAN);
                failed.get_or_insert(e);
            }
        });
        match failed {
            Some(e) => Err(Error::Model(e)),
            None => stats,
        }
    }

    /// Samples: integrates the base noise `z` (row-major `rows × dim`) with `context`
    /// (`rows × context_width`) from `t = 0` to `t = 1` and returns `x` at `t = 1`.
    pub fn sample(&self, context: &[f32], z: &[f32]) -> Result<(Vec<f32>, Stats), Error> {
        let mut x = z.to_vec();
        let rows = x.len() / self.dim().max(1);
        let mut scratch = Scratch::new(self, rows)?;
        let stats = self.integrate(context, &mut x, &mut scratch)?;
        Ok((x, stats))
    }
}

/// Samples a compiled vector field: integrates the base noise `z` (row-major `rows × dim`, the
/// state at `t = 0`) with `context` (row-major `rows × context width`) to `t = 1` as `settings`
/// say, on the active ISA tier, and returns the state at `t = 1`. For another method, e.g. fewer
/// steps, pass `Settings { method, ..settings }`; see [`VectorField`] for more control.
pub fn sample(model: &dyn Model, settings: &Settings, context: &[f32], z: &[f32]) -> Result<Vec<f32>, Error> {
    VectorField::new(model, *settings)?
        .sample(context, z)
        .map(|(x, _)| x)
}

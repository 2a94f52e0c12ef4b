//! Rust code generation: `quote!` → `syn::parse2` → `prettyplease`.
//!
//! Per model, [`model_file`] emits a unit struct implementing the runtime's `Model` trait whose
//! `run_unchecked` walks the batch in tiles of rows through stack buffers (1 row for a single
//! row, up to 16 for small batches, `TILE` otherwise: the buffers are zeroed once per call, so
//! their size follows the batch), calling one runtime kernel per step. Weights are not in the code: they are in a little-endian blob file
//! (`<name>.weights.bin`, see [`blob_bytes`]) included with `include_bytes!` into an aligned
//! static, each array addressed by a `const` range. [`registry_file`] emits the module tree,
//! re-exports and the `MODELS` registry of a set of models.
//!
//! Floats are written as exact shortest literals, or `f32::from_bits` for non-finite values and
//! `-0.0` (quote cannot write those).

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Activation, Distribution};
use crate::passes::plan::{Buf, FlowStep, Program, Step};

mod flow;

/// `tracking_resolution` → `TrackingResolution`.
pub fn camel_name(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `tracking_resolution` → `TRACKING_RESOLUTION`.
pub fn upper_name(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// The blob's bytes (little-endian f32).
pub fn blob_bytes(p: &Program) -> Vec<u8> {
    p.blob.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// File name of a model's weight blob.
pub fn blob_file_name(name: &str) -> String {
    format!("{name}.weights.bin")
}

fn f32_tokens(v: f32) -> TokenStream {
    if v.is_finite() && !(v == 0.0 && v.is_sign_negative()) {
        let lit = Literal::f32_suffixed(v.abs());
        if v < 0.0 {
            quote!(-#lit)
        } else {
            quote!(#lit)
        }
    } else {
        let bits = Literal::u32_suffixed(v.to_bits());
        let bits: TokenStream = format!("0x{:08x}u32", v.to_bits())
            .parse()
            .unwrap_or_else(|_| quote!(#bits));
        quote!(f32::from_bits(#bits))
    }
}

fn f64_tokens(v: f64) -> TokenStream {
    if v.is_finite() && !(v == 0.0 && v.is_sign_negative()) {
        let lit = Literal::f64_suffixed(v.abs());
        if v < 0.0 {
            quote!(-#lit)
        } else {
            quote!(#lit)
        }
    } else {
        let bits: TokenStream = format!("0x{:016x}u64", v.to_bits())
            .parse()
            .unwrap_or_default();
        quote!(f64::from_bits(#bits))
    }
}

fn usize_lit(v: usize) -> Literal {
    Literal::usize_unsuffixed(v)
}

fn act_tokens(rt: &TokenStream, a: Activation) -> TokenStream {
    let path = quote!(#rt::act::Activation);
    match a {
        Activation::Linear => quote!(#path::Linear),
        Activation::Relu => quote!(#path::Relu),
        Activation::LeakyRelu { alpha } => {
            let alpha = f32_tokens(alpha);
            quote!(#path::LeakyRelu { alpha: #alpha })
        }
        Activation::Elu { alpha } => {
            let alpha = f32_tokens(alpha);
            quote!(#path::Elu { alpha: #alpha })
        }
        Activation::Selu { alpha, scale } => {
            let (alpha, scale) = (f32_tokens(alpha), f32_tokens(scale));
            quote!(#path::Selu { alpha: #alpha, scale: #scale })
        }
        Activation::Silu => quote!(#path::Silu),
        Activation::GeluErf => quote!(#path::GeluErf),
        Activation::GeluTanh => quote!(#path::GeluTanh),
        Activation::Tanh => quote!(#path::Tanh),
        Activation::Sigmoid => quote!(#path::Sigmoid),
        Activation::Softplus { beta, threshold } => {
            let (beta, threshold) = (f32_tokens(beta), f32_tokens(threshold));
            quote!(#path::Softplus { beta: #beta, threshold: #threshold })
        }
        Activation::Softmax => quote!(#path::Softmax),
    }
}

/// `pub const ODE`: a vector field's `ode` section as `runtime::ode::Settings`.
fn ode_tokens(rt: &TokenStream, ode: &crate::passes::plan::Ode) -> TokenStream {
    use crate::ir::ode::Method;
    let m = quote!(#rt::ode::Method);
    let fixed = |variant: &str, steps: usize| {
        let v = format_ident!("{}", variant);
        let n = usize_lit(steps);
        (quote!(#m::#v { steps: #n }), format!("{steps} steps"))
    };
    let (method, how) = match ode.method {
        Method::Euler { steps } => fixed("Euler", steps),
        Method::Midpoint { steps } => fixed("Midpoint", steps),
        Method::Rk4 { steps } => fixed("Rk4", steps),
        Method::Rk4ThreeEighths { steps } => fixed("Rk4ThreeEighths", steps),
        Method::Dopri5 { rtol, atol } => {
            let (r, a) = (f64_tokens(rtol), f64_tokens(atol));
            (
                quote!(#m::Dopri5(#rt::ode::Dopri5Options { rtol: #r, atol: #a, ..#rt::ode::Dopri5Options::DEFAULT })),
                format!("rtol {rtol:e}, atol {atol:e}"),
            )
        }
    };
    let lits = |v: &[usize]| v.iter().map(|&i| usize_lit(i)).collect::<Vec<_>>();
    let (state, context) = (lits(&ode.columns.state), lits(&ode.columns.context));
    let time = usize_lit(ode.columns.time);
    let doc = format!(
        " How this vector field is integrated (the spec's `ode` section): `{}`, {how}, from t = 0 to 1. \
         Integrate with `runtime::ode::sample`; replace `method` to integrate differently.",
        ode.method.name()
    );
    quote! {
        #[doc = #doc]
        pub const ODE: #rt::ode::Settings = #rt::ode::Settings {
            method: #method,
            state: &[#(#state),*],
            time: #time,
            context: &[#(#context),*],
        };
    }
}

/// Pretty-prints tokens, prefixed by `header` lines. Tokens built here always parse; should they
/// not, the raw token text is returned so that rustc reports the problem.
fn pretty(header: &str, tokens: TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => format!("{header}{}", prettyplease::unparse(&file)),
        Err(_) => format!("{header}{tokens}\n"),
    }
}

/// The `@generated` header line.
pub fn header(source: &str) -> String {
    format!("// @generated by flashc from {source}. Do not edit.\n")
}

/// The generated Rust source of one model. `rt` is the path of the runtime crate (e.g.
/// `::runtime`).
pub fn model_file(p: &Program, rt: &TokenStream) -> String {
    model_file_with(p, rt, false)
}

/// [`model_file`], plus, when `ptx` is set, the items that wire the model to its PTX
/// (`<name>.ptx`, written next to the Rust file): `PTX`, `PTX_ENTRY` and `ptx_weights()`.
pub fn model_file_with(p: &Program, rt: &TokenStream, ptx: bool) -> String {
    model_file_impl(p, rt, if ptx { Ptx::Compiled } else { Ptx::None })
}

/// [`model_file`] of a model the PTX backend does not support, in a build that compiles PTX:
/// the generated module has `PTX_UNSUPPORTED`, the backend's error, instead of `PTX`.
pub fn model_file_without_ptx(p: &Program, rt: &TokenStream, reason: &str) -> String {
    model_file_impl(p, rt, Ptx::Unsupported(reason))
}

/// The PTX items of a generated model.
enum Ptx<'a> {
    None,
    Compiled,
    Unsupported(&'a str),
}

fn model_file_impl(p: &Program, rt: &TokenStream, ptx: Ptx) -> String {
    let camel = format_ident!("{}", camel_name(&p.name));
    let upper = format_ident!("{}", upper_name(&p.name));
    let name = &p.name;
    let source = &p.source;
    let mut doc_lines = vec![format!(
        " Model `{name}`, compiled by flashc from `{source}`."
    )];
    if !p.description.is_empty() {
        doc_lines.push(String::new());
        doc_lines.extend(p.description.lines().map(|l| format!(" {l}")));
    }
    let n_inputs = usize_lit(p.input_columns.len());
    let n_noise = usize_lit(p.n_noise);
    let n_outputs = usize_lit(p.output_columns.len());
    let tile = usize_lit(p.tile);
    let in_cols = &p.input_columns;
    let out_cols = &p.output_columns;
    let noise = match p.noise {
        None => quote!(#rt::model::Noise::None),
        Some(Distribution::Normal) => quote!(#rt::model::Noise::Normal),
        Some(Distribution::Uniform) => quote!(#rt::model::Noise::Uniform),
    };

    let has_weights = !p.arrays.is_empty();
    let blob_file = blob_file_name(name);
    let blob = has_weights.then(|| {
        quote! {
            /// Every weight of the model, little-endian f32, 64-byte aligned.
            static BLOB: &#rt::weights::Aligned<[u8]> = &#rt::weights::Aligned(*include_bytes!(#blob_file));
        }
    });
    let arrays = p.arrays.iter().enumerate().map(|(i, a)| {
        let id = format_ident!("W{}", i);
        let (start, end) = (usize_lit(a.offset), usize_lit(a.offset + a.len));
        let doc = format!(
            " {} (floats {}..{} of the blob).",
            a.what,
            a.offset,
            a.offset + a.len
        );
        quote! {
            #[doc = #doc]
            const #id: ::core::ops::Range<usize> = #start..#end;
        }
    });
    let w = |i: usize| {
        let id = format_ident!("W{}", i);
        quote!(&w[#id])
    };
    let buf = |b: &Buf| {
        let id = format_ident!("buf{}", b.slot);
        let stride = usize_lit(b.stride);
        (id, stride)
    };

    let mut consts = Vec::new();
    let mut setup = Vec::new();
    let mut body = Vec::new();
    let mut uses_tier = false;
    for (i, step) in p.steps.iter().enumerate() {
        let cols_const = |cols: &[u32], consts: &mut Vec<TokenStream>| {
            let id = format_ident!("COLS{}", i);
            let cols = cols.iter().map(|&c| Literal::u32_unsuffixed(c));
            consts.push(quote!(const #id: &[u32] = &[#(#cols),*];));
            id
        };
        match step {
            Step::LoadInput { col0, width, dst } => {
                let (d, ds) = buf(dst);
                let (c0, wd) = (usize_lit(*col0), usize_lit(*width));
                body.push(
                    quote!(#rt::prep::copy_columns(n, x, N_INPUTS, #c0, #wd, &mut #d[..], #ds, 0);),
                );
            }
            Step::LoadNoise { width, dst } => {
                let (d, ds) = buf(dst);
                let wd = usize_lit(*width);
                body.push(
                    quote!(#rt::prep::copy_columns(n, z, N_NOISE, 0, #wd, &mut #d[..], #ds, 0);),
                );
            }
            Step::Copy {
                src,
                src_col0,
                width,
                dst,
                dst_col0,
            } => {
                let ((s, ss), (d, ds)) = (buf(src), buf(dst));
                let (sc, wd, dc) = (
                    usize_lit(*src_col0),
                    usize_lit(*width),
                    usize_lit(*dst_col0),
                );
                body.push(quote!(#rt::prep::copy_columns(n, &#s[..], #ss, #sc, #wd, &mut #d[..], #ds, #dc);));
            }
            Step::Dense {
                node: _,
                x,
                y,
                n_in,
                n_out,
                kernel,
                bias,
                act,
                residual,
            } => {
                uses_tier = true;
                let layer = format_ident!("dense{}", i);
                let ((xb, xs), (yb, ys)) = (buf(x), buf(y));
                let (ni, no) = (usize_lit(*n_in), usize_lit(*n_out));
                let (k, b) = (w(*kernel), w(*bias));
                let act = act_tokens(rt, *act);
                let (kind, r) = match residual {
                    None => (quote!(None), quote!(None)),
                    Some((rb, before)) => {
                        let (rb, rs) = buf(rb);
                        let kind = if *before {
                            quote!(BeforeAct)
                        } else {
                            quote!(AfterAct)
                        };
                        (kind, quote!(Some((&#rb[..], #rs))))
                    }
                };
                setup.push(quote! {
                    let #layer = #rt::dense::Dense { n_in: #ni, n_out: #no, kernel: #k, bias: #b, act: #act, residual: #rt::dense::Residual::#kind };
                });
                body.push(quote!(#rt::dense::dense(tier, &#layer, n, &#xb[..], #xs, &mut #yb[..], #ys, #r);));
            }
            Step::Act {
                data, width, act, ..
            } => {
                uses_tier = true;
                let (d, ds) = buf(data);
                let (wd, act) = (usize_lit(*width), act_tokens(rt, *act));
                body.push(quote!(#rt::act::apply(tier, #act, n, #wd, &mut #d[..], #ds);));
            }
            Step::Affine {
                data,
                cols,
                mul,
                add,
                ..
            } => {
                let (d, ds) = buf(data);
                let c = cols_const(cols, &mut consts);
                let (m, a) = (w(*mul), w(*add));
                body.push(quote!(#rt::prep::affine_columns(n, &mut #d[..], #ds, #c, #m, #a);));
            }
            Step::ScaleShift {
                data,
                width,
                mul,
                add,
                ..
            } => {
                let (d, ds) = buf(data);
                let (wd, m, a) = (usize_lit(*width), w(*mul), w(*add));
                body.push(quote!(#rt::prep::scale_shift(n, #wd, &mut #d[..], #ds, #m, #a);));
            }
            Step::Quantile {
                node: _,
                data,
                cols,
                n_quantiles,
                quantiles,
                references,
                normal,
                bounds_threshold,
                inverse,
            } => {
                let (d, ds) = buf(data);
                let c = cols_const(cols, &mut consts);
                let q = format_ident!("quantile{}", i);
                let (nq, qs, rs, bt) = (
                    usize_lit(*n_quantiles),
                    w(*quantiles),
                    w(*references),
                    f64_tokens(*bounds_threshold),
                );
                setup.push(quote! {
                    let #q = #rt::prep::Quantile { n_quantiles: #nq, quantiles: #qs, references: #rs, normal: #normal, bounds_threshold: #bt };
                });
                let f = if *inverse {
                    quote!(quantile_inverse)
                } else {
                    quote!(quantile_forward)
                };
                body.push(quote!(#rt::prep::#f(&#q, n, &mut #d[..], #ds, #c);));
            }
            Step::Logit {
                data,
                cols,
                scale,
                inverse,
                ..
            } => {
                let (d, ds) = buf(data);
                let c = cols_const(cols, &mut consts);
                let s = f32_tokens(*scale);
                let f = if *inverse {
                    quote!(logit_inverse)
                } else {
                    quote!(logit_forward)
                };
                body.push(quote!(#rt::prep::#f(#s, n, &mut #d[..], #ds, #c);));
            }
            Step::MatMul {
                x,
                y,
                n: nn,
                m,
                sub,
                ..
            } => {
                let ((xb, xs), (yb, ys)) = (buf(x), buf(y));
                let (nn, mm) = (usize_lit(*nn), w(*m));
                let sub = match sub {
                    Some(s) => {
                        let s = w(*s);
                        quote!(Some(#s))
                    }
                    None => quote!(None),
                };
                body.push(quote!(#rt::prep::matmul_small(n, &#xb[..], #xs, #nn, #mm, #sub, &mut #yb[..], #ys);));
            }
            Step::LayerNorm {
                data,
                width,
                gamma,
                beta,
                eps,
                ..
            } => {
                let (d, ds) = buf(data);
                let opt = |o: &Option<usize>| match o {
                    Some(i) => {
                        let t = w(*i);
                        quote!(Some(#t))
                    }
                    None => quote!(None),
                };
                let (wd, g, b, e) = (usize_lit(*width), opt(gamma), opt(beta), f32_tokens(*eps));
                body.push(quote!(#rt::prep::layernorm(n, #wd, &mut #d[..], #ds, #g, #b, #e);));
            }
            Step::Add { a, b, y, width, .. } => {
                let ((ab, as_), (bb, bs), (yb, ys)) = (buf(a), buf(b), buf(y));
                let wd = usize_lit(*width);
                body.push(quote!(#rt::prep::add(n, #wd, &#ab[..], #as_, &#bb[..], #bs, &mut #yb[..], #ys);));
            }
            Step::Mul { a, b, y, width, .. } => {
                let ((ab, as_), (bb, bs), (yb, ys)) = (buf(a), buf(b), buf(y));
                let wd = usize_lit(*width);
                body.push(quote!(#rt::prep::mul(n, #wd, &#ab[..], #as_, &#bb[..], #bs, &mut #yb[..], #ys);));
            }
            Step::Store { src, width, col0 } => {
                let (s, ss) = buf(src);
                let (wd, c0) = (usize_lit(*width), usize_lit(*col0));
                body.push(quote!(#rt::prep::copy_columns(n, &#s[..], #ss, 0, #wd, &mut *y, N_OUTPUTS, #c0);));
            }
            Step::Flow { step, .. } => {
                uses_tier |= matches!(step, FlowStep::Maf { .. } | FlowStep::Coupling { .. });
                flow::step(rt, i, step, &w, &buf, &mut setup, &mut consts, &mut body);
            }
        }
    }
    let buffers = p.slots.iter().enumerate().map(|(i, &size)| {
        let id = format_ident!("buf{}", i);
        let size = usize_lit(size);
        let rows_id = format_ident!("buf{}_rows", i);
        quote! {
            let mut #rows_id = [[0.0f32; #size]; T];
            let #id = #rows_id.as_flattened_mut();
        }
    });
    let flow_scratch = (p.flow_scratch > 0).then(|| {
        let n = usize_lit(flow::scratch_per_row(p.flow_scratch));
        quote! {
            let mut flow_rows = [[0.0f32; #n]; T];
            let flow_scratch = flow_rows.as_flattened_mut();
        }
    });
    let weights_let = has_weights.then(|| quote!(let w = #rt::weights::f32s(BLOB);));
    let noise_const = (p.n_noise > 0).then(|| quote!(const N_NOISE: usize = #n_noise;));
    let noise_slice =
        (p.n_noise > 0).then(|| quote!(let z = &noise[row0 * N_NOISE..(row0 + n) * N_NOISE];));
    let noise_param = if p.n_noise > 0 {
        quote!(noise)
    } else {
        quote!(_noise)
    };
    let tier_param = if uses_tier {
        quote!(tier)
    } else {
        quote!(_tier)
    };
    let inputs_used = p.steps.iter().any(|s| matches!(s, Step::LoadInput { .. }));
    let inputs_param = if inputs_used {
        quote!(inputs)
    } else {
        quote!(_inputs)
    };
    let inputs_slice =
        inputs_used.then(|| quote!(let x = &inputs[row0 * N_INPUTS..(row0 + n) * N_INPUTS];));
    let n_inputs_const = inputs_used.then(|| quote!(const N_INPUTS: usize = #n_inputs;));
    let info_inputs = usize_lit(p.input_columns.len());
    let macs = Literal::u64_unsuffixed(p.macs_per_row);
    // Batches of 2..=SMALL rows use SMALL-row tiles; larger ones TILE-row tiles.
    let small_rows = p.tile.min(16);
    let small_arm = (small_rows >= 2).then(|| {
        let small = usize_lit(small_rows);
        quote!(2..=#small => tiles::<#small>(tier, rows, inputs, noise, out),)
    });

    let ptx_unsupported = match ptx {
        Ptx::Unsupported(reason) => Some(quote! {
            /// Why this model has no PTX: the PTX backend's error (run it on the CPU).
            pub const PTX_UNSUPPORTED: &str = #reason;
        }),
        _ => None,
    };
    let ptx_items = matches!(ptx, Ptx::Compiled).then(|| {
        let file = super::ptx::ptx_file_name(name);
        let entry = super::ptx::entry_name(name);
        let weights = if has_weights {
            quote!(&BLOB.0)
        } else {
            quote!(&[])
        };
        quote! {
            /// The model compiled to PTX (see `docs/cuda.md`); its kernel is [`PTX_ENTRY`].
            pub const PTX: &str = include_str!(#file);
            /// Name of the PTX kernel entry.
            pub const PTX_ENTRY: &str = #entry;
            /// The weight blob the PTX kernel reads (little-endian f32).
            pub fn ptx_weights() -> &'static [u8] {
                #weights
            }
        }
    });

    let ode_items = p.ode.as_ref().map(|o| ode_tokens(rt, o));

    let tokens = quote! {
        #(#[doc = #doc_lines])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct #camel;

        /// The model's instance.
        pub static #upper: #camel = #camel;

        #blob
        #(#arrays)*
        #ptx_items
        #ode_items
        #ptx_unsupported

        /// Rows per tile: each stack buffer stays within 64 KiB.
        const TILE: usize = #tile;
        #n_inputs_const
        #noise_const
        const N_OUTPUTS: usize = #n_outputs;
        #(#consts)*

        static INFO: #rt::model::ModelInfo = #rt::model::ModelInfo {
            name: #name,
            source: #source,
            n_inputs: #info_inputs,
            n_noise: #n_noise,
            n_outputs: N_OUTPUTS,
            input_columns: &[#(#in_cols),*],
            output_columns: &[#(#out_cols),*],
            noise: #noise,
            macs_per_row: #macs,
        };

        impl #rt::model::Model for #camel {
            fn info(&self) -> &'static #rt::model::ModelInfo {
                &INFO
            }

            fn run_unchecked(&self, tier: #rt::isa::Tier, rows: usize, inputs: &[f32], noise: &[f32], out: &mut [f32]) {
                // The stack tile is sized to the batch: zeroing 64-row buffers for a single row
                // would cost more than computing the row.
                match rows {
                    0..=1 => tiles::<1>(tier, rows, inputs, noise, out),
                    #small_arm
                    _ => tiles::<TILE>(tier, rows, inputs, noise, out),
                }
            }
        }

        /// Runs `rows` rows in tiles of `T` rows through stack buffers, one kernel call per step.
        fn tiles<const T: usize>(#tier_param: #rt::isa::Tier, rows: usize, #inputs_param: &[f32], #noise_param: &[f32], out: &mut [f32]) {
                #weights_let
                #(#setup)*
                #(#buffers)*
                #flow_scratch
                let mut row0 = 0usize;
                while row0 < rows {
                    let n = ::core::cmp::min(T, rows - row0);
                    #inputs_slice
                    #noise_slice
                    let y = &mut out[row0 * N_OUTPUTS..(row0 + n) * N_OUTPUTS];
                    #(#body)*
                    row0 += n;
                }
        }
    };
    pretty(&header(source), tokens)
}

/// One model in a registry: its name and how to include its generated file.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    /// Model name.
    pub name: String,
    /// `Some(file name)`: include from `OUT_DIR`; `None`: from `path`.
    pub out_dir_file: Option<String>,
    /// Absolute path of the generated file (used when not in `OUT_DIR`).
    pub path: String,
    /// The model has an `ode` section (its module defines `ODE`).
    pub ode: bool,
    /// In a registry with PTX: whether this model has PTX (else its module has
    /// `PTX_UNSUPPORTED`).
    pub has_ptx: bool,
}

/// `flashc_models.rs`: one module per model, re-exports, `MODELS` (sorted by name) and `by_name`.
pub fn registry_file(entries: &[RegistryEntry], rt: &TokenStream) -> String {
    registry_file_with(entries, rt, false)
}

/// [`registry_file`], plus, when `ptx` is set, `ptx_by_name` (every model's PTX, kernel entry
/// and weight blob, for the CUDA backend).
pub fn registry_file_with(entries: &[RegistryEntry], rt: &TokenStream, ptx: bool) -> String {
    let mut entries: Vec<&RegistryEntry> = entries.iter().collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mods = entries.iter().map(|e| {
        let m = format_ident!("{}", e.name);
        let camel = format_ident!("{}", camel_name(&e.name));
        let upper = format_ident!("{}", upper_name(&e.name));
        let include = match &e.out_dir_file {
            Some(f) => {
                let f = format!("/{f}");
                quote!(include!(concat!(env!("OUT_DIR"), #f));)
            }
            None => {
                let p = &e.path;
                quote!(include!(#p);)
            }
        };
        let doc = format!(" Model `{}`.", e.name);
        quote! {
            #[doc = #doc]
            pub mod #m {
                #include
            }
            pub use #m::{#camel, #upper};
        }
    });
    let statics = entries.iter().map(|e| {
        let m = format_ident!("{}", e.name);
        let upper = format_ident!("{}", upper_name(&e.name));
        quote!(&#m::#upper)
    });
    let ptx_fn = ptx.then(|| {
        let arms = entries.iter().map(|e| {
            let m = format_ident!("{}", e.name);
            let name = &e.name;
            if e.has_ptx {
                quote!(#name => Ok((#m::PTX, #m::PTX_ENTRY, #m::ptx_weights())),)
            } else {
                quote!(#name => Err(#m::PTX_UNSUPPORTED.to_owned()),)
            }
        });
        quote! {
            /// The PTX of the model named `name`: `(ptx text, kernel entry, weight blob)`; or why
            /// there is none (no such model, or the PTX backend's error for it).
            pub fn ptx_by_name(name: &str) -> Result<(&'static str, &'static str, &'static [u8]), String> {
                match name {
                    #(#arms)*
                    _ => Err(format!("no compiled model is named \"{name}\"")),
                }
            }
        }
    });
    let ode_arms: Vec<TokenStream> = entries
        .iter()
        .filter(|e| e.ode)
        .map(|e| {
            let m = format_ident!("{}", e.name);
            let name = &e.name;
            quote!(#name => Some(&#m::ODE),)
        })
        .collect();
    let ode_body = if ode_arms.is_empty() {
        quote! {
            let _ = name;
            None
        }
    } else {
        quote! {
            match name {
                #(#ode_arms)*
                _ => None,
            }
        }
    };
    let tokens = quote! {
        #(#mods)*
        #ptx_fn

        /// How the model named `name` is integrated, when it is a flow-matching vector field (its
        /// spec has an `ode` section); see `runtime::ode::sample`.
        pub fn ode_by_name(name: &str) -> Option<&'static #rt::ode::Settings> {
            #ode_body
        }

        /// Every compiled model, sorted by name.
        pub static MODELS: &[&dyn #rt::model::Model] = &[#(#statics),*];

        /// The compiled model named `name` (its spec name), if any.
        pub fn by_name(name: &str) -> Option<&'static dyn #rt::model::Model> {
            MODELS.iter().copied().find(|m| m.info().name == name)
        }
    };
    pretty(
        "// @generated by flashc: the registry of compiled models. Do not edit.\n",
        tokens,
    )
}

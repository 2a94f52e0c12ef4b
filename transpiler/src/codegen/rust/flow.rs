//! Rust for the flow steps: each MADE becomes a `runtime::flow::Made` built once per call from
//! slices of the weight blob, each step one runtime call.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::{act_tokens, f32_tokens, usize_lit};
use crate::passes::plan::flow::{
    ElementwisePlan, FlowStep, MadeOpPlan, MadePlan, NetPlan, ScalePlan, ShiftPlan,
    SplineStylePlan, SLACK,
};
use crate::passes::plan::Buf;

/// Scratch floats per row the generated code allocates for `per_row` (the kernel's slack included).
pub fn scratch_per_row(per_row: usize) -> usize {
    per_row + SLACK
}

fn made_tokens(rt: &TokenStream, m: &MadePlan, w: &dyn Fn(usize) -> TokenStream) -> TokenStream {
    let fl = quote!(#rt::flow);
    let (d, c) = (usize_lit(m.features), usize_lit(m.context));
    let order = match &m.order {
        Some(o) => {
            let o = o.iter().map(|&x| Literal::u32_unsuffixed(x));
            quote!(Some(&[#(#o),*]))
        }
        None => quote!(None),
    };
    let values = m.values.iter().map(|b| {
        let b = b.iter().map(|&x| Literal::u32_unsuffixed(x));
        quote!(#fl::Value { bounds: &[#(#b),*] })
    });
    let ctx = m.context_layers.iter().map(|c| {
        let (dst, weight, bias, act) = (
            usize_lit(c.dst),
            w(c.weight),
            w(c.bias),
            act_tokens(rt, c.act),
        );
        quote!(#fl::ContextLayer { dst: #dst, weight: #weight, bias: #bias, act: #act })
    });
    let ops = m.ops.iter().map(|op| match op {
        MadeOpPlan::Masked { src, dst, weight, bias, add } => {
            let src = match src {
                None => quote!(#fl::Src::Input),
                Some(v) => {
                    let v = usize_lit(*v);
                    quote!(#fl::Src::Value(#v))
                }
            };
            let add = match add {
                None => quote!(None),
                Some(a) => {
                    let a = usize_lit(*a);
                    quote!(Some(#a))
                }
            };
            let (dst, weight, bias) = (usize_lit(*dst), w(*weight), w(*bias));
            quote!(#fl::MadeOp::Masked { src: #src, dst: #dst, weight: #weight, bias: #bias, add: #add })
        }
        MadeOpPlan::Map { src, dst, affine, act } => {
            let affine = match affine {
                None => quote!(None),
                Some((m, a)) => {
                    let (m, a) = (w(*m), w(*a));
                    quote!(Some((#m, #a)))
                }
            };
            let (src, dst, act) = (usize_lit(*src), usize_lit(*dst), act_tokens(rt, *act));
            quote!(#fl::MadeOp::Map { src: #src, dst: #dst, affine: #affine, act: #act })
        }
    });
    let (os, op, ow, ob) = (
        usize_lit(m.output.0),
        usize_lit(m.output.1),
        w(m.output.2),
        w(m.output.3),
    );
    quote! {
        #fl::Made {
            features: #d,
            context: #c,
            order: #order,
            values: &[#(#values),*],
            context_layers: &[#(#ctx),*],
            ops: &[#(#ops),*],
            output: #fl::Output { src: #os, params: #op, weight: #ow, bias: #ob },
        }
    }
}

fn net_tokens(rt: &TokenStream, n: &NetPlan, w: &dyn Fn(usize) -> TokenStream) -> TokenStream {
    let fl = quote!(#rt::flow);
    let dense = |(wt, b): (usize, usize)| {
        let (wt, b) = (w(wt), w(b));
        quote!(#fl::Dense { weight: #wt, bias: #b })
    };
    let blocks = n.blocks.iter().map(|b| {
        let norms = match b.norms {
            Some([(m0, a0), (m1, a1)]) => {
                let (m0, a0, m1, a1) = (w(m0), w(a0), w(m1), w(a1));
                quote!(Some([(#m0, #a0), (#m1, #a1)]))
            }
            None => quote!(None),
        };
        let (l0, l1) = (dense(b.linear[0]), dense(b.linear[1]));
        let context = match b.context {
            Some(c) => {
                let c = dense(c);
                quote!(Some(#c))
            }
            None => quote!(None),
        };
        quote!(#fl::NetBlock { norms: #norms, linear: [#l0, #l1], context: #context })
    });
    let (d, c, h) = (
        usize_lit(n.features),
        usize_lit(n.context),
        usize_lit(n.hidden),
    );
    let id = n.identity.iter().map(|&x| Literal::u32_unsuffixed(x));
    let tr = n.transform.iter().map(|&x| Literal::u32_unsuffixed(x));
    let act = act_tokens(rt, n.activation);
    let (initial, fin) = (dense(n.initial), dense(n.final_layer));
    quote! {
        #fl::Coupling {
            features: #d,
            context: #c,
            identity: &[#(#id),*],
            transform: &[#(#tr),*],
            hidden: #h,
            activation: #act,
            initial: #initial,
            blocks: &[#(#blocks),*],
            final_layer: #fin,
        }
    }
}

/// `Some((a, b))` / `None` of two f32 constants.
fn pair_tokens(p: Option<(f32, f32)>) -> TokenStream {
    match p {
        Some((a, b)) => {
            let (a, b) = (f32_tokens(a), f32_tokens(b));
            quote!(Some((#a, #b)))
        }
        None => quote!(None),
    }
}

/// A `runtime::flow::Shift` (the constant `Shift::NONE` when the shift is used as it is).
fn shift_tokens(fl: &TokenStream, s: &ShiftPlan) -> TokenStream {
    if s.offset == 0.0 && s.clamp.is_none() {
        return quote!(#fl::Shift::NONE);
    }
    let (o, c, ci) = (f32_tokens(s.offset), pair_tokens(s.clamp), s.clamp_inverse);
    quote!(#fl::Shift { offset: #o, clamp: #c, clamp_inverse: #ci })
}

/// The `runtime::flow::Elementwise` constant of step `i`: its name and value.
fn elementwise_tokens(
    fl: &TokenStream,
    i: usize,
    elementwise: &ElementwisePlan,
) -> (Ident, TokenStream) {
    match elementwise {
        ElementwisePlan::Affine {
            scale,
            scale_param,
            clamp,
            shift,
        } => {
            let scale = match *scale {
                ScalePlan::Softplus { threshold, eps } => {
                    let (th, e) = (f32_tokens(threshold), f32_tokens(eps));
                    quote!(#fl::Scale::Softplus { threshold: #th, eps: #e })
                }
                ScalePlan::SoftClipExp { bound } => {
                    let b = f32_tokens(bound);
                    quote!(#fl::Scale::SoftClipExp { bound: #b })
                }
                ScalePlan::Sigmoid {
                    factor,
                    offset,
                    eps,
                } => {
                    let (f, o, e) = (f32_tokens(factor), f32_tokens(offset), f32_tokens(eps));
                    quote!(#fl::Scale::Sigmoid { factor: #f, offset: #o, eps: #e })
                }
                ScalePlan::Atan { factor } => {
                    let f = f32_tokens(factor);
                    quote!(#fl::Scale::Atan { factor: #f })
                }
            };
            let (sp, hp) = (usize_lit(*scale_param), usize_lit(1 - *scale_param));
            let clamp = pair_tokens(*clamp);
            let shift = shift_tokens(fl, shift);
            (
                format_ident!("AFFINE{}", i),
                quote!(#fl::Elementwise::Affine(#fl::Affine { scale: #scale, scale_param: #sp, shift_param: #hp, clamp: #clamp, shift: #shift })),
            )
        }
        ElementwisePlan::Spline(sp) => {
            let style = match sp.style {
                SplineStylePlan::Nflows {
                    min_width,
                    min_height,
                    min_derivative,
                    end_logit,
                } => {
                    let (a, b, c, e) = (
                        f32_tokens(min_width),
                        f32_tokens(min_height),
                        f32_tokens(min_derivative),
                        f32_tokens(end_logit),
                    );
                    quote!(#fl::SplineStyle::Nflows { min_width: #a, min_height: #b, min_derivative: #c, end_logit: #e })
                }
                SplineStylePlan::Zuko { ln_slope } => {
                    let l = f32_tokens(ln_slope);
                    quote!(#fl::SplineStyle::Zuko { ln_slope: #l })
                }
            };
            let (k, b, dv) = (
                usize_lit(sp.bins),
                f32_tokens(sp.bound),
                f32_tokens(sp.divisor),
            );
            (
                format_ident!("SPLINE{}", i),
                quote!(#fl::Elementwise::Spline(#fl::Spline { bins: #k, bound: #b, divisor: #dv, style: #style })),
            )
        }
    }
}

/// The buffers and direction of a MAF or coupling step.
struct Call<'a> {
    x: &'a Buf,
    ctx: &'a Option<Buf>,
    y: &'a Buf,
    logdet: &'a Option<Buf>,
    inverse: bool,
}

/// A MAF or coupling step: its program `(ident, value)` built once per call, its elementwise
/// transform as a constant, and the call of `runtime::flow::KERNEL` (`maf` or `coupling`, which
/// take the same arguments).
#[allow(clippy::too_many_arguments)]
fn transform_call(
    fl: &TokenStream,
    i: usize,
    (id, program): (Ident, TokenStream),
    kernel: Ident,
    elementwise: &ElementwisePlan,
    c: &Call,
    buf: &dyn Fn(&Buf) -> (Ident, Literal),
    setup: &mut Vec<TokenStream>,
    consts: &mut Vec<TokenStream>,
    body: &mut Vec<TokenStream>,
) {
    setup.push(quote!(let #id = #program;));
    let (t, value) = elementwise_tokens(fl, i, elementwise);
    consts.push(quote! {
        const #t: #fl::Elementwise = #value;
    });
    let ((xb, xs), (yb, ys)) = (buf(c.x), buf(c.y));
    let (cb, cs) = match c.ctx {
        Some(c) => {
            let (cb, cs) = buf(c);
            (quote!(&#cb[..]), quote!(#cs))
        }
        None => (quote!(&[]), quote!(0)),
    };
    let ld = match c.logdet {
        Some(l) => {
            let (lb, ls) = buf(l);
            quote!(Some((&mut #lb[..], #ls)))
        }
        None => quote!(None),
    };
    let inverse = c.inverse;
    body.push(quote!(#fl::#kernel(tier, &#id, &#t, #inverse, n, &#xb[..], #xs, #cb, #cs, &mut #yb[..], #ys, #ld, &mut *flow_scratch);));
}

/// Emits step `i` (a flow step): setup items into `setup`, constants into `consts`, the call into
/// `body`.
#[allow(clippy::too_many_arguments)]
pub fn step(
    rt: &TokenStream,
    i: usize,
    s: &FlowStep,
    w: &dyn Fn(usize) -> TokenStream,
    buf: &dyn Fn(&Buf) -> (Ident, Literal),
    setup: &mut Vec<TokenStream>,
    consts: &mut Vec<TokenStream>,
    body: &mut Vec<TokenStream>,
) {
    let fl = quote!(#rt::flow);
    match s {
        FlowStep::Gather { src, dst, idx } => {
            let ((s, ss), (d, ds)) = (buf(src), buf(dst));
            let id = format_ident!("COLS{}", i);
            let cols = idx.iter().map(|&c| Literal::u32_unsuffixed(c));
            consts.push(quote!(const #id: &[u32] = &[#(#cols),*];));
            body.push(quote!(#fl::gather_columns(n, &#s[..], #ss, #id, &mut #d[..], #ds);));
        }
        FlowStep::Fill { data, value } => {
            let (d, ds) = buf(data);
            let v = f32_tokens(*value);
            body.push(quote!(#fl::fill_column(n, &mut #d[..], #ds, #v);));
        }
        FlowStep::AddConst { data, value } => {
            let (d, ds) = buf(data);
            let v = f32_tokens(*value);
            body.push(quote!(#fl::add_to_column(n, &mut #d[..], #ds, #v);));
        }
        FlowStep::ScaleShift {
            data,
            width,
            mul,
            add,
        } => {
            let (d, ds) = buf(data);
            let (wd, m, a) = (usize_lit(*width), w(*mul), w(*add));
            body.push(quote!(#rt::prep::scale_shift(n, #wd, &mut #d[..], #ds, #m, #a);));
        }
        FlowStep::Maf {
            x,
            ctx,
            y,
            logdet,
            inverse,
            made,
            elementwise,
        } => {
            let program = (format_ident!("made{}", i), made_tokens(rt, made, w));
            let call = Call {
                x,
                ctx,
                y,
                logdet,
                inverse: *inverse,
            };
            transform_call(
                &fl,
                i,
                program,
                format_ident!("maf"),
                elementwise,
                &call,
                buf,
                setup,
                consts,
                body,
            );
        }
        FlowStep::Coupling {
            x,
            ctx,
            y,
            logdet,
            inverse,
            net,
            elementwise,
        } => {
            let program = (format_ident!("coupling{}", i), net_tokens(rt, net, w));
            let call = Call {
                x,
                ctx,
                y,
                logdet,
                inverse: *inverse,
            };
            transform_call(
                &fl,
                i,
                program,
                format_ident!("coupling"),
                elementwise,
                &call,
                buf,
                setup,
                consts,
                body,
            );
        }
        FlowStep::LuLinear {
            src,
            dst,
            width,
            lower,
            upper,
            bias,
            inverse,
        } => {
            let ((s, ss), (d, ds)) = (buf(src), buf(dst));
            let (wd, l, u, b) = (usize_lit(*width), w(*lower), w(*upper), w(*bias));
            body.push(quote!(#fl::lu_linear(n, #wd, #l, #u, #b, #inverse, &#s[..], #ss, &mut #d[..], #ds);));
        }
        FlowStep::NormalLogProb {
            z,
            width,
            log_z,
            logdet,
            y,
        } => {
            let ((zb, zs), (lb, ls), (yb, ys)) = (buf(z), buf(logdet), buf(y));
            let (wd, lz) = (usize_lit(*width), f32_tokens(*log_z));
            body.push(quote!(#fl::normal_log_prob(n, #wd, &#zb[..], #zs, #lz, &#lb[..], #ls, &mut #yb[..], #ys);));
        }
    }
}

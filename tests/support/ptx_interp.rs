//! A small interpreter of the PTX subset the PTX backend emits, so that the kernels' results
//! can be checked without a GPU: one block of threads at a time, run thread by thread between
//! barriers, with IEEE f32/f64 arithmetic (`mul_add` is the fused `fma.rn`) and the integer ops
//! of the in-kernel random numbers. Shared by `transpiler/tests/ptx.rs` and `tests/ptx_philox.rs`
//! (included with `#[path]`).
#![allow(dead_code)]

use std::collections::HashMap;

#[derive(Clone, Debug)]
enum Opd {
    Reg(usize),
    Imm(u64),
    Tid,
    Ctaid,
    Sym(String),
    Addr(Box<Opd>, i64),
    List(Vec<Opd>),
}

#[derive(Clone, Debug)]
struct Inst {
    pred: Option<(bool, usize)>,
    op: String,
    /// `op` split at the dots.
    parts: Vec<String>,
    args: Vec<Opd>,
}

#[derive(Debug, Default)]
struct Func {
    params: Vec<String>,
    ret: Option<String>,
    regs: HashMap<String, usize>,
    code: Vec<Inst>,
    labels: HashMap<String, usize>,
    locals: Vec<(String, usize)>,
    shared: Vec<(String, usize)>,
}

pub struct Module {
    funcs: HashMap<String, Func>,
    /// Global tables: name → (address, words).
    globals: HashMap<String, (u64, Vec<u32>)>,
    /// Kernel entries, in the order of the text.
    entries: Vec<String>,
}

const GLOBAL_TABLES: u64 = 0x1000_0000;
const SHARED: u64 = 0x2000_0000;
const LOCAL: u64 = 0x3000_0000;
pub const BUF: u64 = 0x4000_0000; // buffer k at BUF + k·0x1000_0000

fn parse_imm(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0f") {
        return u32::from_str_radix(h, 16).ok().map(|v| v as u64);
    }
    if let Some(h) = s.strip_prefix("0d") {
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    s.parse::<i64>().ok().map(|v| v as u64)
}

fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                cur.push(c)
            }
            '}' | ']' | ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

impl Func {
    fn reg(&mut self, name: &str) -> usize {
        let n = self.regs.len();
        *self.regs.entry(name.to_owned()).or_insert(n)
    }
    fn opd(&mut self, s: &str) -> Opd {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let (base, off) = match inner.split_once('+') {
                Some((b, o)) => (b, o.parse::<i64>().unwrap()),
                None => (inner, 0),
            };
            return Opd::Addr(Box::new(self.opd(base)), off);
        }
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            return Opd::List(split_args(inner).iter().map(|a| self.opd(a)).collect());
        }
        if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            return Opd::List(split_args(inner).iter().map(|a| self.opd(a)).collect());
        }
        match s {
            "%tid.x" => return Opd::Tid,
            "%ctaid.x" => return Opd::Ctaid,
            _ => {}
        }
        if s.starts_with('%') {
            return Opd::Reg(self.reg(s));
        }
        if let Some(v) = parse_imm(s) {
            return Opd::Imm(v);
        }
        Opd::Sym(s.to_owned())
    }
}

pub fn parse(text: &str) -> Module {
    let mut funcs = HashMap::new();
    let mut globals = HashMap::new();
    let mut entries = Vec::new();
    let mut next_global = GLOBAL_TABLES;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        if let Some(rest) = l.strip_prefix(".global .align 4 .u32 ") {
            let (name, rest) = rest.split_once('[').unwrap();
            let vals = rest.split_once('{').unwrap().1.trim_end_matches("};");
            let words: Vec<u32> = vals.split(',').map(|v| v.trim().parse().unwrap()).collect();
            globals.insert(name.to_owned(), (next_global, words));
            next_global += 0x10_0000;
            i += 1;
            continue;
        }
        let is_func = l.starts_with(".func");
        let is_entry = l.starts_with(".visible .entry");
        if !(is_func || is_entry) {
            i += 1;
            continue;
        }
        // Header up to the line "{".
        let mut header = String::new();
        while lines[i].trim() != "{" {
            header.push_str(lines[i].trim());
            header.push(' ');
            i += 1;
        }
        i += 1;
        let mut f = Func::default();
        let name;
        if is_func {
            let (ret, rest) = header.split_once(')').unwrap();
            f.ret = Some(ret.split_whitespace().last().unwrap().to_owned());
            let (n, params) = rest.split_once('(').unwrap();
            name = n.trim().to_owned();
            f.params = split_args(
                params
                    .trim()
                    .trim_end_matches(')')
                    .trim_end()
                    .trim_end_matches(')'),
            )
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_whitespace()
                    .last()
                    .unwrap()
                    .trim_end_matches(')')
                    .to_owned()
            })
            .collect();
        } else {
            let rest = header.trim_start_matches(".visible .entry").trim();
            let (n, params) = rest.split_once('(').unwrap();
            name = n.trim().to_owned();
            let params = params.split_once(')').unwrap().0;
            f.params = split_args(params)
                .iter()
                .map(|p| p.split_whitespace().last().unwrap().to_owned())
                .collect();
            entries.push(name.clone());
        }
        // Body until the closing "}" at column 0.
        while lines[i] != "}" {
            let l = lines[i].trim();
            i += 1;
            if l.is_empty()
                || l.starts_with("//")
                || l == "{"
                || l == "}"
                || l.starts_with(".reg")
                || l.starts_with(".param")
            {
                continue;
            }
            if let Some(rest) = l.strip_prefix(".local .align 16 .b8 ") {
                let (n, sz) = rest.trim_end_matches("];").split_once('[').unwrap();
                f.locals.push((n.to_owned(), sz.parse().unwrap()));
                continue;
            }
            if let Some(rest) = l.strip_prefix(".shared .align 16 .b8 ") {
                let (n, sz) = rest.trim_end_matches("];").split_once('[').unwrap();
                f.shared.push((n.to_owned(), sz.parse().unwrap()));
                continue;
            }
            if let Some(lbl) = l.strip_suffix(':') {
                f.labels.insert(lbl.to_owned(), f.code.len());
                continue;
            }
            let l = l.trim_end_matches(';');
            let (pred, l) = match l.strip_prefix('@') {
                Some(r) => {
                    let (p, rest) = r.split_once(' ').unwrap();
                    let (neg, p) = match p.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, p),
                    };
                    (Some((neg, f.reg(p))), rest)
                }
                None => (None, l),
            };
            let (op, rest) = l.split_once(' ').unwrap_or((l, ""));
            let args = split_args(rest).iter().map(|a| f.opd(a)).collect();
            let parts = op.split('.').map(str::to_owned).collect();
            f.code.push(Inst {
                pred,
                op: op.to_owned(),
                parts,
                args,
            });
        }
        i += 1;
        funcs.insert(name, f);
    }
    Module {
        funcs,
        globals,
        entries,
    }
}

/// Memory: global buffers and tables, one block's shared memory, one thread's locals.
struct Mem<'a> {
    bufs: &'a mut [Vec<u32>],
    globals: &'a HashMap<String, (u64, Vec<u32>)>,
    shared: &'a mut Vec<u32>,
}

impl Mem<'_> {
    fn word<'s>(&'s mut self, local: &'s mut [u32], a: u64) -> &'s mut u32 {
        assert_eq!(a & 3, 0, "unaligned address {a:#x}");
        if a >= BUF {
            let k = ((a - BUF) / 0x1000_0000) as usize;
            let off = ((a - BUF) % 0x1000_0000 / 4) as usize;
            let b = &mut self.bufs[k];
            assert!(
                off < b.len(),
                "buffer {k}: word {off} out of {} words",
                b.len()
            );
            return &mut b[off];
        }
        if a >= LOCAL {
            let off = ((a - LOCAL) / 4) as usize;
            assert!(off < local.len(), "local word {off} out of range");
            return &mut local[off];
        }
        if a >= SHARED {
            let off = ((a - SHARED) / 4) as usize;
            return &mut self.shared[off];
        }
        panic!("store or load at {a:#x}: not a buffer");
    }
    fn read(&mut self, local: &mut [u32], a: u64) -> u32 {
        if (GLOBAL_TABLES..SHARED).contains(&a) {
            for (base, w) in self.globals.values() {
                if a >= *base && a < base + 4 * w.len() as u64 {
                    return w[((a - base) / 4) as usize];
                }
            }
            panic!("global table read at {a:#x}");
        }
        *self.word(local, a)
    }
}

struct Thread {
    pc: usize,
    regs: Vec<u64>,
    params: HashMap<String, u64>,
    local: Vec<u32>,
    done: bool,
}

fn f32v(b: u64) -> f32 {
    f32::from_bits(b as u32)
}
fn f64v(b: u64) -> f64 {
    f64::from_bits(b)
}
fn fb(v: f32) -> u64 {
    v.to_bits() as u64
}
fn db(v: f64) -> u64 {
    v.to_bits()
}

impl Module {
    fn sym_addr(&self, f: &Func, s: &str) -> u64 {
        let mut off = 0u64;
        for (n, sz) in &f.locals {
            if n == s {
                return LOCAL + off;
            }
            off += *sz as u64;
        }
        let mut off = 0u64;
        for (n, sz) in &f.shared {
            if n == s {
                return SHARED + off;
            }
            off += *sz as u64;
        }
        if let Some((a, _)) = self.globals.get(s) {
            return *a;
        }
        panic!("unknown symbol {s}");
    }

    fn val(&self, f: &Func, t: &Thread, o: &Opd, tid: u32, cta: u32) -> u64 {
        match o {
            Opd::Reg(r) => t.regs[*r],
            Opd::Imm(v) => *v,
            Opd::Tid => tid as u64,
            Opd::Ctaid => cta as u64,
            Opd::Sym(s) => t
                .params
                .get(s)
                .copied()
                .unwrap_or_else(|| self.sym_addr(f, s)),
            _ => panic!("value of {o:?}"),
        }
    }

    fn addr(&self, f: &Func, t: &Thread, o: &Opd, tid: u32, cta: u32) -> u64 {
        match o {
            Opd::Addr(b, off) => self.val(f, t, b, tid, cta).wrapping_add(*off as u64),
            _ => panic!("address {o:?}"),
        }
    }

    /// Runs `t` in function `f` until a barrier (returns false) or the end (true).
    fn run(&self, f: &Func, t: &mut Thread, mem: &mut Mem, tid: u32, cta: u32) -> bool {
        loop {
            let inst = &f.code[t.pc];
            t.pc += 1;
            if let Some((neg, p)) = inst.pred {
                if (t.regs[p] != 0) == neg {
                    continue;
                }
            }
            let a = &inst.args;
            let v = |t: &Thread, i: usize| self.val(f, t, &a[i], tid, cta);
            let dst = |a: &[Opd]| match a[0] {
                Opd::Reg(r) => r,
                _ => panic!("{}: destination {:?}", inst.op, a[0]),
            };
            let parts = &inst.parts;
            let ty = parts.last().unwrap().as_str();
            let set = |t: &mut Thread, x: u64| {
                let r = dst(a);
                t.regs[r] = x;
            };
            match parts[0].as_str() {
                "ret" => return true,
                "bar" => return false,
                "bra" => {
                    let Opd::Sym(l) = &a[0] else { panic!() };
                    t.pc = f.labels[l];
                }
                "call" => {
                    let Opd::List(rets) = &a[0] else { panic!() };
                    let Opd::Sym(name) = &a[1] else { panic!() };
                    let Opd::List(args) = &a[2] else { panic!() };
                    let callee = &self.funcs[name];
                    let mut ct = Thread {
                        pc: 0,
                        regs: vec![0; callee.regs.len()],
                        params: HashMap::new(),
                        local: Vec::new(),
                        done: false,
                    };
                    for (p, arg) in callee.params.iter().zip(args) {
                        let Opd::Sym(s) = arg else { panic!() };
                        ct.params.insert(p.clone(), t.params[s]);
                    }
                    std::mem::swap(&mut ct.local, &mut t.local);
                    let finished = self.run(callee, &mut ct, mem, tid, cta);
                    assert!(finished, "barrier inside {name}");
                    std::mem::swap(&mut ct.local, &mut t.local);
                    let Opd::Sym(r) = &rets[0] else { panic!() };
                    t.params
                        .insert(r.clone(), ct.params[callee.ret.as_ref().unwrap()]);
                }
                "ld" if parts[1] == "param" => {
                    let Opd::Addr(b, _) = &a[1] else { panic!() };
                    let Opd::Sym(s) = &**b else { panic!() };
                    let x = t.params[s];
                    set(t, x);
                }
                "st" if parts[1] == "param" => {
                    let Opd::Addr(b, _) = &a[0] else { panic!() };
                    let Opd::Sym(s) = &**b else { panic!() };
                    let x = v(t, 1);
                    t.params.insert(s.clone(), x);
                }
                "ld" => {
                    let ad = self.addr(f, t, &a[1], tid, cta);
                    match &a[0] {
                        Opd::List(rs) => {
                            for (k, r) in rs.iter().enumerate() {
                                let Opd::Reg(r) = r else { panic!() };
                                t.regs[*r] = mem.read(&mut t.local, ad + 4 * k as u64) as u64;
                            }
                        }
                        _ if ty == "u64" || ty == "b64" => {
                            let lo = mem.read(&mut t.local, ad) as u64;
                            let hi = mem.read(&mut t.local, ad + 4) as u64;
                            set(t, lo | hi << 32);
                        }
                        _ => {
                            let x = mem.read(&mut t.local, ad) as u64;
                            set(t, x);
                        }
                    }
                }
                "st" => {
                    let ad = self.addr(f, t, &a[0], tid, cta);
                    match &a[1] {
                        Opd::List(rs) => {
                            for (k, r) in rs.iter().enumerate() {
                                let x = self.val(f, t, r, tid, cta) as u32;
                                *mem.word(&mut t.local, ad + 4 * k as u64) = x;
                            }
                        }
                        o => {
                            let x = self.val(f, t, o, tid, cta) as u32;
                            *mem.word(&mut t.local, ad) = x;
                        }
                    }
                }
                "mov" => {
                    let x = v(t, 1);
                    set(t, x);
                }
                "cvta" => {
                    let x = v(t, 1);
                    set(t, x);
                }
                "setp" => {
                    let (x, y) = (v(t, 1), v(t, 2));
                    let r = match ty {
                        "f32" => cmp_f(&parts[1], f32v(x) as f64, f32v(y) as f64),
                        "f64" => cmp_f(&parts[1], f64v(x), f64v(y)),
                        "u32" => cmp_u(&parts[1], x as u32 as u64, y as u32 as u64),
                        _ => panic!("{}", inst.op),
                    };
                    set(t, r as u64);
                }
                "testp" => {
                    let x = f64v(v(t, 1));
                    set(t, x.is_finite() as u64);
                }
                "selp" => {
                    let x = if v(t, 3) != 0 { v(t, 1) } else { v(t, 2) };
                    set(t, x);
                }
                "cvt" => {
                    let x = v(t, 1);
                    let r = match &inst.op[..] {
                        "cvt.rzi.s32.f32" => (f32v(x) as i32) as u32 as u64,
                        "cvt.rn.f32.s32" => fb(x as u32 as i32 as f32),
                        "cvt.rn.f32.u32" => fb(x as u32 as f32),
                        "cvt.rni.f64.f64" => db(f64v(x).round_ties_even()),
                        "cvt.rni.s32.f64" => (f64v(x).round_ties_even() as i32) as u32 as u64,
                        "cvt.u64.u32" => x as u32 as u64,
                        "cvt.u32.u64" => x as u32 as u64,
                        "cvt.rn.f64.s32" => db(x as u32 as i32 as f64),
                        "cvt.rn.f64.u32" => db(x as u32 as f64),
                        "cvt.rzi.u32.f64" => (f64v(x) as u32) as u64,
                        "cvt.f64.f32" => db(f32v(x) as f64),
                        "cvt.rn.f32.f64" => fb(f64v(x) as f32),
                        o => panic!("{o}"),
                    };
                    set(t, r);
                }
                "neg" => {
                    let x = v(t, 1);
                    set(t, db(-f64v(x)));
                }
                "abs" => {
                    let x = v(t, 1);
                    set(t, db(f64v(x).abs()));
                }
                op => {
                    let x = v(t, 1);
                    let y = if a.len() > 2 { v(t, 2) } else { 0 };
                    let r = match (op, ty) {
                        ("add", "f32") => fb(f32v(x) + f32v(y)),
                        ("sub", "f32") => fb(f32v(x) - f32v(y)),
                        ("mul", "f32") => fb(f32v(x) * f32v(y)),
                        ("div", "f32") => fb(f32v(x) / f32v(y)),
                        ("fma", "f32") => fb(f32v(x).mul_add(f32v(y), f32v(v(t, 3)))),
                        ("max", "f32") => fb(f32v(x).max(f32v(y))),
                        ("add", "f64") => db(f64v(x) + f64v(y)),
                        ("sub", "f64") => db(f64v(x) - f64v(y)),
                        ("mul", "f64") => db(f64v(x) * f64v(y)),
                        ("div", "f64") => db(f64v(x) / f64v(y)),
                        ("fma", "f64") => db(f64v(x).mul_add(f64v(y), f64v(v(t, 3)))),
                        ("sqrt", "f64") => db(f64v(x).sqrt()),
                        ("sqrt", "f32") => fb(f32v(x).sqrt()),
                        ("add", "u32") | ("add", "s32") => (x as u32).wrapping_add(y as u32) as u64,
                        ("sub", "u32") | ("sub", "s32") => (x as u32).wrapping_sub(y as u32) as u64,
                        ("add", "s64") => x.wrapping_add(y),
                        ("mul", "u32") if parts[1] == "lo" => {
                            (x as u32).wrapping_mul(y as u32) as u64
                        }
                        ("mul", "u32") if parts[1] == "hi" => {
                            ((x as u32 as u64) * (y as u32 as u64)) >> 32
                        }
                        ("mul", "u32") if parts[1] == "wide" => {
                            (x as u32 as u64) * (y as u32 as u64)
                        }
                        ("mad", "u32") => (x as u32)
                            .wrapping_mul(y as u32)
                            .wrapping_add(v(t, 3) as u32)
                            as u64,
                        ("min", "u32") => (x as u32).min(y as u32) as u64,
                        ("and", "b32") => (x as u32 & y as u32) as u64,
                        ("or", "b32") => (x as u32 | y as u32) as u64,
                        ("xor", "b32") => (x as u32 ^ y as u32) as u64,
                        ("and", "b64") => x & y,
                        ("or", "b64") => x | y,
                        ("or", "pred") => ((x != 0) || (y != 0)) as u64,
                        ("shl", "b32") => ((x as u32) << y) as u64,
                        ("shl", "b64") => x << y,
                        ("shr", "u32") => ((x as u32) >> y) as u64,
                        ("shr", "s32") => ((x as u32 as i32) >> y) as u32 as u64,
                        ("shr", "u64") => x >> y,
                        _ => panic!("unsupported instruction {}", inst.op),
                    };
                    set(t, r);
                }
            }
        }
    }

    /// Runs the model entry (the first in the text) over `rows` rows: `bufs` = [inputs,
    /// noise, outputs, weights] as words.
    pub fn launch(&self, block: u32, rows: u32, bufs: &mut [Vec<u32>]) {
        let args = [buf(0), buf(1), buf(2), buf(3), rows as u64];
        self.launch_entry(&self.entries[0], block, rows, &args, bufs);
    }

    /// The kernel entries, in the order of the text.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Runs entry `entry` over `rows` rows with parameter values `args` (in the order of the
    /// entry's parameters; [`buf`]`(k)` is the address of `bufs[k]`).
    pub fn launch_entry(
        &self,
        entry: &str,
        block: u32,
        rows: u32,
        args: &[u64],
        bufs: &mut [Vec<u32>],
    ) {
        let f = self
            .funcs
            .get(entry)
            .unwrap_or_else(|| panic!("no entry `{entry}` in {:?}", self.entries));
        assert_eq!(
            f.params.len(),
            args.len(),
            "entry `{entry}` takes {:?}",
            f.params
        );
        let local_words: usize = f.locals.iter().map(|(_, s)| s / 4).sum();
        let shared_words: usize = f.shared.iter().map(|(_, s)| s / 4).sum();
        for cta in 0..rows.div_ceil(block) {
            let mut shared = vec![0u32; shared_words.max(1)];
            let mut threads: Vec<Thread> = (0..block)
                .map(|_| Thread {
                    pc: 0,
                    regs: vec![0; f.regs.len()],
                    params: f.params.iter().cloned().zip(args.iter().copied()).collect(),
                    local: vec![0; local_words],
                    done: false,
                })
                .collect();
            while threads.iter().any(|t| !t.done) {
                for (tid, t) in threads.iter_mut().enumerate() {
                    if !t.done {
                        let mut mem = Mem {
                            bufs,
                            globals: &self.globals,
                            shared: &mut shared,
                        };
                        t.done = self.run(f, t, &mut mem, tid as u32, cta);
                    }
                }
            }
        }
    }
}

/// The address of buffer `k` of a launch.
pub fn buf(k: usize) -> u64 {
    BUF + k as u64 * 0x1000_0000
}

fn cmp_f(c: &str, x: f64, y: f64) -> bool {
    match c {
        "lt" => x < y,
        "gt" => x > y,
        "le" => x <= y,
        "ge" => x >= y,
        "eq" => x == y,
        "ne" => x != y && !x.is_nan() && !y.is_nan(),
        "nan" => x.is_nan() || y.is_nan(),
        "num" => !x.is_nan() && !y.is_nan(),
        _ => panic!("setp.{c}"),
    }
}

fn cmp_u(c: &str, x: u64, y: u64) -> bool {
    match c {
        "lt" => x < y,
        "gt" => x > y,
        "le" => x <= y,
        "ge" => x >= y,
        "eq" => x == y,
        "ne" => x != y,
        _ => panic!("setp.{c}"),
    }
}

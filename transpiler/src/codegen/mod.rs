//! Code generation from a planned [`Program`](crate::passes::Program).
//!
//! The Rust backend cannot fail: it only reads data that validation and planning have already
//! checked. The PTX backend first checks that it supports every op of the plan (the only error
//! it can return names the node and op) and cannot fail after that check.

pub mod ptx;
pub mod rust;

//! Code generation from a planned [`Program`](crate::passes::Program).
//!
//! Codegen cannot fail: it only reads data that validation and planning have already checked.

pub mod rust;

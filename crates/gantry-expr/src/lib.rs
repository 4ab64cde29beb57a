//! `${{ … }}` templates and CEL expressions over an execution's context.
//!
//! A pipeline file may write an expression in any string field, between `${{` and `}}`
//! ([`Template`]), and a whole condition in `if:` or a precondition ([`Expression`]). Expressions
//! read four roots, which a [`Context`] holds as JSON: `parameters`, `trigger`, `execution` and
//! `stages` (`stages.<id>.outputs.<key>`, `stages.<id>.status`). [`Reference`]s let the config
//! crate check, before anything runs, that an expression only reads what will exist. Shell syntax
//! (`${VAR}`, `$VAR`) is plain text here and reaches the shell untouched.
//!
//! The language is CEL, from the `cel` crate (cel-rust). Its other published name,
//! `cel-interpreter`, is the same project before a rename: 0.10 was the last release under that
//! name, while `cel` keeps getting releases, so `cel` is the maintained one. Both parse with the
//! same ANTLR runtime, so neither is lighter to compile; `cel` builds with its default features
//! off (no chrono, no base64) plus `regex` for `matches`, and the regex crate is in the binary
//! anyway. It exposes the parsed AST (`Program::expression`) with source offsets, which is what
//! [`Reference`] walks to find member-access chains, and it ships a strings extension
//! (`lowerAscii`, `replace`, `split`, `trim`, `join`, …) next to the standard `contains`,
//! `startsWith`, `endsWith`, `matches` and `size`, so Gantry writes no standard library of its own.
//!
//! The `cel` parser and evaluator recurse deeply, so parsing and evaluation run on a few helper
//! threads with big stacks (module `stack`); a call blocks its caller for the few microseconds
//! that takes. An expression is at most 2000 bytes, and a call gives up after 10 seconds.

#![forbid(unsafe_code)]

mod context;
mod error;
mod expression;
mod references;
mod render;
mod stack;
mod template;

pub use context::{Context, ROOTS};
pub use error::ExprError;
pub use expression::Expression;
pub use references::Reference;
pub use render::render_value;
pub use template::Template;

#[cfg(test)]
mod tests;

//! Test doubles for code that drives deploys without a data plane. Built
//! for this crate's tests and, with the `fake` feature, for other crates'.

mod fake;

pub use fake::{Call, FakeProvider, MemoryJournal, NoPeople};

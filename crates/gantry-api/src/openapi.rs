//! The OpenAPI 3.1 description of the API, written by hand in `openapi.json`.
//! A unit test checks it against [`crate::routes()`] so the two cannot drift.

pub const DOCUMENT: &str = include_str!("openapi.json");

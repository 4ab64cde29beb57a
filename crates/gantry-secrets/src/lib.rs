//! The server-side secret store: values sealed with ChaCha20-Poly1305 under
//! a key kept in the data directory (`secrets.key`, mode 0600), stored
//! sealed through gantry-store. A value exists in the clear only in memory,
//! on its way into a step's environment.

#![forbid(unsafe_code)]

mod key;
mod store;

pub use store::{RESERVED_PREFIX, SecretError, SecretInfo, SecretStore};

#[cfg(test)]
mod tests;

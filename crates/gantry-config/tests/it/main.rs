//! gantry-config from the outside: the sample file, a file full of mistakes, and garbage.

mod errors;
mod garbage;
mod registry_stages;
mod sample;
mod triggers;

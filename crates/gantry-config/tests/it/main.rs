//! gantry-config from the outside: the sample file, a file full of mistakes, and garbage.

mod errors;
mod garbage;
mod sample;
mod triggers;

//! Choosing where a request goes. One algorithm today (weighted, then
//! round-robin within the group); each lives in its own file.

mod weighted;

pub(crate) use weighted::pick;

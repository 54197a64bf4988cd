//! Crash safety through the real binary: the crash harness (every event
//! and every side effect of apply, a failing apply, an update, a destroy
//! and a resume), run locks, and Ctrl-C.

#[cfg(feature = "failpoints")]
mod deploy;
mod interrupt;
mod lock;
#[cfg(feature = "failpoints")]
mod points;
pub mod project;
pub mod world;

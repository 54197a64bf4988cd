//! The engine: the effectful shell that runs commands against providers and
//! writes the journal.

pub mod host;
pub mod recorder;

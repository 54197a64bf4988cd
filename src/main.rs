//! The `fabrik` command.
fn main() {}

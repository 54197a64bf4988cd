//! Process exit codes: the contract in the README.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, including "no changes" |
//! | 1 | unexpected error |
//! | 2 | usage error, or changes pending under `plan --detailed-exitcode` |
//! | 3 | another run holds the deployment's lock |
//! | 4 | invalid spec |
//! | 5 | run failed and its owned resources were rolled back |
//! | 6 | run failed and needs a person |
//! | 7 | journal integrity check failed |

/// Success.
pub const OK: i32 = 0;
/// Unexpected error.
pub const UNEXPECTED: i32 = 1;
/// Usage error, or changes pending under `plan --detailed-exitcode`.
pub const USAGE: i32 = 2;
/// Another run holds the lock.
pub const LOCKED: i32 = 3;
/// Invalid spec.
pub const INVALID_SPEC: i32 = 4;
/// Run failed, owned resources rolled back.
pub const ROLLED_BACK: i32 = 5;
/// Run failed and needs a person.
pub const NEEDS_ATTENTION: i32 = 6;
/// Journal integrity check failed.
pub const INTEGRITY: i32 = 7;

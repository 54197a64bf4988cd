//! Who and where this process is, for run and lock records.

/// `(user, host, pid)` of this process.
pub fn who() -> (String, String, u32) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    (user, host, std::process::id())
}

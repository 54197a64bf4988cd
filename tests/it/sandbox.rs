//! Integration tests of the `sandbox` module.

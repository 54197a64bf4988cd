//! Integration tests of the `spec` module.

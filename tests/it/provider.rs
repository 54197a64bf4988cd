//! Integration tests of the `provider` module.

//! The spec file (`spec.yaml`): model, validation, templates, secrets.

pub mod diagnostic;
pub mod files;
pub mod model;
pub mod path;
pub mod schema;
pub mod template;

mod compose;
mod conform;
mod load;
mod rules;
mod suggest;
pub(crate) mod yaml;

pub use load::{Checked, LoadOptions, Loaded, SpecError, check, load};

//! The spec file (`spec.yaml`): model, validation, templates, secrets.

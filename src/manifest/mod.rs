//! Desired state: the manifest model, loading YAML with spans, and validation.

pub mod model;

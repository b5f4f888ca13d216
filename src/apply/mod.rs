//! Apply: carry out a plan with real API calls, in dependency order, then check that a fresh
//! plan is empty.

mod steps;

pub use steps::{SettingsBinding, Step, steps};

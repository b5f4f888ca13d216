//! Apply: carry out a plan with real API calls, in dependency order.
//!
//! [`steps`] decides the calls (pure), [`execute`] makes them and reports each, [`read_secrets`]
//! reads `--secret` values. The command in `cli.rs` gathers again afterwards and requires an
//! empty plan.

mod execute;
mod progress;
mod secrets;
mod steps;

pub use execute::{Progress, StepError, StepOutcome, execute};
pub use progress::Lines;
pub use secrets::{SecretArg, SecretArgParser, SecretError, read_secrets};
pub use steps::{SettingsBinding, Step, steps};

//! Required response headers: what a probe saw compared with what a manifest requires. Plan
//! reports the difference as drift; check grades the same comparison.

use super::{Address, Drift, Warning};
use crate::live::Probe;
use crate::manifest::model::Headers;

/// Compare what a probe saw with the headers a manifest requires: a drift for each required
/// header that is missing or has another value, a warning when the URL could not be fetched or
/// answered with a redirect. `worker` is the Worker's key. Plan and check share it.
pub(crate) fn header_drift(
    worker: &str,
    headers: &Headers,
    probe: &Probe,
) -> (Vec<Drift>, Vec<Warning>) {
    let address = Address::Headers {
        worker: worker.to_owned(),
    };
    let mut drift = Vec::new();
    let mut warnings = Vec::new();
    match probe {
        Probe::Unreachable { reason } => warnings.push(Warning {
            address: address.clone(),
            message: format!(
                "could not probe {}: {reason}; headers not checked",
                headers.url
            ),
        }),
        Probe::Answered {
            status,
            headers: got,
            redirect,
        } => {
            if let Some(location) = redirect {
                warnings.push(Warning {
                    address: address.clone(),
                    message: format!(
                        "{} answered {status} redirecting to {location}; the redirect was not followed and its own headers were checked",
                        headers.url
                    ),
                });
            }
            for (name, expected) in &headers.require {
                let actual = got.get(&name.to_ascii_lowercase());
                if actual.map(|a| a.trim()) != Some(expected.trim()) {
                    drift.push(Drift {
                        address: Address::Header {
                            worker: worker.to_owned(),
                            name: name.clone(),
                        },
                        expected: expected.clone(),
                        actual: actual.cloned(),
                        reason: format!(
                            "GET {} answered {status} {}; the Worker's code must set it",
                            headers.url,
                            if actual.is_some() {
                                "with another value"
                            } else {
                                "without it"
                            }
                        ),
                    });
                }
            }
        }
    }
    (drift, warnings)
}

//! Deterministic fault injection: the failures a real client must survive, on demand.
//!
//! The grammar (also in `lmsinfra sandbox --help`):
//!
//! ```text
//! SPEC     := ITEM ("," ITEM)*
//! ITEM     := "seed=" INTEGER
//!           | "override_delay=" DURATION
//!           | KIND ["@" SCOPE] "=" RATE [":" ARG]
//! KIND     := "429" | "500" | "503" | "drop" | "slow" | "after_create" | "do_binding"
//!           | "worker_5xx" | "worker_slow"
//! RATE     := a decimal from 0 to 1 (the share of matching requests hit)
//! ARG      := for 429, the retry-after DURATION (default 1s);
//!             for slow and worker_slow, the extra DURATION (required);
//!             for after_create, "500" (default), "drop", or a DURATION to stall before answering
//! DURATION := INTEGER ("ms" | "s")
//! SCOPE    := text without "," "=" ":"; the item only applies to routes whose template
//!             (e.g. /accounts/{account_id}/d1/database) or operation id contains it
//! ```
//!
//! Example: `seed=7,429=0.2,500=0.1,drop=0.05,slow=0.1:2000ms,after_create@d1=1:drop`.
//!
//! `429`, `500`, `503` and `drop` happen *before* the request takes effect. `after_create`
//! happens *after* a create succeeded (D1 create, script upload, secret put, version upload,
//! deployment create): the change is committed and saved, then the client gets a 500, a dropped
//! connection, or a stall — the case a client must handle by checking before it retries.
//! `do_binding` makes a settings PATCH whose bindings include a Durable Object namespace, even
//! one only inherited, fail with 10061 ("Cannot create binding for class …"), as it has on real
//! accounts (workers-sdk issues #4496 and #5753); other requests are untouched.
//!
//! `worker_5xx`, `worker_slow` and `override_delay` apply to Worker traffic only (the sandbox's
//! emulated `*.workers.dev` answers, see the `traffic` module), and the API kinds never do; there
//! a SCOPE matches the script name. `worker_5xx` answers 500 (`error code: 1101`, a Worker that
//! threw); `worker_slow` delays the answer; `override_delay` ignores
//! `Cloudflare-Workers-Version-Overrides` for that long after each deployment, as Cloudflare
//! takes "up to a couple of seconds" to apply them. Worker decisions use their own counter per
//! script, so they never shift the API's.
//!
//! Every decision comes from a random generator seeded with `seed`, the route and the number of
//! earlier requests on that route, so the same seed and the same requests per route give the
//! same faults regardless of how requests on different routes interleave. `/__sandbox/*` is
//! never faulted.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};

/// The `--faults` help text: the grammar above, for people at a terminal.
pub const HELP: &str = "Faults to inject, deterministically.

SPEC is a comma-separated list of items:
  seed=N                   seed for the fault generator (default 0)
  KIND[@SCOPE]=RATE[:ARG]  hit that share (0 to 1) of matching requests
  override_delay=DURATION  ignore version overrides on Worker traffic for that long
                           after each deployment
KIND is 429 (ARG: retry-after, default 1s), 500, 503, drop (close the connection),
slow (ARG: extra delay, required), after_create (the create takes effect, then the
client gets ARG: 500 (default), drop, or a stall of the given duration) or do_binding
(a settings PATCH with a Durable Object binding fails with 10061); on Worker traffic
only, worker_5xx (answer 500) and worker_slow (ARG: extra delay, required).
Durations are like 250ms or 2s. SCOPE limits an item to routes whose template or
operation id contains it (for worker kinds, to scripts whose name contains it),
e.g. after_create@d1=1:drop or worker_5xx@lms-api=0.5.
Example: seed=7,429=0.2,500=0.1,drop=0.05,slow=0.1:2000ms,after_create@d1=1";

/// A parsed `--faults` specification.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    seed: u64,
    override_delay: Option<Duration>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    kind: Kind,
    scope: Option<String>,
    rate: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    TooMany(Duration),
    Internal,
    Unavailable,
    Drop,
    Slow(Duration),
    AfterCreate(AfterCreate),
    DurableObject,
    WorkerFail,
    WorkerSlow(Duration),
}

impl Kind {
    fn on_worker_traffic(&self) -> bool {
        matches!(self, Kind::WorkerFail | Kind::WorkerSlow(_))
    }
}

/// The faults chosen for one Worker request.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct WorkerDecision {
    /// Answer 500 instead of the version's answer.
    pub(crate) fail: bool,
    pub(crate) slow: Option<Duration>,
}

/// What happens to a create that already took effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AfterCreate {
    /// Answer 500 in the envelope.
    Internal,
    /// Close the connection without an answer.
    Drop,
    /// Wait this long, then answer normally.
    Stall(Duration),
}

/// What to do to one request before it takes effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Before {
    TooMany(Duration),
    Internal,
    Unavailable,
    Drop,
}

/// The faults chosen for one request.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    pub(crate) before: Option<Before>,
    pub(crate) slow: Option<Duration>,
    pub(crate) after_create: Option<AfterCreate>,
    /// A settings PATCH with a Durable Object binding fails with 10061.
    pub(crate) durable_object: bool,
}

/// Why a `--faults` specification was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError(String);

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultSpecError {}

fn err(message: String) -> FaultSpecError {
    FaultSpecError(message)
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut parsed = FaultSpec {
            seed: 0,
            override_delay: None,
            rules: Vec::new(),
        };
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(err(format!(
                    "empty item in `{spec}`: items are separated by single commas"
                )));
            }
            let (key, value) = item.split_once('=').ok_or_else(|| {
                err(format!(
                    "`{item}` has no `=`: write KIND=RATE, e.g. `500=0.1`"
                ))
            })?;
            if key == "seed" {
                parsed.seed = value.parse().map_err(|_| {
                    err(format!("seed `{value}` is not a non-negative whole number"))
                })?;
                continue;
            }
            if key == "override_delay" {
                parsed.override_delay = Some(duration(value)?);
                continue;
            }
            parsed.rules.push(Rule::parse(key, value)?);
        }
        Ok(parsed)
    }
}

impl Rule {
    fn parse(key: &str, value: &str) -> Result<Rule, FaultSpecError> {
        let (kind, scope) = match key.split_once('@') {
            Some((kind, scope)) if !scope.is_empty() && !scope.contains(':') => {
                (kind, Some(scope.to_owned()))
            }
            Some(_) => {
                return Err(err(format!(
                    "`{key}`: the scope after `@` must be non-empty text without `:`"
                )));
            }
            None => (key, None),
        };
        let (rate, arg) = match value.split_once(':') {
            Some((rate, arg)) => (rate, Some(arg)),
            None => (value, None),
        };
        let rate: f64 = rate
            .parse()
            .ok()
            .filter(|r: &f64| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                err(format!(
                    "rate `{rate}` for `{kind}` is not a number from 0 to 1"
                ))
            })?;
        let no_arg = |kind: Kind| match arg {
            None => Ok(kind),
            Some(arg) => Err(err(format!("`{key}` takes no `:{arg}`"))),
        };
        let kind = match kind {
            "429" => Kind::TooMany(
                arg.map(duration)
                    .transpose()?
                    .unwrap_or(Duration::from_secs(1)),
            ),
            "500" => no_arg(Kind::Internal)?,
            "503" => no_arg(Kind::Unavailable)?,
            "drop" => no_arg(Kind::Drop)?,
            "slow" => Kind::Slow(duration(arg.ok_or_else(|| {
                err("`slow` needs a duration, e.g. `slow=0.1:2000ms`".to_owned())
            })?)?),
            "do_binding" => no_arg(Kind::DurableObject)?,
            "worker_5xx" => no_arg(Kind::WorkerFail)?,
            "worker_slow" => Kind::WorkerSlow(duration(arg.ok_or_else(|| {
                err("`worker_slow` needs a duration, e.g. `worker_slow=0.1:2000ms`".to_owned())
            })?)?),
            "after_create" => Kind::AfterCreate(match arg {
                None | Some("500") => AfterCreate::Internal,
                Some("drop") => AfterCreate::Drop,
                Some(other) => AfterCreate::Stall(duration(other)?),
            }),
            other => {
                return Err(err(format!(
                    "unknown fault `{other}`: expected one of seed, override_delay, 429, 500, 503, drop, slow, after_create, do_binding, worker_5xx, worker_slow"
                )));
            }
        };
        Ok(Rule { kind, scope, rate })
    }

    fn applies(&self, template: &str, operation: &str) -> bool {
        self.scope
            .as_deref()
            .is_none_or(|s| template.contains(s) || operation.contains(s))
    }
}

fn duration(text: &str) -> Result<Duration, FaultSpecError> {
    let bad = || {
        err(format!(
            "duration `{text}` is not a whole number followed by `ms` or `s`"
        ))
    };
    if let Some(ms) = text.strip_suffix("ms") {
        ms.parse().map(Duration::from_millis).map_err(|_| bad())
    } else if let Some(s) = text.strip_suffix('s') {
        s.parse().map(Duration::from_secs).map_err(|_| bad())
    } else {
        Err(bad())
    }
}

/// The spec plus the per-route request counters its decisions depend on.
#[derive(Debug)]
pub(crate) struct Injector {
    spec: FaultSpec,
    counters: Mutex<HashMap<String, u64>>,
}

impl Injector {
    pub(crate) fn new(spec: FaultSpec) -> Injector {
        Injector {
            spec,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Decide the faults for the next request on `method template`.
    pub(crate) fn decide(
        &self,
        method: &str,
        template: &str,
        operation: &str,
        creates: bool,
    ) -> Decision {
        let key = format!("{method} {template}");
        let n = {
            let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let n = counters.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let mut rng = SmallRng::seed_from_u64(mix(self.spec.seed, &key, n));
        let mut decision = Decision::default();
        for rule in self
            .spec
            .rules
            .iter()
            .filter(|r| !r.kind.on_worker_traffic())
        {
            let hit = rng.random::<f64>() < rule.rate;
            if !hit || !rule.applies(template, operation) {
                continue;
            }
            match rule.kind {
                Kind::TooMany(d) => {
                    decision.before.get_or_insert(Before::TooMany(d));
                }
                Kind::Internal => {
                    decision.before.get_or_insert(Before::Internal);
                }
                Kind::Unavailable => {
                    decision.before.get_or_insert(Before::Unavailable);
                }
                Kind::Drop => {
                    decision.before.get_or_insert(Before::Drop);
                }
                Kind::Slow(d) => {
                    decision.slow.get_or_insert(d);
                }
                Kind::AfterCreate(a) if creates => {
                    decision.after_create.get_or_insert(a);
                }
                Kind::DurableObject => decision.durable_object = true,
                Kind::AfterCreate(_) | Kind::WorkerFail | Kind::WorkerSlow(_) => {}
            }
        }
        decision
    }
}

impl Injector {
    /// Decide the faults for the next Worker request to `script`.
    pub(crate) fn decide_worker(&self, script: &str) -> WorkerDecision {
        let key = format!("WORKER {script}");
        let n = {
            let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let n = counters.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let mut rng = SmallRng::seed_from_u64(mix(self.spec.seed, &key, n));
        let mut decision = WorkerDecision::default();
        for rule in self
            .spec
            .rules
            .iter()
            .filter(|r| r.kind.on_worker_traffic())
        {
            let hit = rng.random::<f64>() < rule.rate;
            if !hit || !rule.scope.as_deref().is_none_or(|s| script.contains(s)) {
                continue;
            }
            match rule.kind {
                Kind::WorkerFail => decision.fail = true,
                Kind::WorkerSlow(d) => {
                    decision.slow.get_or_insert(d);
                }
                _ => {}
            }
        }
        decision
    }

    /// How long overrides are ignored after a deployment.
    pub(crate) fn override_delay(&self) -> Option<Duration> {
        self.spec.override_delay
    }

    /// The seed, which also seeds Worker traffic's choice of version.
    pub(crate) fn seed(&self) -> u64 {
        self.spec.seed
    }
}

/// FNV-1a over the route key, folded with the seed and the request number.
fn mix(seed: u64, key: &str, n: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^ seed.rotate_left(17) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let spec: FaultSpec =
            "seed=7,429=0.2,500=0.1,drop=0.05,slow=0.1:2000ms,after_create@d1=1:drop"
                .parse()
                .unwrap();
        assert_eq!(spec.seed, 7);
        assert_eq!(spec.rules.len(), 5);
        assert_eq!(spec.rules[3].kind, Kind::Slow(Duration::from_millis(2000)));
        assert_eq!(spec.rules[4].kind, Kind::AfterCreate(AfterCreate::Drop));
        assert_eq!(spec.rules[4].scope.as_deref(), Some("d1"));
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        for (spec, needle) in [
            ("500", "no `=`"),
            ("500=2", "from 0 to 1"),
            ("slow=0.5", "needs a duration"),
            ("teapot=0.1", "unknown fault"),
            ("seed=x", "seed"),
            ("500=0.1,,", "empty item"),
            ("slow=0.1:5min", "duration"),
        ] {
            let error = spec.parse::<FaultSpec>().unwrap_err().to_string();
            assert!(error.contains(needle), "{spec}: {error}");
        }
    }

    #[test]
    fn same_seed_same_decisions() {
        let decide = |seed: &str| {
            let injector = Injector::new(format!("seed={seed},500=0.5,drop=0.2").parse().unwrap());
            (0..50)
                .map(|_| injector.decide("GET", "/zones", "zones-get", false))
                .collect::<Vec<_>>()
        };
        assert_eq!(decide("3"), decide("3"));
        assert_ne!(decide("3"), decide("4"));
    }

    #[test]
    fn worker_kinds_act_on_worker_traffic_only() {
        let injector = Injector::new(
            "seed=1,worker_5xx@lms-api=1,worker_slow=1:250ms,override_delay=2s"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            injector.decide("GET", "/zones", "zones-get", false),
            Decision::default()
        );
        assert_eq!(
            injector.decide_worker("lms-api"),
            WorkerDecision {
                fail: true,
                slow: Some(Duration::from_millis(250)),
            }
        );
        assert!(!injector.decide_worker("lms-viewer").fail, "out of scope");
        assert_eq!(injector.override_delay(), Some(Duration::from_secs(2)));
        assert!("worker_slow=0.5".parse::<FaultSpec>().is_err());
        assert!("override_delay=soon".parse::<FaultSpec>().is_err());
    }
}

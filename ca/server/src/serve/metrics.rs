//! Prometheus metrics: issuances and refusals, signing time, log size,
//! store batches. Served on `serve.metrics_listen` (loopback only).

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::touch::{Observer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WitnessLabels {
    witness: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    route: &'static str,
    reason: &'static str,
}

/// The daemon's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    issuances: Family<KindLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    sign_seconds: Histogram,
    log_size: Gauge,
    pending: Gauge,
    directory_behind: Gauge,
    witness_up: Family<WitnessLabels, Gauge>,
    witness_size: Family<WitnessLabels, Gauge>,
    released_size: Gauge,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("signet_ca");
        let issuances = Family::<KindLabels, Counter>::default();
        registry.register(
            "issuances",
            "Certificates issued, by kind and outcome",
            issuances.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests refused, by route and reason",
            refusals.clone(),
        );
        let sign_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "issue_sign_and_log_seconds",
            "Time to sign both certificates in the HSM and make their log entries durable",
            sign_seconds.clone(),
        );
        let log_size = Gauge::default();
        registry.register(
            "log_size",
            "Entries in the latest signed checkpoint",
            log_size.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "ceremonies_pending",
            "WebAuthn ceremonies waiting for finish",
            pending.clone(),
        );
        let directory_behind = Gauge::default();
        registry.register(
            "directory_behind",
            "1 while the CA's state cannot follow its log (an entry another replica appended \
             cannot be applied) and issuance is stopped, else 0",
            directory_behind.clone(),
        );
        let witness_up = Family::<WitnessLabels, Gauge>::default();
        registry.register(
            "witness_up",
            "1 if the witness's last answer was a valid cosignature, else 0",
            witness_up.clone(),
        );
        let witness_size = Family::<WitnessLabels, Gauge>::default();
        registry.register(
            "witness_cosigned_size",
            "The log size each witness last cosigned, as far as the CA knows",
            witness_size.clone(),
        );
        let released_size = Gauge::default();
        registry.register(
            "log_released_size",
            "Entries in the latest checkpoint released under the witness policy",
            released_size.clone(),
        );
        Self {
            issuances,
            refusals,
            sign_seconds,
            log_size,
            pending,
            directory_behind,
            witness_up,
            witness_size,
            released_size,
            registry: Arc::new(registry),
        }
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, service: &Service) -> String {
        self.log_size
            .set(i64::try_from(service.store().latest_checkpoint().size).unwrap_or(i64::MAX));
        self.pending
            .set(i64::try_from(service.pending_ceremonies()).unwrap_or(i64::MAX));
        self.directory_behind
            .set(i64::from(service.directory_failure().is_some()));
        let released = service.store().published_checkpoint().map_or(0, |c| c.size);
        self.released_size
            .set(i64::try_from(released).unwrap_or(i64::MAX));
        for witness in service.store().witness_states() {
            let labels = WitnessLabels {
                witness: witness.name,
            };
            self.witness_up
                .get_or_create(&labels)
                .set(i64::from(witness.ok));
            if let Some(size) = witness.size {
                self.witness_size
                    .get_or_create(&labels)
                    .set(i64::try_from(size).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Observer for Metrics {
    fn issued(&self, kind: &'static str) {
        self.issuances
            .get_or_create(&KindLabels {
                kind,
                outcome: "issued",
            })
            .inc();
    }

    fn refused(&self, route: &'static str, reason: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels { route, reason })
            .inc();
    }

    fn sign_seconds(&self, seconds: f64) {
        self.sign_seconds.observe(seconds);
    }
}

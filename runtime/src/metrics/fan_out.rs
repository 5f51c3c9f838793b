//! Enhanced fan-out series of a `weir run --efo-consumer`: subscriptions open, made, renewed,
//! and made again by reason (a silent subscription, a dropped connection, a subscription held
//! by another reader), and the events they pushed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use weir_kinesis::ReaderStats;

/// The label of `weir_subscriptions_resubscribed_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `inactive` (nothing for --efo-inactivity), `dropped` (it ended early: the connection
    /// failed or was closed, or the service ended it), `in-use` (refused with
    /// ResourceInUseException: another reader holds it, or the last one is under 5 s old).
    pub reason: &'static str,
}

crate::series! {
    /// The subscription series.
    #[derive(Clone, Debug)]
    pub struct FanOutMetrics {
        /// Shards read through a subscription now.
        pub active: Gauge = Gauge::default() => "weir_subscriptions_active",
        /// SubscribeToShard calls that opened a subscription.
        pub started: Counter = Counter::default() => "weir_subscriptions_started",
        /// Subscriptions renewed at the end of their life (--efo-renew-after).
        pub renewed: Counter = Counter::default() => "weir_subscriptions_renewed",
        /// Subscriptions made again, or refused, by reason.
        resubscribed: Family<ReasonLabel, Counter> = Family::default() => "weir_subscriptions_resubscribed",
        /// Events pushed by subscriptions (with records or not).
        pub events: Counter = Counter::default() => "weir_subscription_events",
    }
    unexported |_registry| {
        /// Every resubscription, whatever the reason, for the summaries.
        all_resubscribed: Counter = Counter::default(),
    }
}

impl FanOutMetrics {
    /// Count what a reader did between `seen` and `now` (its cumulative counts).
    pub fn count(&self, seen: &ReaderStats, now: &ReaderStats) {
        self.started.inc_by(now.subscribed - seen.subscribed);
        self.renewed.inc_by(now.renewed - seen.renewed);
        self.events.inc_by(now.events - seen.events);
        for (reason, seen, now) in [
            ("inactive", seen.resubscribed_inactive, now.resubscribed_inactive),
            ("dropped", seen.resubscribed_dropped, now.resubscribed_dropped),
            ("in-use", seen.in_use, now.in_use),
        ] {
            if now > seen {
                self.resubscribed.get_or_create(&ReasonLabel { reason }).inc_by(now - seen);
                self.all_resubscribed.inc_by(now - seen);
            }
        }
    }

    /// Resubscriptions so far, all reasons.
    pub fn resubscriptions(&self) -> u64 {
        self.all_resubscribed.get()
    }
}

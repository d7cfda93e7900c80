"""Prometheus metrics of one scheduler (own registry, so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]

_LATENESS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.fires = Counter("beatspec_fires", "Messages published for due entries.",
                             registry=r)
        self.skipped = Counter("beatspec_skipped_runs",
                               "Runs not sent because of a misfire policy 'skip'.", registry=r)
        self.publish_errors = Counter("beatspec_publish_errors",
                                      "Runs lost because the broker refused them.", registry=r)
        self.conflicts = Counter("beatspec_write_conflicts",
                                 "Entries changed by a writer between read and write.",
                                 registry=r)
        self.lateness = Histogram("beatspec_fire_lateness_seconds",
                                  "Publish time minus due time.", buckets=_LATENESS,
                                  registry=r)
        self.invalid = Gauge("beatspec_invalid_entries",
                             "Entries backed off because they are invalid.", registry=r)
        self.invalid_seen = Counter("beatspec_invalid_findings",
                                    "Invalid entries found (once per change), by rule.",
                                    ["rule"], registry=r)
        self.leader = Gauge("beatspec_leader", "1 while this process holds the lock.",
                            registry=r)
        self.lock_ttl = Gauge("beatspec_lock_ttl_seconds",
                              "Remaining lock TTL at the last extension.", registry=r)
        self.elections = Counter("beatspec_lock_acquired",
                                 "Times this process became the leader.", registry=r)
        self.step_downs = Counter("beatspec_lock_lost",
                                  "Times this process lost the lock while leading.", registry=r)
        self.tick = Histogram("beatspec_tick_duration_seconds", "Duration of one tick.",
                              registry=r)
        self.batch = Histogram("beatspec_batch_size", "Due members handled per batch.",
                               buckets=_BATCH, registry=r)
        self.redis_errors = Counter("beatspec_redis_errors",
                                    "Redis errors the loop recovered from.", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP on ``host:port`` (a daemon thread)."""
        start_http_server(port, addr=host, registry=self.registry)

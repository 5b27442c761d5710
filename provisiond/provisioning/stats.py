"""Phone-side counters and sampled structured logs, instead of a per-request access log.

A boot storm is tens of thousands of requests a minute: logging each would cost more than
serving it. So every request only bumps a counter (by protocol and outcome; files served by
vendor; render-cache hits and misses), and one request in `sample_every` is logged as one JSON
line with its details. The metrics endpoint exports the counters.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

from provisiond.domain.phone import PhoneRequest, PhoneResponse

log = logging.getLogger("provisiond.phone")


@dataclass
class PhoneStats:
    """Counters of one process's phone side."""

    sample_every: int = 1000
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (protocol, outcome)
    served: Counter[tuple[str, str]] = field(default_factory=Counter)  # (protocol, vendor)
    cache_hits: int = 0
    cache_misses: int = 0
    # Render latency histogram (seconds): cumulative counts per upper bound, Prometheus-style.
    render_buckets: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
    render_counts: list[int] = field(default_factory=lambda: [0] * 9)  # + the +Inf bucket
    render_sum: float = 0.0
    _seen: int = 0

    def rendered(self, seconds: float) -> None:
        """Count one template rendering that took `seconds`."""
        self.render_sum += seconds
        for index, bound in enumerate(self.render_buckets):
            if seconds <= bound:
                self.render_counts[index] += 1
                return
        self.render_counts[-1] += 1

    def record(self, request: PhoneRequest, answer: PhoneResponse, vendor: str | None) -> None:
        """Count one answered request; log it when it is the sampled one."""
        self.requests[request.protocol, answer.outcome.value] += 1
        if answer.ok and vendor is not None:
            self.served[request.protocol, vendor] += 1
        self._seen += 1
        if self.sample_every and self._seen % self.sample_every == 0:
            log.info(
                json.dumps(
                    {
                        "event": "phone_request_sample",
                        "protocol": request.protocol,
                        "method": request.method,
                        "path": request.path[:128],
                        "client": request.client_ip,
                        "user_agent": (request.user_agent or "")[:128],
                        "outcome": answer.outcome.value,
                        "vendor": vendor,
                        "seen": self._seen,
                    }
                )
            )

"""The Grafana dashboard in docs/ queries only metrics the server exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rtserver.ops.metrics import Metrics

DASHBOARD = Path(__file__).parents[2] / "docs" / "operations" / "grafana-dashboard.json"


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_every_panel_queries_exported_metrics_only() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\brtserver_[a-z_]+", expr)}
    assert used, "the dashboard queries no rtserver metric"
    assert used <= exported_names(), used - exported_names()
    pinned = {
        "rtserver_connections",
        "rtserver_rooms",
        "rtserver_streams_running",
        "rtserver_stream_ends_total",
        "rtserver_ttft_seconds_bucket",
        "rtserver_tokens_total",
        "rtserver_slow_consumer_drops_total",
        "rtserver_resumes_total",
        "rtserver_provider_errors_total",
    }
    assert pinned <= used, pinned - used
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])

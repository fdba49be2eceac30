"""The Prometheus text exposition of a Monitor's latest values (``Monitor.to_prometheus``): a
gauge per :data:`~workbench.monitoring.metrics.SERIES` name, ``workbench_<series>``, and the
stages as one gauge with a ``stage`` label, ``workbench_stage_seconds{stage="read"}``: parts of
one whole, as Prometheus' naming conventions have them (base unit seconds, in the name).

>>> text = prometheus_text({"samples_per_s": 5.0, "stage_read_s": 0.25})
>>> [ln for ln in text.splitlines() if not ln.startswith("#")]
['workbench_samples_per_s 5.0', 'workbench_stage_seconds{stage="read"} 0.25']
"""

from __future__ import annotations

from .metrics import SERIES, STAGE_SERIES

__all__: list[str] = []

STAGE_GAUGE = "workbench_stage_seconds"
STAGE_GAUGE_HELP = "seconds a batch spent in each stage, mean of the loader's last 200 batches"


def prometheus_text(values: dict[str, float]) -> str:
    """``values`` (:func:`~workbench.monitoring.metrics.scalars` of a sample) as gauges, in the
    text exposition format (needs ``prometheus_client``)."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    stage = None
    for name, value in values.items():
        if name in STAGE_SERIES:
            if stage is None:  # only where the loader timed its stages
                stage = Gauge(STAGE_GAUGE, STAGE_GAUGE_HELP, ["stage"], registry=registry)
            stage.labels(STAGE_SERIES[name]).set(value)
        else:
            spec = SERIES[name]
            Gauge(f"workbench_{name}", f"{spec.help} ({spec.unit})", registry=registry).set(value)
    return generate_latest(registry).decode()

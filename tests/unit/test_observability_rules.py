"""The shipped Prometheus rules and Grafana dashboard: valid, and every PromQL expression uses
only the metric names the metric classes define (ProcessorMetrics, ProjectorMetrics,
GatewayMetrics; listed in docs/observability.md)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from cqrs.gateway.metrics import GatewayMetrics
from pipeline.processor.metrics import ProcessorMetrics
from projections.runtime.metrics import ProjectorMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules.yml"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/pipeline.json"



def _defined() -> tuple[set[str], set[str]]:
    """The series names the real metric classes define (what a scrape can show), and their
    histograms: a metric renamed in code and not in the rules or the dashboard fails here."""
    registry = CollectorRegistry()
    ProcessorMetrics(registry, "t.")
    ProjectorMetrics(registry, "t.", "postgres")
    GatewayMetrics("t.", registry)
    names: set[str] = set()
    histograms: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            histograms.add(family.name)
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names, histograms


SPEC_METRICS, HISTOGRAMS = _defined()
# The labels the spec gives each metric family (beyond `le` of histograms).
SPEC_LABELS = {"prefix", "outcome", "partition", "projector", "method", "route", "status"}
BUILTIN = {"up"}  # Prometheus's own series per target

FUNCTIONS = {
    "sum", "max", "min", "avg", "rate", "increase", "delta", "histogram_quantile", "absent",
    "by", "without", "or", "and", "unless", "on", "ignoring", "time", "count",
    "humanizeDuration",
}


def _rules(path: Path) -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", [])]
    exprs += [var["definition"] for var in dashboard["templating"]["list"]]
    return exprs


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (label matchers and strings removed first)."""
    bare = re.sub(r"\{[^}]*\}", " ", re.sub(r'"[^"]*"', '""', expr))
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    return {name for name in re.findall(r"[a-zA-Z_:][\w:]*", bare)
            if name not in FUNCTIONS and not re.fullmatch(r"\d.*|e\d*", name)}


def _all_exprs() -> list[str]:
    return [rule["expr"] for rule in _rules(RULES) + _rules(ALERTS)] + _dashboard_exprs()


def test_the_defined_names_are_read_from_the_metric_classes() -> None:
    assert {"cqrs_processor_records_total", "cqrs_projector_dlq_depth",
            "cqrs_gateway_request_duration_seconds_bucket"} <= SPEC_METRICS
    assert "cqrs_projector_event_age_seconds" in HISTOGRAMS


def test_metric_name_extraction() -> None:
    assert metric_names('sum by (le) (rate(cqrs_projector_lag{prefix=~"$prefix"}[1m]))') == {
        "cqrs_projector_lag"}
    assert metric_names("label_values(cqrs_processor_up, prefix)") >= {"cqrs_processor_up"}


@pytest.mark.parametrize("expr", _all_exprs())
def test_every_expression_uses_only_metrics_of_the_spec(expr: str) -> None:
    recorded = {rule["record"] for rule in _rules(RULES)}
    names = metric_names(expr) - {"label_values", "prefix"}
    unknown = names - SPEC_METRICS - recorded - BUILTIN
    assert not unknown, f"{expr!r} uses {unknown}, which the spec does not define"
    assert names & (SPEC_METRICS | recorded | BUILTIN), expr
    for matcher in re.findall(r"\{([^}]*)\}", expr):
        labels = set(re.findall(r"(\w+)\s*[!=]~?", matcher))
        assert labels <= SPEC_LABELS | {"job", "le"}, (expr, labels)


def test_recording_rules_are_named_level_metric_operation() -> None:
    for rule in _rules(RULES):
        assert re.fullmatch(r"cqrs:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_the_alerts_the_pipeline_needs_are_shipped() -> None:
    alerts = {rule["alert"]: rule for rule in _rules(ALERTS)}
    assert "cqrs_projector_lag_seconds" in alerts["CqrsProjectorLagging"]["expr"]
    assert alerts["CqrsProjectorDlqGrowing"]["expr"] == (
        'increase(cqrs_projector_records_total{outcome="dead_lettered"}[5m]) > 0')
    assert "cqrs_projector_lag) > 0" in alerts["CqrsProjectorStalled"]["expr"]
    assert alerts["CqrsProjectorStalled"]["for"] == "2m"
    assert 'up{job="cqrs-processor"} == 0' in alerts["CqrsProcessorDown"]["expr"]
    assert "absent(" in alerts["CqrsProcessorDown"]["expr"]
    assert "increase(cqrs_processor_producer_restarts_total[5m]) > 3" in (
        alerts["CqrsProcessorProducerRestartLoop"]["expr"])
    for rule in alerts.values():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(["promtool", "check", "rules", str(RULES), str(ALERTS)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

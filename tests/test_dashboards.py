"""Grafana dashboards: schema, queries against exported series, golden files, provisioning."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from exporter import conventions as c
from exporter.cli import main
from exporter.compile import compile_groups
from exporter.dashboards import build_dashboards, render_dashboard
from exporter.dashboards_panels import DATASOURCE_UID, currency_unit, dashboard_uid
from exporter.demo.collector import FAMILIES
from exporter.promql.analysis import selected_metric_names
from exporter.rules.load import load_rule_files
from exporter.rules.model import AlertingRule, RecordingRule, RuleSet
from exporter.selfmetrics import SelfMetrics
from tests.shared_data import REPO_ROOT, require_shared

RULE_FILES = sorted(str(p) for p in (REPO_ROOT / "rules").glob("*.yaml"))
COMMITTED = REPO_ROOT / "grafana" / "dashboards"
PROVISIONING = REPO_ROOT / "grafana" / "provisioning"
SCHEMA_UPSTREAM = ("grafana-foundation-sdk's JSON schemas for Grafana 11.6 "
                   "(github.com/grafana/grafana-foundation-sdk, branch v11.6.x+cog-v0.0.x)")

# Values a user could pick for each template variable; Grafana puts the text in as is.
VARIABLE_VALUES = {
    "${datasource}": DATASOURCE_UID, "$__rate_interval": "1m", "$service": "checkout",
    "$slo": "checkout-availability", "$job": "value-exporter", "$instance": "127.0.0.1:9877",
}


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    """The demo shop's rule files, loaded as `make dashboards` loads them."""
    return load_rule_files(RULE_FILES)


@pytest.fixture(scope="module")
def dashboards(ruleset: RuleSet) -> dict[str, dict[str, Any]]:
    """The generated dashboards by file name."""
    return build_dashboards(ruleset)


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _targets(dashboards: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, dashboard in dashboards.items():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                yield f"{name} / {panel['title']} / {target['refId']}", target


def _schema(name: str) -> dict[str, Any]:
    folder = require_shared("grafana-schema/11.6", "Grafana 11.6 JSON schemas", SCHEMA_UPSTREAM)
    loaded: dict[str, Any] = json.loads((folder / f"{name}.jsonschema.json").read_text())
    return loaded


def _validate(instance: Any, schema_file: str, definition: str | None = None) -> list[str]:
    """Every schema error, as `path: message`; each schema file is self-contained."""
    schema = _schema(schema_file)
    if definition is not None:
        schema = {**schema, "$ref": f"#/definitions/{definition}"}
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(instance)]


def test_dashboards_validate_against_grafana_schemas(
        dashboards: dict[str, dict[str, Any]]) -> None:
    """Each dashboard, each panel's options and custom field config, and each Prometheus
    query validate against Grafana 11.6's schemas."""
    errors: list[str] = []
    for name, dashboard in dashboards.items():
        errors += [f"{name}: {e}" for e in _validate(dashboard, "dashboard")]
        for panel in _panels(dashboard):
            where = f"{name} / {panel['title']}"
            if panel["type"] == "row":
                continue
            errors += [f"{where}: options {e}"
                       for e in _validate(panel.get("options", {}), panel["type"], "Options")]
            custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
            if custom is not None:
                errors += [f"{where}: custom {e}"
                           for e in _validate(custom, panel["type"], "FieldConfig")]
            for target in panel["targets"]:
                errors += [f"{where}: target {e}" for e in _validate(target, "prometheus")]
    assert errors == []


def test_units_are_grafana_unit_ids(dashboards: dict[str, dict[str, Any]]) -> None:
    """Every panel unit is one of Grafana's unit ids (or a custom suffix), money included."""
    known = {d["const"] for d in _schema("units")["definitions"].values() if "const" in d}
    units = {panel["title"]: panel["fieldConfig"]["defaults"].get("unit", "none")
             for dashboard in dashboards.values() for panel in _panels(dashboard)
             if panel["type"] != "row"}
    assert {t: u for t, u in units.items() if u not in known and not u.startswith("suffix:")} == {}
    # The demo's money is in euros: Grafana's own currency unit, not a suffix.
    assert units["Revenue at risk, last hour"] == "currencyEUR"


@pytest.mark.parametrize(("code", "unit"), [
    ("eur", "currencyEUR"),  # Grafana formats EUR itself
    ("usd", "currencyUSD"),
    ("xof", "suffix: XOF"),  # not in Grafana's list: the code as a suffix
], ids=["euro", "dollar", "unlisted-currency"])
def test_currency_unit(code: str, unit: str) -> None:
    """An ISO-4217 series suffix maps to Grafana's currency unit, else to a suffix unit."""
    assert currency_unit(code) == unit


# The sample names a metric family of each type exposes (Prometheus text format).
SAMPLE_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "info": ("_info",),
                   "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


def _exported_names(ruleset: RuleSet) -> set[str]:
    """Series someone exports: rule outputs, the demo shop's scrape, the sidecar's own."""
    names: set[str] = set()
    for file in ruleset.files:
        for group in compile_groups(ruleset, file):
            for rule in group.rules:
                if isinstance(rule, RecordingRule):
                    names.add(rule.name)
                elif isinstance(rule, AlertingRule):
                    names |= {c.ALERTS, c.ALERTS_FOR_STATE}
    for spec in FAMILIES:
        names |= {spec.name + s for s in SAMPLE_SUFFIXES[spec.kind]}
    # Labelled metrics have no samples until first used: name them from their type.
    for family in SelfMetrics().registry.collect():
        names |= {family.name + s for s in SAMPLE_SUFFIXES[family.type]}
    return names


def _substituted(expr: str) -> str:
    for variable, value in VARIABLE_VALUES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_query_parses_and_reads_exported_series(
        ruleset: RuleSet, dashboards: dict[str, dict[str, Any]]) -> None:
    """With its variables filled in, each query parses as PromQL and reads only series the
    rules record, the demo shop exposes or the sidecar exports about itself."""
    exported = _exported_names(ruleset)
    unknown: dict[str, list[str]] = {}
    for where, target in _targets(dashboards):
        names = selected_metric_names([_substituted(target["expr"])])
        assert names is not None, f"{where}: a selector without a metric name"
        missing = sorted(names - exported)
        if missing:
            unknown[where] = missing
    assert unknown == {}


def test_every_query_uses_the_dashboard_variables(
        dashboards: dict[str, dict[str, Any]]) -> None:
    """Each query runs on the chosen data source and filters by every query variable of its
    dashboard, so picking a service or SLO changes every panel."""
    problems = []
    for name, dashboard in dashboards.items():
        variables = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                where = f"{name} / {panel['title']} / {target['refId']}"
                if target["datasource"]["uid"] != "${datasource}":
                    problems.append(f"{where}: fixed data source")
                problems += [f"{where}: ignores ${v}" for v in variables
                             if not re.search(rf"\${v}\b", target["expr"])]
    assert problems == []


def test_three_dashboards_with_variables_and_defaults(
        dashboards: dict[str, dict[str, Any]]) -> None:
    """Business value and service levels filter by service and SLO, sidecar health by job and
    instance; the data source defaults to the provisioned one."""
    variables = {name: [v["name"] for v in d["templating"]["list"]]
                 for name, d in dashboards.items()}
    assert variables == {
        "business-value.json": ["datasource", "service", "slo"],
        "service-levels.json": ["datasource", "service", "slo"],
        "sidecar-health.json": ["datasource", "job", "instance"],
    }
    for dashboard in dashboards.values():
        datasource = dashboard["templating"]["list"][0]
        assert (datasource["type"], datasource["current"]["value"]) == (
            "datasource", DATASOURCE_UID)


def test_ids_refids_and_uids_are_stable(dashboards: dict[str, dict[str, Any]]) -> None:
    """Panel ids run 1..n in layout order, refIds A, B, ... per panel, and each uid is the
    hash of kind and service that links point at."""
    for name, dashboard in dashboards.items():
        ids = [p["id"] for p in _panels(dashboard)]
        assert ids == list(range(1, len(ids) + 1)), name
        for panel in _panels(dashboard):
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert refs == [chr(ord("A") + i) for i in range(len(refs))], panel["title"]
        assert dashboard["uid"] == dashboard_uid(name.removesuffix(".json")), name
    # Fixed by construction: sha256("business-value\0all")[:16], written here so a change
    # of the scheme (which breaks every bookmark and link) fails loudly.
    assert dashboards["business-value.json"]["uid"] == "ve-20b7f1b2ef939c9e"


def test_dashboards_link_to_each_other(dashboards: dict[str, dict[str, Any]]) -> None:
    """Each dashboard links to the two others, keeping time range and variables."""
    uids = {d["uid"]: name for name, d in dashboards.items()}
    for name, dashboard in dashboards.items():
        targets = sorted(uids[link["url"].removeprefix("/d/")] for link in dashboard["links"])
        assert targets == sorted(set(uids.values()) - {name})
        assert all(link["includeVars"] and link["keepTime"] for link in dashboard["links"])


def test_business_panels_show_the_model(dashboards: dict[str, dict[str, Any]]) -> None:
    """The executive dashboard shows money stats with sparklines, the journey funnel as a bar
    gauge in stage order, and a progress gauge plus on-track status per improvement."""
    panels = {p["title"]: p for p in _panels(dashboards["business-value.json"])}
    money = panels["Value delivered, last hour"]
    assert (money["type"], money["options"]["graphMode"]) == ("stat", "area")
    funnel = panels["Customers reaching each step (last 1d)"]
    assert funnel["type"] == "bargauge"
    # The demo journey's stages, in order: explore, offer, agree.
    assert [t["legendFormat"] for t in funnel["targets"]] == [
        "1. explore", "2. offer", "3. agree"]
    progress = panels["payment-success: progress to target"]
    assert progress["type"] == "gauge"
    steps = progress["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [
        (None, "red"), (0, "orange"), (1, "green")]
    on_track = panels["payment-success: on track?"]["fieldConfig"]["defaults"]["mappings"]
    assert on_track[0]["options"]["1"]["text"] == "On track"


def test_burn_rate_thresholds_follow_each_slo(dashboards: dict[str, dict[str, Any]]) -> None:
    """The burn-rate panel draws each tier's factor per SLO: page-fast is 14.4 for the 30d
    checkout SLO and 13.44 for the 28d payment SLO."""
    panel = next(p for p in _panels(dashboards["service-levels.json"])
                 if p["title"] == "Burn rate per alert window")
    page_fast = next(t["expr"] for t in panel["targets"]
                     if t["legendFormat"] == "{{slo}} page-fast threshold")
    # 0.02 of the budget in 1h: 0.02 x 720h / 1h = 14.4; 0.02 x 672h / 1h = 13.44.
    assert 'slo="checkout-availability", slo=~"$slo", service=~"$service"}) * 0 + 14.4' in page_fast
    assert 'slo="payment-success", slo=~"$slo", service=~"$service"}) * 0 + 13.44' in page_fast


def test_schema_check_catches_a_bad_panel(dashboards: dict[str, dict[str, Any]]) -> None:
    """The schema check is not vacuous: an unknown stat graph mode and a query without its
    expression are reported."""
    stat = next(p for p in _panels(dashboards["business-value.json"]) if p["type"] == "stat")
    assert _validate({**stat["options"], "graphMode": "sparkles"}, "stat", "Options") != []
    target = {k: v for k, v in stat["targets"][0].items() if k != "expr"}
    assert _validate(target, "prometheus") != []


def test_every_panel_explains_itself(dashboards: dict[str, dict[str, Any]]) -> None:
    """Every panel has a title and a description a reader sees on hover."""
    bare = [f"{name} / {p['title']}" for name, d in dashboards.items() for p in _panels(d)
            if p["type"] != "row" and not (p.get("title") and p.get("description"))]
    assert bare == []


def test_one_service_set_links_within_itself(ruleset: RuleSet) -> None:
    """`--service checkout` names the service in titles, file names and uids, presets the
    service variable, and links only to the same service's dashboards."""
    scoped = build_dashboards(ruleset, "checkout")
    assert sorted(scoped) == ["business-value-checkout.json", "service-levels-checkout.json",
                              "sidecar-health-checkout.json"]
    business = scoped["business-value-checkout.json"]
    assert business["title"] == "Business value: checkout"
    assert business["uid"] == dashboard_uid("business-value", "checkout")
    assert business["uid"] != dashboard_uid("business-value")
    service = next(v for v in business["templating"]["list"] if v["name"] == "service")
    assert service["current"]["value"] == "checkout"
    uids = {d["uid"] for d in scoped.values()}
    assert {link["url"].removeprefix("/d/") for link in business["links"]} <= uids


def test_cli_rejects_an_unknown_service(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`--service` must name a service of the rule files' SLOs; the message lists them."""
    assert main(["dashboards", *RULE_FILES, "-o", str(tmp_path / "o"), "--service", "nope"]) == 1
    assert "expected one of the rule files' SLO services: checkout, payment, shop" in (
        capsys.readouterr().err)


def test_committed_dashboards_regenerate_byte_for_byte(
        dashboards: dict[str, dict[str, Any]]) -> None:
    """grafana/dashboards/ holds exactly what `make dashboards` generates from rules/."""
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED.glob("*.json")}
    generated = {name: render_dashboard(d) for name, d in dashboards.items()}
    assert sorted(committed) == sorted(generated)
    stale = [name for name in generated if committed[name] != generated[name]]
    assert stale == [], "run `make dashboards` and commit the result"


def test_generation_never_mutates_the_model(ruleset: RuleSet) -> None:
    """Building the dashboards leaves the rule set equal to a copy taken before, and twice
    gives the same text."""
    before = copy.deepcopy(ruleset)
    first = {n: render_dashboard(d) for n, d in build_dashboards(ruleset).items()}
    second = {n: render_dashboard(d) for n, d in build_dashboards(ruleset).items()}
    assert ruleset == before
    assert first == second


def test_cli_writes_the_dashboards(tmp_path: Path) -> None:
    """`value-exporter dashboards RULEFILE... -o DIR` writes the three files, readable by all."""
    assert main(["dashboards", *RULE_FILES, "-o", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["business-value.json", "service-levels.json", "sidecar-health.json"]
    assert (tmp_path / "service-levels.json").stat().st_mode & 0o044 == 0o044


def test_cli_reports_rule_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken rule file gives `file:line:col: ...` on stderr, exit 1 and no output files."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: 'sum('\n")
    out = tmp_path / "out"
    assert main(["dashboards", str(bad), "-o", str(out)]) == 1
    assert re.match(rf"{re.escape(str(bad))}:\d+:\d+: ", capsys.readouterr().err)
    assert not out.exists()


# Keys Grafana documents for provisioning files (Administration > Provision Grafana, 11.6).
DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {"name", "type", "access", "orgId", "uid", "url", "user", "database",
                   "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "jsonData",
                   "secureJsonData", "version", "editable"}
PROVIDER_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion",
                 "updateIntervalSeconds", "allowUiUpdates", "options"}
PROVIDER_OPTION_KEYS = {"path", "foldersFromFilesStructure"}


def test_datasource_provisioning_shape() -> None:
    """The data source file uses Grafana's documented keys and the uid the dashboards expect."""
    files = list((PROVISIONING / "datasources").glob("*.yaml"))
    assert len(files) == 1
    doc = yaml.safe_load(files[0].read_text())
    assert set(doc) <= DATASOURCE_FILE_KEYS and doc["apiVersion"] == 1
    [source] = doc["datasources"]
    assert set(source) <= DATASOURCE_KEYS
    assert (source["type"], source["uid"], source["access"]) == (
        "prometheus", DATASOURCE_UID, "proxy")
    assert source["url"].startswith(("http://", "https://"))


def test_dashboard_provider_shape() -> None:
    """The dashboard provider is a file provider with an absolute path, documented keys only."""
    files = list((PROVISIONING / "dashboards").glob("*.yaml"))
    assert len(files) == 1
    doc = yaml.safe_load(files[0].read_text())
    assert set(doc) <= PROVIDER_FILE_KEYS and doc["apiVersion"] == 1
    [provider] = doc["providers"]
    assert set(provider) <= PROVIDER_KEYS and set(provider["options"]) <= PROVIDER_OPTION_KEYS
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    assert isinstance(provider["updateIntervalSeconds"], int)

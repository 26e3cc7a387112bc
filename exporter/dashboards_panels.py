"""dashboards (shared pieces): data source, variables, links, queries and panel builders."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import cast

from grafana_foundation_sdk.builders import bargauge, gauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from exporter import conventions as c

# The provisioned data source's uid (grafana/provisioning/datasources/): the datasource
# variable defaults to it, so a fresh Grafana shows data without a click.
DATASOURCE_UID = "value-exporter-prometheus"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Kinds of dashboard; each kind's uid is a hash of the kind and the service scope.
BUSINESS, SERVICE_LEVELS, HEALTH = "business-value", "service-levels", "sidecar-health"
TITLES = {BUSINESS: "Business value", SERVICE_LEVELS: "Service levels",
          HEALTH: "Sidecar health"}
ALL_SERVICES = "all"

# Grafana's currency unit ids (ISO codes it formats itself); others get a suffix unit.
GRAFANA_CURRENCIES = frozenset((
    "USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK", "NOK", "SEK", "CZK",
    "CHF", "PLN", "BTC", "ZAR", "INR", "KRW", "IDR", "PHP", "VND", "TRY", "MYR", "XPF",
    "BGN", "PYG", "UYU", "ILS",
))
GREEN, AMBER, RED, BLUE = "green", "orange", "red", "blue"
TIMES = "suffix:×"  # a burn rate: how many times faster than sustainable (Grafana has no unit)


def dashboard_uid(kind: str, service: str = ALL_SERVICES) -> str:
    """A stable uid from kind and service, so links between dashboards survive edits."""
    digest = hashlib.sha256(f"{kind}\x00{service}".encode()).hexdigest()
    return f"ve-{digest[:16]}"


def currency_unit(code: str) -> str:
    """The Grafana unit id for an ISO-4217 code (`eur` -> `currencyEUR`)."""
    upper = code.upper()
    return f"currency{upper}" if upper in GRAFANA_CURRENCIES else f"suffix: {upper}"


def new_dashboard(kind: str, description: str, tags: Sequence[str],
                  service: str = ALL_SERVICES) -> db.Dashboard:
    """A dashboard of one kind with its stable uid, a sane default range and refresh."""
    title = TITLES[kind] if service == ALL_SERVICES else f"{TITLES[kind]}: {service}"
    return (db.Dashboard(title).uid(dashboard_uid(kind, service)).description(description)
            .tags(["value-exporter", *tags]).time("now-7d", "now").refresh("1m")
            .timezone("browser").editable().tooltip(dm.DashboardCursorSync.CROSSHAIR))


def datasource_variable() -> db.DatasourceVariable:
    """The Prometheus data source picker, defaulting to the provisioned one."""
    return (db.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .current(dm.VariableOption(text="Prometheus", value=DATASOURCE_UID)))


def query_variable(name: str, label: str, query: str, description: str,
                   default: str | None = None) -> db.QueryVariable:
    """A multi-select label-values variable with `All` meaning any value (`.*`)."""
    current = (dm.VariableOption(text="All", value="$__all") if default is None
               else dm.VariableOption(text=default, value=default))
    return (db.QueryVariable(name).label(label).description(description).query(query)
            .datasource(DATASOURCE).multi(True).include_all(True).all_value(".*")
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .current(current))


def service_variables(service: str) -> list[db.QueryVariable]:
    """`service` (preset on a one-service dashboard) and `slo`, the SLOs of those services."""
    return [
        query_variable("service", "Service", f"label_values({c.SLO_INFO}, service)",
                       "The services shown.", None if service == ALL_SERVICES else service),
        query_variable("slo", "Objective",
                       f'label_values({c.SLO_INFO}{{service=~"$service"}}, slo)',
                       "The service level objectives shown, among those of the services."),
    ]


def links(kind: str, service: str = ALL_SERVICES) -> list[Builder[dm.DashboardLink]]:
    """Links to the two other dashboards, carrying the time range and the variables."""
    return [db.DashboardLink(TITLES[other]).type(dm.DashboardLinkType.LINK)
            .url(f"/d/{dashboard_uid(other, service)}").icon("dashboard").include_vars(True)
            .keep_time(True).tooltip(f"Open the {TITLES[other]} dashboard")
            for other in (BUSINESS, SERVICE_LEVELS, HEALTH) if other != kind]


def drilldown(kind: str, title: str, service: str = ALL_SERVICES) -> Builder[dm.DashboardLink]:
    """A panel link to another dashboard, from a business number to the SLO behind it."""
    return (db.DashboardLink(title).type(dm.DashboardLinkType.LINK)
            .url(f"/d/{dashboard_uid(kind, service)}").include_vars(True).keep_time(True))


def by_names(names: Sequence[str]) -> dm.MatcherConfig:
    """An override matcher for series by display name (legend text), e.g. one SLO's line."""
    return dm.MatcherConfig(id_val="byNames", options={"mode": "include", "names": list(names)})


class Queries:
    """Prometheus targets with explicit refIds A, B, C, ... in the order they are added."""

    def __init__(self) -> None:
        self.targets: list[Builder[Dataquery]] = []
        self.refs: list[str] = []

    def add(self, expr: str, legend: str = "", *, instant: bool = False,
            table_format: bool = False) -> Queries:
        """Add one target; instant targets read the last value only (stats, tables)."""
        ref = chr(ord("A") + len(self.targets))
        self.refs.append(ref)
        q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
        q = q.legend_format(legend or "__auto")
        q = q.instant() if instant else q.range()
        if table_format:
            q = q.format(pm.PromQueryFormat.TABLE)
        # The SDK types a panel's targets as any data query; a Prometheus one is one of them.
        self.targets.append(cast(Builder[Dataquery], q))
        return self


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (Grafana's base step)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=color) for v, color in pairs])


def _last() -> cb.ReduceDataOptions:
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def stat_panel(title: str, description: str, unit: str, queries: Queries, *,
               thresholds: db.ThresholdsConfig | None = None, width: int = 6,
               height: int = 5, sparkline: bool = True, decimals: int | None = None) -> stat.Panel:
    """A big number with a sparkline of the dashboard's time range."""
    panel = (stat.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(queries.targets).unit(unit).span(width).height(height)
             .reduce_options(_last()).text_mode(cm.BigValueTextMode.AUTO)
             .graph_mode(cm.BigValueGraphMode.AREA if sparkline else cm.BigValueGraphMode.NONE)
             .color_mode(cm.BigValueColorMode.VALUE)
             .thresholds(thresholds or steps((None, BLUE))))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def timeseries_panel(title: str, description: str, unit: str, queries: Queries, *,
                     width: int = 12, height: int = 8,
                     thresholds: db.ThresholdsConfig | None = None) -> timeseries.Panel:
    """Lines over the dashboard's time range; thresholds, when given, drawn as dashed lines."""
    panel = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(queries.targets).unit(unit).span(width).height(height)
             .line_width(2).fill_opacity(10).span_nulls(False)
             .legend(_legend()))
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    return panel


def _legend() -> Builder[cm.VizLegendOptions]:
    return (cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull"]))


def bargauge_panel(title: str, description: str, unit: str, queries: Queries, *,
                   width: int = 12, height: int = 8, maximum: float | None = None,
                   thresholds: db.ThresholdsConfig | None = None) -> bargauge.Panel:
    """Horizontal bars, one per series, in query order (a funnel reads top to bottom)."""
    panel = (bargauge.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(queries.targets).unit(unit).span(width).height(height)
             .orientation(cm.VizOrientation.HORIZONTAL)
             .display_mode(cm.BarGaugeDisplayMode.GRADIENT).show_unfilled(True)
             .reduce_options(_last()).min(0)
             .thresholds(thresholds or steps((None, BLUE))))
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def gauge_panel(title: str, description: str, unit: str, queries: Queries, *,
                thresholds: db.ThresholdsConfig, width: int = 6, height: int = 6,
                minimum: float = 0, maximum: float = 1) -> gauge.Panel:
    """A dial from minimum to maximum with threshold colours and markers."""
    return (gauge.Panel().title(title).description(description).datasource(DATASOURCE)
            .targets(queries.targets).unit(unit).span(width).height(height)
            .reduce_options(_last()).min(minimum).max(maximum).thresholds(thresholds)
            .show_threshold_markers(True).show_threshold_labels(False))


def table_panel(title: str, description: str, queries: Queries, *, width: int = 24,
                height: int = 8) -> table.Panel:
    """Rows of label sets, one per series (instant, table format)."""
    return (table.Panel().title(title).description(description).datasource(DATASOURCE)
            .targets(queries.targets).span(width).height(height)
            .show_header(True).frame_index(0).no_value("Nothing firing")
            # Instant table queries add a time, a value and the metric name: noise here.
            .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True, "Value": True, "__name__": True}})))


def row(title: str) -> db.Row:
    """A full-width section heading."""
    return db.Row(title)

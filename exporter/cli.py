"""Command line: one `value-exporter` entry point with a subcommand per task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

ENVIRONMENT_HELP = """environment:
  VALUE_EXPORTER_CONFIG   config file for `run` when --config is not given
  VALUE_EXPORTER_LISTEN   listen address, overriding `listen` in the config file
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="value-exporter",
        description=(
            "Prometheus sidecar that derives SLOs and business value from technology metrics."
        ),
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon", epilog=ENVIRONMENT_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", help="config file (default: $VALUE_EXPORTER_CONFIG)")
    run.add_argument("--web.listen-address", dest="listen",
                     help="address to serve on (default: the config's `listen`)")
    run.add_argument("--web.config.file", dest="web_config", default=None,
                     help="TLS and basic auth for the endpoints, in exporter-toolkit's "
                          "web-config.yml shape (reread on reload)")
    run.add_argument("--log.level", dest="log_level", default="info",
                     choices=("debug", "info", "warning", "error"))

    demo = sub.add_parser("demo", help="start the bundled demo shop and the daemon on it")
    demo.add_argument("--shop-only", action="store_true",
                      help="serve only the demo shop's metrics (no daemon)")
    demo.add_argument("--shop-listen", default="127.0.0.1:9878", help="address of the demo shop")
    demo.add_argument("--listen", default="127.0.0.1:9877", help="address of the daemon")
    demo.add_argument("--deterministic", action="store_true",
                      help="linear counters and no random bursts (for tests)")
    demo.add_argument("--rules", default=None,
                      help="rule files folder (default: the rules/ folder of this checkout)")
    demo.add_argument("--log.level", dest="log_level", default="info",
                      choices=("debug", "info", "warning", "error"))
    demo.add_argument("--web.config.file", dest="web_config", default=None,
                      help="TLS and basic auth for the daemon's endpoints (as for `run`)")

    check = sub.add_parser("check", help="validate configuration, rules or metrics")
    check_sub = check.add_subparsers(dest="what", required=True, metavar="WHAT")
    config = check_sub.add_parser("config", help="validate a daemon configuration file")
    config.add_argument("file")
    web_config = check_sub.add_parser(
        "web-config", help="validate a --web.config.file (TLS files, bcrypt hashes, headers)")
    web_config.add_argument("file")
    rules = check_sub.add_parser("rules", help="validate rule files (every error at once)")
    rules.add_argument("files", nargs="+", metavar="FILE")
    metrics = check_sub.add_parser(
        "metrics", help="validate an exposition (Prometheus text or OpenMetrics) strictly"
    )
    metrics.add_argument("file", nargs="?", default="-", help="file to read, or - for stdin")
    metrics.add_argument(
        "--format",
        choices=("text", "openmetrics"),
        default=None,
        help="exposition format (default: OpenMetrics if the input ends with # EOF, else text)",
    )

    compile_ = sub.add_parser(
        "compile", help="write Prometheus rules (or a PrometheusRule) for rule files with SLOs")
    compile_.add_argument("files", nargs="+", metavar="RULEFILE")
    compile_.add_argument("-o", "--output", default="-",
                          help="output folder (default: standard output)")
    compile_.add_argument("--format", choices=("rules", "prometheusrule"), default="rules")
    compile_.add_argument(
        "--from-sidecars", action="store_true",
        help="compute each SLO from the event counters of several sidecars (one per pod) "
             "instead of from the raw SLI")
    compile_.add_argument(
        "--interval", default="1m",
        help="evaluation interval of the generated SLO groups; use the sidecar's "
             "evaluation_interval so both engines count the same intervals (default: 1m)")

    dashboards = sub.add_parser(
        "dashboards", help="write the Grafana dashboards (business value, service levels, "
                           "sidecar health) for rule files")
    dashboards.add_argument("files", nargs="+", metavar="RULEFILE")
    dashboards.add_argument("-o", "--output", required=True, help="output folder")
    dashboards.add_argument(
        "--service", default=None,
        help="one service's set (titles, uids and file names name it; the service variable "
             "starts on it); default: one set for all services")

    import_ = sub.add_parser("import", help="convert OpenSLO or Sloth SLO specs to a rule file")
    import_.add_argument("kind", choices=("openslo", "sloth"))
    import_.add_argument("file")
    import_.add_argument("-o", "--output", default="-", help="output file (default: stdout)")

    test = sub.add_parser("test", help="run rule unit tests in promtool's `test rules` format")
    test.add_argument("files", nargs="+", metavar="FILE")

    promqltest = sub.add_parser(
        "promqltest", help="run PromQL test scripts in Prometheus's promqltest format"
    )
    promqltest.add_argument("files", nargs="+", metavar="FILE")

    report = sub.add_parser(
        "report", help="write the business value report for a calendar month or quarter (UTC)")
    report.add_argument("--config", help="config file (default: $VALUE_EXPORTER_CONFIG)")
    report.add_argument("--period", choices=("month", "quarter"), default="month")
    report.add_argument("--at", help="a day in the period, YYYY-MM-DD (default: now)")
    report.add_argument("--format", choices=("md", "html"), default="md")
    report.add_argument("-o", "--output", required=True, help="output file")
    report.add_argument("--prometheus", metavar="URL",
                        help="read the series from this Prometheus instead of the state database")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `value-exporter` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from exporter.run import run_command

        return run_command(args.config, args.listen, args.log_level, args.web_config)
    if args.command == "demo":
        if args.shop_only:
            from exporter.demo.shop import run_shop_command

            return run_shop_command(args.shop_listen, deterministic=args.deterministic)
        from exporter.run import demo_command

        return demo_command(args.shop_listen, args.listen, args.rules,
                            deterministic=args.deterministic, log_level=args.log_level,
                            web_config=args.web_config)
    if args.command == "check" and args.what == "metrics":
        from exporter.exposition import check_metrics_command

        return check_metrics_command(args.file, args.format)
    if args.command == "check" and args.what == "config":
        from exporter.config import check_config_command

        return check_config_command(args.file)
    if args.command == "check" and args.what == "web-config":
        from exporter.web_config import check_web_config_command

        return check_web_config_command(args.file)
    if args.command == "check" and args.what == "rules":
        from exporter.rules.load import check_rules_command

        return check_rules_command(args.files)
    if args.command == "compile":
        from exporter.compile import compile_command
        from exporter.durations import DurationError, parse_duration

        try:
            interval_ms = int(parse_duration(args.interval))
        except DurationError as exc:
            print(f"value-exporter compile: --interval: {exc}", file=sys.stderr)
            return 1
        return compile_command(args.files, args.output, args.format, interval_ms=interval_ms,
                               from_sidecars=args.from_sidecars)
    if args.command == "dashboards":
        from exporter.dashboards import dashboards_command

        return dashboards_command(args.files, args.output, args.service)
    if args.command == "import":
        from exporter.importers import import_command

        return import_command(args.kind, args.file, args.output)
    if args.command == "test":
        from exporter.ruletest import run_rule_tests

        return run_rule_tests(args.files)
    if args.command == "promqltest":
        from exporter.promql.promqltest import run_files

        return run_files(args.files)
    if args.command == "report":
        from exporter.report_command import report_command

        return report_command(args.config, args.period, args.at, args.format, args.output,
                              args.prometheus)
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())

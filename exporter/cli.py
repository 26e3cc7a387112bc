"""Command line: one `value-exporter` entry point with a subcommand per task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="value-exporter",
        description="Prometheus sidecar that derives SLOs and business value from technology metrics.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="validate configuration, rules or metrics")
    check_sub = check.add_subparsers(dest="what", required=True, metavar="WHAT")
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

    promqltest = sub.add_parser(
        "promqltest", help="run PromQL test scripts in Prometheus's promqltest format"
    )
    promqltest.add_argument("files", nargs="+", metavar="FILE")

    sub.add_parser("demo", help="start the bundled demo shop and the daemon on it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `value-exporter` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "check" and args.what == "metrics":
        from exporter.exposition import check_metrics_command

        return check_metrics_command(args.file, args.format)
    if args.command == "promqltest":
        from exporter.promql.promqltest import run_files

        return run_files(args.files)
    if args.command == "demo":
        print("value-exporter demo: not yet; the daemon arrives with issue 3.")
        return 0
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())

"""The short soak (benchmarks/soak.py for 30 s, 10 targets): faults injected at random are all
reported, nothing raises, and the series count does not grow."""

from __future__ import annotations

from benchmarks.soak import FAULTS, SoakSettings, format_report, run_soak


def test_short_soak_reports_every_fault_without_errors_or_growth() -> None:
    """30 s of 10 targets x 200 series scraped every second with a 20% fault rate: every
    injected timeout, 5xx and garbage body is counted under its reason for its target, slow
    answers fail nothing, no error is logged, and the series count stays put after warm-up."""
    settings = SoakSettings(targets=10, series=200, interval_s=1, duration_s=30.0,
                            fault_rate=0.2, seed=7, sample_every_s=5.0)
    r = run_soak(settings)
    report = format_report(r)
    assert r.errors == [], report
    # ~300 scrapes at 20%: about 60 faults, 15 of each kind; zero would mean no injection.
    assert all(r.faults[kind] > 0 for kind in FAULTS), report
    assert r.unreported == {}, report
    assert r.failures == {reason: r.faults[kind] for kind, reason in FAULTS.items()
                          if reason is not None and r.faults[kind]}, report
    # After 5 s every target has been scraped and every rule has written: 10 x 201 scraped
    # series, 50 synthetic ones, 10 + 200 + 1 recorded. Later only ALERTS series for targets
    # that go down for the first time may appear: at most one per target (pending, for 1m).
    warm = next(row[2] for row in r.timeline if row[0] >= 5.0)
    assert warm >= 10 * 201 + 50 + 211, report
    assert r.timeline[-1][2] - warm <= settings.targets, report

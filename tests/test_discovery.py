"""DNS service discovery: A/AAAA/SRV answers into targets, failures keep the last good answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rrset
import pytest

from exporter.config_scrape import DNSSDConfig, ScrapeJob
from exporter.discovery import (
    Discoverer,
    DNSRecord,
    DNSResolver,
    LookupFailed,
    host_port,
)
from exporter.durations import Duration
from exporter.labels import get_label, make_labels
from exporter.scrape import ScrapeManager
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore


class DNSServer:
    """A UDP DNS server on 127.0.0.1 answering from a table; names it lacks get SERVFAIL."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.nxdomain: set[str] = set()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            if name in self.nxdomain:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif (name, rdtype) in self.records:
                rrset = dns.rrset.from_text_list(name, 30, "IN", rdtype,
                                                 self.records[(name, rdtype)])
                response.answer.append(rrset)
            else:
                response.set_rcode(dns.rcode.SERVFAIL)
            self._sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    server = DNSServer()
    yield server
    server.stop()


def _job(*configs: DNSSDConfig, labels: dict[str, str] | None = None) -> ScrapeJob:
    return ScrapeJob("dns", Duration(15000), Duration(5000), dns_sd_configs=configs,
                     discovered_labels=make_labels(labels or {}))


@dataclass(frozen=True)
class Case:
    id: str
    config: DNSSDConfig
    records: dict[tuple[str, str], list[str]]
    addresses: list[str]
    meta: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("A", DNSSDConfig(("web.test.",), "A", 9100),
         {("web.test.", "A"): ["10.0.0.1", "10.0.0.2"]}, ["10.0.0.1:9100", "10.0.0.2:9100"],
         {"__meta_dns_name": "web.test."}),
    Case("AAAA", DNSSDConfig(("web.test.",), "AAAA", 9100),
         {("web.test.", "AAAA"): ["2001:db8::1"]}, ["[2001:db8::1]:9100"]),
    Case("SRV", DNSSDConfig(("_metrics._tcp.test.",), "SRV"),
         {("_metrics._tcp.test.", "SRV"): ["0 0 9100 node1.test.", "0 0 9200 node2.test."]},
         ["node1.test:9100", "node2.test:9200"],
         {"__meta_dns_name": "_metrics._tcp.test.",
          "__meta_dns_srv_record_target": "node1.test.", "__meta_dns_srv_record_port": "9100"}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda k: k.id)
def test_lookup_against_udp_server(dns_server: DNSServer, case: Case) -> None:
    """A, AAAA and SRV answers from a real DNS server become targets with instance host:port."""
    dns_server.records.update(case.records)
    resolver = DNSResolver(["127.0.0.1"], port=dns_server.port, timeout=2.0)
    disc = Discoverer(_job(case.config, labels={"env": "test"}), case.config, resolver)
    targets = disc.refresh()
    assert sorted(t.address for t in targets) == case.addresses
    assert sorted(get_label(t.labels, "instance") for t in targets) == case.addresses
    assert all(get_label(t.labels, "job") == "dns" for t in targets)
    assert all(get_label(t.labels, "env") == "test" for t in targets)
    found = {d.target.address: dict(d.meta) for d in disc.discovered()}
    meta = found[case.addresses[0]]
    assert meta["__address__"] == case.addresses[0]
    for k, v in case.meta.items():
        assert meta[k] == v


def test_failures_keep_last_good_and_nxdomain_empties(dns_server: DNSServer) -> None:
    """SERVFAIL keeps the last good targets; NXDOMAIN (the name is gone) removes them."""
    cfg = DNSSDConfig(("a.test.", "b.test."), "A", 80)
    dns_server.records[("a.test.", "A")] = ["10.0.0.1"]
    dns_server.records[("b.test.", "A")] = ["10.0.0.2"]
    resolver = DNSResolver(["127.0.0.1"], port=dns_server.port, timeout=1.0)
    disc = Discoverer(_job(cfg), cfg, resolver)
    assert sorted(t.address for t in disc.refresh()) == ["10.0.0.1:80", "10.0.0.2:80"]
    del dns_server.records[("a.test.", "A")]  # now SERVFAIL
    dns_server.records[("b.test.", "A")] = ["10.0.0.3"]
    assert sorted(t.address for t in disc.refresh()) == ["10.0.0.1:80", "10.0.0.3:80"]
    dns_server.nxdomain.add("a.test.")
    assert [t.address for t in disc.refresh()] == ["10.0.0.3:80"]


class FakeResolver:
    """Answers from a dict; a name mapped to None fails."""

    def __init__(self, answers: dict[str, list[DNSRecord] | None]) -> None:
        self.answers = answers
        self.calls = 0

    def lookup(self, name: str, rdtype: str) -> list[DNSRecord]:
        self.calls += 1
        found = self.answers.get(name, [])
        if found is None:
            raise LookupFailed("SERVFAIL")
        return found


def test_refresh_interval_decides_due() -> None:
    """A discoverer is due once refresh_interval has passed since its last refresh."""
    now = [100.0]
    cfg = DNSSDConfig(("x.",), "A", 80, Duration(30_000))
    disc = Discoverer(_job(cfg), cfg, FakeResolver({"x.": [DNSRecord("10.0.0.1")]}),
                      clock=lambda: now[0])
    assert disc.due()
    disc.refresh()
    now[0] += 28.9
    assert not disc.due()
    now[0] += 0.2  # within the 1 s slack of the 30 s interval
    assert disc.due()


def test_manager_follows_discovery() -> None:
    """The scrape manager creates scrapers for discovered targets and removes vanished ones."""
    answers: dict[str, list[DNSRecord] | None] = {
        "_m._tcp.": [DNSRecord("n1.", 9100), DNSRecord("n2.", 9100)]}
    resolver = FakeResolver(answers)
    cfg = DNSSDConfig(("_m._tcp.",), "SRV")
    manager = ScrapeManager(SeriesStore(), SelfMetrics(), None, resolver=resolver)
    targets = manager.apply([_job(cfg)])
    assert [t.address for t in targets] == ["n1:9100", "n2:9100"]
    assert manager.discovery_interval_seconds() == 30.0
    answers["_m._tcp."] = None
    assert len(manager.refresh_discovery(force=True)) == 2  # failure: last good kept
    answers["_m._tcp."] = [DNSRecord("n2.", 9100)]
    assert [t.address for t in manager.refresh_discovery(force=True)] == ["n2:9100"]
    calls = resolver.calls
    manager.refresh_discovery()  # not due yet
    assert resolver.calls == calls
    manager.close()


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("10.0.0.1", 80, "10.0.0.1:80"), ("::1", 9100, "[::1]:9100"), ("n.test", 1, "n.test:1")],
    ids=["ipv4", "ipv6", "name"])
def test_host_port(host: str, port: int, expected: str) -> None:
    """Addresses are joined as Go's net.JoinHostPort joins them."""
    assert host_port(host, port) == expected

"""DNS service discovery, before the scrape stage: `dns_sd_configs` names -> ScrapeTargets.

Follows Prometheus's discovery/dns: SRV records give `target:port`, A/AAAA records give
`ip:port` with the configured port; each name is its own group, so a name whose lookup fails
keeps its last good targets while a name that does not exist (NXDOMAIN, no records) has none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.exception
import dns.rdatatype
import dns.resolver

from exporter.config_scrape import DNSSDConfig, ScrapeJob, ScrapeTarget
from exporter.labels import Labels, make_labels

log = logging.getLogger("value_exporter.discovery")

META_DNS_NAME = "__meta_dns_name"
META_SRV_TARGET = "__meta_dns_srv_record_target"
META_SRV_PORT = "__meta_dns_srv_record_port"
ADDRESS_LABEL = "__address__"


class LookupFailed(Exception):
    """A lookup that failed for a reason other than the name not existing."""


@dataclass(frozen=True)
class DNSRecord:
    """One answer: an IP (A/AAAA) or an SRV target name (with its trailing dot) and port."""

    host: str
    port: int = 0


class Resolver(Protocol):
    """Looks up one name: [] when it does not exist or has no such records; raises
    LookupFailed when the answer is unknown (timeout, SERVFAIL, refused)."""

    def lookup(self, name: str, rdtype: str) -> list[DNSRecord]: ...


class DNSResolver:
    """dnspython lookups, against the system's nameservers or the ones given."""

    def __init__(self, nameservers: Sequence[str] | None = None, port: int = 53,
                 timeout: float = 5.0) -> None:
        self._problem = ""
        self._search = not nameservers  # Prometheus also walks the resolv.conf search list
        try:
            self._resolver = dns.resolver.Resolver(configure=not nameservers)
        except dns.exception.DNSException as exc:
            # No usable resolv.conf: every lookup fails (and says why) instead of the reload.
            self._resolver = dns.resolver.Resolver(configure=False)
            self._problem = f"no system resolver: {type(exc).__name__}"
        if nameservers:
            self._resolver.nameservers = list(nameservers)
            self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout

    def lookup(self, name: str, rdtype: str) -> list[DNSRecord]:
        if self._problem:
            raise LookupFailed(self._problem)
        try:
            answer = self._resolver.resolve(name, rdtype, search=self._search,
                                            raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{type(exc).__name__}: {exc}") from None
        out: list[DNSRecord] = []
        for rr in answer.rrset or ():
            if rr.rdtype == dns.rdatatype.SRV:
                out.append(DNSRecord(rr.target.to_text(), int(rr.port)))
            elif rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                out.append(DNSRecord(rr.address))
        return out


@dataclass(frozen=True)
class Discovered:
    """A discovered target with the labels Prometheus would show as discoveredLabels."""

    target: ScrapeTarget
    meta: Labels


def host_port(host: str, port: int) -> str:
    """host:port, with brackets around an IPv6 address (Go's net.JoinHostPort)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Discoverer:
    """One dns_sd_config of one job: refresh() resolves every name into targets."""

    def __init__(self, job: ScrapeJob, config: DNSSDConfig, resolver: Resolver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.job = job
        self.config = config
        self._resolver = resolver or DNSResolver()
        self._clock = clock
        self._lock = threading.Lock()
        self._groups: dict[str, list[Discovered]] = {}  # per name, the last good answer
        self._next_refresh: float | None = None

    @property
    def refresh_seconds(self) -> float:
        return self.config.refresh_interval / 1000

    def due(self) -> bool:
        """Whether refresh_interval has passed since the last refresh (or none ran yet)."""
        if self._next_refresh is None:
            return True
        # A little slack, so a caller ticking at exactly the interval never skips a round.
        slack = min(1.0, self.refresh_seconds * 0.05)
        return self._clock() >= self._next_refresh - slack

    def refresh(self) -> list[ScrapeTarget]:
        """Resolve every name now; a name whose lookup fails keeps its last good targets."""
        with self._lock:
            self._next_refresh = self._clock() + self.refresh_seconds
            for name in self.config.names:
                try:
                    self._groups[name] = self._resolve(name)
                except Exception as exc:  # any failure keeps the last good answer
                    kept = len(self._groups.get(name, ()))
                    log.warning("event=dns_sd_failed job=%s name=%s type=%s kept_targets=%d "
                                "error=%r", self.job.job_name, name, self.config.type, kept,
                                str(exc))
            return self.targets()

    def targets(self) -> list[ScrapeTarget]:
        """The targets of the last refresh, without duplicates, in answer order."""
        return [d.target for d in self.discovered()]

    def discovered(self) -> list[Discovered]:
        seen: set[str] = set()
        out: list[Discovered] = []
        for name in self.config.names:
            for d in self._groups.get(name, ()):
                if d.target.address not in seen:
                    seen.add(d.target.address)
                    out.append(d)
        return out

    def rebind(self, job: ScrapeJob) -> None:
        """Use a changed job (same DNS config) for the targets, keeping the last answers."""
        with self._lock:
            self.job = job
            self._groups = {
                name: [Discovered(job.target(d.target.address, job.discovered_labels), d.meta)
                       for d in group]
                for name, group in self._groups.items()
            }

    def _resolve(self, name: str) -> list[Discovered]:
        kind = self.config.type.upper()
        records = self._resolver.lookup(name, kind)
        out: list[Discovered] = []
        for rec in records:
            meta = {META_DNS_NAME: name}
            if kind == "SRV":
                # Prometheus trims the root dot for the address but keeps it in the label.
                address = host_port(rec.host.rstrip("."), rec.port)
                meta[META_SRV_TARGET] = rec.host
                meta[META_SRV_PORT] = str(rec.port)
            else:
                address = host_port(rec.host, self.config.port)
            meta[ADDRESS_LABEL] = address
            target = self.job.target(address, self.job.discovered_labels)
            out.append(Discovered(target, make_labels(meta)))
        return out

"""Compact per-interval good/total buckets, the storage every SLO window is summed from."""

from __future__ import annotations

import base64
import sys
import zlib
from array import array
from typing import Any


class BucketRing:
    """Good and total event counts per fixed bucket, in two ring buffers of doubles.

    Bucket k covers the left-open time range (k * bucket_ms, (k + 1) * bucket_ms], the
    way Prometheus's range windows are left-open, so an evaluation at a bucket boundary
    fills the bucket that ends there. Only the newest `size` buckets are held; a bucket
    never written reads as zero events, which is what a gap must read as.
    """

    __slots__ = ("bucket_ms", "good", "head", "size", "total")

    def __init__(self, size: int, bucket_ms: int) -> None:
        if size <= 0 or bucket_ms <= 0:
            raise ValueError("a bucket ring needs a positive size and bucket length")
        self.size = size
        self.bucket_ms = bucket_ms
        # Repetition allocates exactly; building from bytes over-allocates by ~6%.
        self.good = array("d", [0.0]) * size
        self.total = array("d", [0.0]) * size
        self.head: int | None = None  # absolute index of the newest bucket held

    def index(self, t_ms: int) -> int:
        """The bucket that holds an event at t (left-open buckets)."""
        return (t_ms - 1) // self.bucket_ms

    def advance(self, k: int) -> None:
        """Make bucket k the newest, zeroing the buckets it moves past (older ones fall off)."""
        head = self.head
        if head is not None and k <= head:
            return
        if head is None or k - head >= self.size:
            self.good = array("d", [0.0]) * self.size
            self.total = array("d", [0.0]) * self.size
        else:
            for j in range(head + 1, k + 1):
                i = j % self.size
                self.good[i] = 0.0
                self.total[i] = 0.0
        self.head = k

    def add(self, k: int, good: float, total: float) -> None:
        """Add events to bucket k; a bucket older than the ring is silently too late."""
        self.advance(k)
        assert self.head is not None
        if k <= self.head - self.size:
            return
        i = k % self.size
        self.good[i] += good
        self.total[i] += total

    def sums(self, k: int, n: int) -> tuple[float, float]:
        """(good, total) over the n buckets ending with bucket k (inclusive)."""
        head = self.head
        if head is None or n <= 0:
            return 0.0, 0.0
        last = min(k, head)
        first = max(k - n + 1, head - self.size + 1)
        if first > last:
            return 0.0, 0.0
        lo, hi = first % self.size, last % self.size + 1
        if lo < hi:
            return sum(self.good[lo:hi]), sum(self.total[lo:hi])
        # The range wraps around the end of the arrays.
        return (sum(self.good[lo:]) + sum(self.good[:hi]),
                sum(self.total[lo:]) + sum(self.total[:hi]))

    def is_empty(self) -> bool:
        """True when no held bucket has an event."""
        return not any(self.total)

    def nbytes(self) -> int:
        """Memory held by the two arrays and this object."""
        return sys.getsizeof(self.good) + sys.getsizeof(self.total) + sys.getsizeof(self)

    # -- state -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-friendly: the newest bucket index and both arrays, oldest bucket first."""
        return {
            "bucket_ms": self.bucket_ms,
            "head": self.head,
            "size": self.size,
            "good": _encode(self._ordered(self.good)),
            "total": _encode(self._ordered(self.total)),
        }

    def _ordered(self, arr: array[float]) -> array[float]:
        if self.head is None:
            return array("d")
        start = (self.head + 1) % self.size
        return arr[start:] + arr[:start]

    @classmethod
    def from_state(cls, data: dict[str, Any], size: int, bucket_ms: int) -> BucketRing:
        """A ring of the asked size restored from `to_state`; buckets that no longer fit
        (a shorter window) are dropped, and a changed bucket length starts empty."""
        ring = cls(size, bucket_ms)
        head = data.get("head")
        if head is None or int(data.get("bucket_ms", 0)) != bucket_ms:
            return ring
        good, total = _decode(data["good"]), _decode(data["total"])
        first = int(head) - len(total) + 1
        ring.advance(int(head))
        for j, (g, t) in enumerate(zip(good, total, strict=True)):
            if g or t:
                ring.add(first + j, g, t)
        return ring


def _encode(arr: array[float]) -> str:
    # Little-endian on every machine, so state moves between architectures; zlib because
    # quiet services leave long runs of equal counts.
    if sys.byteorder == "big":
        arr = array("d", arr)
        arr.byteswap()
    return base64.b64encode(zlib.compress(arr.tobytes(), 6)).decode("ascii")


def _decode(text: str) -> array[float]:
    arr = array("d")
    arr.frombytes(zlib.decompress(base64.b64decode(text)))
    if sys.byteorder == "big":
        arr.byteswap()
    return arr

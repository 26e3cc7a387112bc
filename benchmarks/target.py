"""A loopback scrape target: serves one generated exposition (fixed seed) on 127.0.0.1.

Run as its own process (`python -m benchmarks.target --series N`), so serving costs neither
the sidecar's nor Prometheus's CPU; it prints its port on the first line of stdout.
"""

from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import generate

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve(body: bytes) -> ThreadingHTTPServer:
    """A server answering every GET with `body` (not yet serving: call serve_forever)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # one log line per scrape would only add noise to the benchmark

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, required=True)
    args = parser.parse_args()
    # Quoted UTF-8 names included: both the sidecar and Prometheus 3 take them by default.
    server = serve(generate(args.series).text.encode())
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

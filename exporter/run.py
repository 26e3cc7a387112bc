"""`run` and `demo`: start the daemon in the foreground, with signals for reload and shutdown."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import yaml

from exporter.config import config_path_from_env
from exporter.errors import UserError
from exporter.logs import setup_logging

log = logging.getLogger("value_exporter")
REPO_RULES = Path(__file__).resolve().parent.parent / "rules"


def run_command(config: str | None, listen: str | None, log_level: str,
                web_config: str | None = None) -> int:
    """`value-exporter run`: serve until SIGTERM or SIGINT; SIGHUP reloads."""
    setup_logging(log_level)
    path = config_path_from_env(config)
    if path is None:
        print("value-exporter run: no configuration; pass --config FILE or set "
              "VALUE_EXPORTER_CONFIG", file=sys.stderr)
        return 1
    return _serve(path, listen, web_config=web_config)


def _serve(path: str, listen: str | None, banner: str = "", *,
           web_config: str | None = None) -> int:
    from exporter.daemon import Daemon  # imported here so `check` commands stay light

    try:
        daemon = Daemon(path, listen=listen, web_config_file=web_config)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"value-exporter: cannot listen on {listen or 'the configured address'}: {exc}",
              file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("event=signal signal=%s", signal.Signals(signum).name)
        stop.set()

    def on_reload(_signum: int, _frame: FrameType | None) -> None:
        # Reload off the signal handler: it takes locks the interrupted thread may hold.
        threading.Thread(target=daemon.reload, name="reload", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    daemon.start()
    if banner:
        where = daemon.listen_address  # the demo shop's own URL stays plain HTTP
        text = banner.format(listen=where)
        print(text.replace(f"http://{where}", f"{daemon.web_scheme}://{where}"), flush=True)
    stop.wait()
    daemon.stop()
    return 0


DEMO_BANNER = """
value-exporter demo is running.
  overview page:       http://{{listen}}/
  demo shop metrics:   http://{shop}/metrics
  derived metrics:     http://{{listen}}/metrics
  query API:           http://{{listen}}/api/v1/query?query=shop:http_requests:rate5m
  rules and alerts:    http://{{listen}}/api/v1/rules
  scrape targets:      http://{{listen}}/api/v1/targets
Press Ctrl+C to stop.
"""


def demo_command(shop_listen: str, listen: str, rules_dir: str | None, *,
                 deterministic: bool, log_level: str, web_config: str | None = None) -> int:
    """`value-exporter demo`: the demo shop plus the daemon on it, with the bundled rules."""
    from exporter.demo.shop import start_shop

    setup_logging(log_level)
    rules = Path(rules_dir) if rules_dir else REPO_RULES
    if not any(rules.glob("*.yaml")):
        print(f"value-exporter demo: no rule files in {rules}; pass --rules DIR", file=sys.stderr)
        return 1
    try:
        shop = start_shop(shop_listen, deterministic=deterministic)
    except OSError as exc:
        print(f"value-exporter demo: cannot start the demo shop on {shop_listen}: {exc}",
              file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="value-exporter-demo-") as tmp:
            config = {
                "listen": listen,
                "scrape_interval": "15s",
                "evaluation_interval": "15s",
                "rule_files": [str(rules.resolve() / "*.yaml")],
                "state_dir": str(Path(tmp) / "state"),
                "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
            }
            path = Path(tmp) / "demo.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            host = shop_listen.rpartition(":")[0]
            return _serve(str(path), None, DEMO_BANNER.format(shop=f"{host}:{shop.port}"),
                          web_config=str(Path(web_config).resolve()) if web_config else None)
    finally:
        shop.stop()

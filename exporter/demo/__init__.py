"""Bundled demo shop: a simulated online shop that serves technology metrics on loopback."""

from exporter.demo.shop import ShopServer, run_shop_command, start_shop

__all__ = ["ShopServer", "run_shop_command", "start_shop"]

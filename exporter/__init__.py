"""value-exporter: technology metrics in, service levels and business value out."""

__version__ = "0.1.0"

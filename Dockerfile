# value-exporter as a sidecar container image.
# Build: docker build -t value-exporter .
# Run:   docker run -v $PWD/config:/etc/value-exporter -v $PWD/rules:/etc/value-exporter/rules \
#          -v value-exporter-state:/var/lib/value-exporter -p 9877:9877 value-exporter
FROM python:3.11-slim

# tzdata: calendar SLO windows are computed in named time zones.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/value-exporter
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip install --no-cache-dir .

RUN useradd --system --uid 10001 --home-dir /var/lib/value-exporter --create-home value-exporter \
    && mkdir -p /etc/value-exporter/rules \
    && chown -R value-exporter /var/lib/value-exporter
COPY config/container.yaml /etc/value-exporter/config.yaml
COPY rules /etc/value-exporter/rules

USER value-exporter
ENV VALUE_EXPORTER_CONFIG=/etc/value-exporter/config.yaml \
    VALUE_EXPORTER_LISTEN=0.0.0.0:9877
VOLUME ["/var/lib/value-exporter"]
EXPOSE 9877

# Slim images have no curl: the probe is a few lines of Python. /-/healthy needs no credentials
# under a --web.config.file with basic auth; with TLS there, set VALUE_EXPORTER_HEALTH_SCHEME=https
# (the probe talks to itself on 127.0.0.1, so it does not verify the certificate).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, ssl, sys, urllib.request; port = os.environ.get('VALUE_EXPORTER_LISTEN', '0.0.0.0:9877').rsplit(':', 1)[1]; scheme = os.environ.get('VALUE_EXPORTER_HEALTH_SCHEME', 'http'); sys.exit(0 if urllib.request.urlopen(f'{scheme}://127.0.0.1:{port}/-/healthy', timeout=4, context=ssl._create_unverified_context()).status == 200 else 1)"]

ENTRYPOINT ["value-exporter"]
CMD ["run"]

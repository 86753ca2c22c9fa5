# showbot: one process, SQLite on a volume, tokens from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 10001 showbot
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install '.[charts]'

# The example config watches the creator's real feeds; mount your own
# config.toml over it. Its storage path (data/showbot.db) lives on the volume.
COPY config.example.toml ./config.toml
RUN mkdir -p /app/data && chown showbot:showbot /app/data
VOLUME ["/app/data"]
USER showbot

# The operators' HTTP server on, reachable from outside the container:
# /healthz, /readyz, /metrics and the status page (set SHOWBOT_WEB_TOKEN:
# without it the page refuses on 0.0.0.0). Slack's HTTP mode answers on
# this port too, at [slack] path. These win over [http] in any config.
ENV SHOWBOT_HTTP_PORT=8080 SHOWBOT_HTTP_BIND=0.0.0.0
EXPOSE 8080

# Healthy = /readyz answers 200: the database takes a real write, the
# scheduler runs and every chat adapter is connected (`showbot health`;
# with SHOWBOT_HTTP_PORT unset it reads the heartbeat file instead).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["showbot", "health", "--config", "/app/config.toml"]

STOPSIGNAL SIGTERM
CMD ["showbot", "run", "--config", "/app/config.toml"]

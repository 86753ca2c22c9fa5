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

# Healthy = the main loop wrote its heartbeat recently and every chat
# adapter is connected (see `showbot health`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["showbot", "health", "--config", "/app/config.toml"]

STOPSIGNAL SIGTERM
CMD ["showbot", "run", "--config", "/app/config.toml"]

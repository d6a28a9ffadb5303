# mjbot: the Discord bot in front of a Midjourney Proxy. See "Operating the bot" in README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mjbot \
    && mkdir -p /data /config \
    && chown mjbot:mjbot /data

# The database lives on the volume; /healthz and /metrics listen on 8081. The environment wins
# over config.toml, so these hold whatever the mounted file says.
ENV MJBOT_STORAGE__PATH=/data/mjbot.sqlite3 \
    MJBOT_HTTP__LISTEN=0.0.0.0:8081
VOLUME ["/data"]
EXPOSE 8081

# config.toml is read from the working directory: mount it at /config/config.toml (read-only is
# fine), or give every setting as MJBOT_<SECTION>__<KEY> variables.
WORKDIR /config
USER mjbot

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["mjbot", "healthcheck"]
ENTRYPOINT ["mjbot"]
CMD ["run"]

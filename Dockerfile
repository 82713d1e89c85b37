# syntax=docker/dockerfile:1
# Gust: the browser UI built with Node, the Python app on a slim image, run by gunicorn
# (settings and hooks: gunicorn.conf.py) as an unprivileged user. Data lives in /data.
#   docker build -t gust .
#   docker run -p 8100:8100 -v gust-data:/data gust

FROM node:22-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# libgomp1: the bundled local model (llama.cpp through xllamacpp) needs OpenMP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "uv>=0.9,<1"
WORKDIR /app
# Dependencies first (exactly as locked), so code changes do not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY gunicorn.conf.py ./
COPY backend/ backend/
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home gust \
    && mkdir -p /data && chown gust:gust /data
USER gust
# XDG_RUNTIME_DIR: gunicorn's control socket goes there (the home directory is read-only).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app/backend \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8100 \
    XDG_RUNTIME_DIR=/tmp
VOLUME ["/data"]
EXPOSE 8100
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8100') + '/health', timeout=4)"]
# gunicorn reads /app/gunicorn.conf.py: tornado workers, bind HOST:PORT, one event loop
# per worker. Workers: WEB_CONCURRENCY (several need REDIS_URL to resume streams).
CMD ["gunicorn", "gust.wsgi:application"]

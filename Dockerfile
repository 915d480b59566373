# The hpsearch image for workers and the dashboard. It installs the package the way the README does:
# torch first (on a Linux x86-64 host PyPI's torch 2.13.0 is the CUDA build), then the package.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hpsearch ./hpsearch
ENV PIP_NO_CACHE_DIR=1
RUN pip install torch==2.13.0 && pip install -e ".[postgres,proxy]"
COPY configs ./configs
COPY search_spaces ./search_spaces
COPY studies ./studies

# Datasets and caches in /data, trial folders and artifacts in /app/runs (both volumes in compose).
ENV HPSEARCH_DATA=/data PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 1000 hpsearch && mkdir -p /data /app/runs && chown hpsearch /data /app/runs
USER hpsearch

# Workers stop gracefully on SIGTERM (checkpoint, hand the trial back); give them 30 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hpsearch"]
CMD ["--help"]

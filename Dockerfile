# syntax=docker/dockerfile:1
# The agno-migrate image: `docker build -t agno-migrate .` from a checkout of this repository, then
#   docker run --rm -e AGNO_DB_URL=postgresql://agno:...@db/agno agno-migrate upgrade
# (no argument: `check`). Recipes (CI, deploy step, Kubernetes, docker-compose): docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in ./
COPY versions ./versions
COPY agno_migrate ./agno_migrate
# every backend's driver (PostgreSQL, MySQL/MariaDB, MongoDB) and orjson: the [all] extra
RUN --mount=type=cache,target=/root/.cache/pip pip install ".[all]"

# a user of its own; /data is its working directory (a SQLite database given as sqlite:///agno.db lands there)
RUN useradd --system --uid 10001 --create-home agno && mkdir /data && chown agno /data
USER agno
WORKDIR /data

ENTRYPOINT ["agno-migrate"]
CMD ["check"]

# syntax=docker/dockerfile:1
# One image for every project process: `managed` (cluster nodes, the default
# entrypoint) and `mission-control` (selected with an entrypoint override).
# See docs/deployment.md.

# --- build: turn the source tree into a wheel, so the runtime image holds no source or build tools.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MANAGED_DATA_DIR=/var/lib/managed

COPY --from=wheel /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds.
# The data directories exist in the image, owned by that user, so that a named
# volume mounted on them starts with the same ownership.
RUN groupadd --system --gid 10001 managed \
    && useradd --system --uid 10001 --gid managed --home-dir /home/managed --create-home managed \
    && install -d -o managed -g managed -m 0750 /var/lib/managed /var/lib/mc

USER managed
WORKDIR /home/managed

# 8080: a node's HTTP API (/status, /health, /leader, /metrics); 8443: Mission Control.
EXPOSE 8080 8443

ENTRYPOINT ["managed"]
CMD ["--help"]

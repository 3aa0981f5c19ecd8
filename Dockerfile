# syntax=docker/dockerfile:1
# Two images from one source tree, one per deployable (see docs/deployment.md):
#   docker build --target mission-control -t managed-mission-control .   Mission Control
#   docker build --target node -t managed-node .                         a cluster node (default)
# Each installs only its own side's dependencies (the wheel's `node` or `mission-control` extra).

# --- build: turn the source tree into a wheel, so the runtime images hold no source or build tools.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- what both runtime images share
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid so volume ownership is predictable across rebuilds.
# The data directories exist in the image, owned by that user, so that a named
# volume mounted on them starts with the same ownership.
RUN groupadd --system --gid 10001 managed \
    && useradd --system --uid 10001 --gid managed --home-dir /home/managed --create-home managed \
    && install -d -o managed -g managed -m 0750 /var/lib/managed /var/lib/mc

# --- Mission Control: API and console on 8443
FROM runtime AS mission-control
COPY --from=wheel /wheels /tmp/wheels
RUN pip install "$(echo /tmp/wheels/*.whl)[mission-control]" \
    && rm -rf /tmp/wheels
USER managed
WORKDIR /home/managed
EXPOSE 8443
ENTRYPOINT ["mission-control"]
CMD ["--help"]

# --- a cluster node: its HTTP API (/status, /health, /leader, /metrics) on 8080
FROM runtime AS node
ENV MANAGED_DATA_DIR=/var/lib/managed
COPY --from=wheel /wheels /tmp/wheels
RUN pip install "$(echo /tmp/wheels/*.whl)[node]" \
    && rm -rf /tmp/wheels
USER managed
WORKDIR /home/managed
EXPOSE 8080
ENTRYPOINT ["managed"]
CMD ["--help"]

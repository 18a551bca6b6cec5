# syntax=docker/dockerfile:1.7
# check=error=true
#
# One image for every stockstream service; the entry point is the `stockstream` console script:
#   docker build -t stockstream:0.1.0 .                       # target "runtime" (the default, last stage)
#   docker build -t stockstream-spark:0.1.0 --target spark .  # + Java 17, PySpark and the Kafka source jars
#   docker run --rm stockstream:0.1.0 ingest --help
#
# Two targets because Spark needs a JVM: the services (ingest, process, materialize, notify,
# serve) stay on a slim Python image (~250 MB) without Java; `backfill`, `replay`, `backtest`
# and the Spark workers use the `spark` target (same Python, same code, plus Java 17, pyspark
# 4.2.0 and spark-sql-kafka). Workers run our image rather than apache/spark because the
# Python UDFs that call the indicator engine need the same Python minor version (3.11) and
# our packages on every executor. docs/deploy.md explains the choice.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------------------------
# Build stage: a virtualenv at /opt/venv with the project and its dependencies (wheels only).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, exactly the tested versions (requirements/*.lock.txt, hashes checked; `make lock`),
# so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY requirements/runtime.lock.txt requirements/spark.lock.txt requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements/runtime.lock.txt
COPY schemas/ schemas/
COPY processors/ processors/
COPY spark_jobs/ spark_jobs/
COPY stockstream/ stockstream/
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install --no-deps .

# Spark extra (pyspark 4.2.0, pandas, pyarrow …) on top of the same virtualenv, and Spark's
# Kafka source jars resolved from Maven Central by the project's own resolver (spark_jobs/jars.py:
# ops/spark/pom.xml, minus the jars pyspark already ships). Maven and its JDK stay in this stage.
FROM build AS build-spark
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
# pyspark is published only as a source archive (pure Python, nothing to compile): the one
# exception to --only-binary, or pip finds no version of it at all.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --require-hashes --only-binary=:all: --no-binary=pyspark -r requirements/spark.lock.txt
COPY ops/spark/pom.xml ops/spark/pom.xml
RUN --mount=type=cache,target=/root/.m2 \
    /opt/venv/bin/python -c "from pathlib import Path; from spark_jobs.jars import resolve_spark_jars; resolve_spark_jars(Path('/opt/spark-jars'))"

# ---------------------------------------------------------------------------------------------
# Common runtime base: tini as PID 1 (forwards SIGTERM for graceful shutdown, reaps the
# notifier's lane processes), an unprivileged user, writable state under /var/lib/stockstream.
# NUMBA_CACHE_DIR: the vectorized kernels are compiled with cache=True, and numba finds no cache
# beside a read-only site-packages; /tmp is the writable mount in Compose and Kubernetes.
FROM ${PYTHON_IMAGE} AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stockstream \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/stockstream --shell /usr/sbin/nologin stockstream \
 && install -d -o 10001 -g 10001 /var/lib/stockstream /var/lib/stockstream/state /var/lib/stockstream/backfill
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROCESS_STATE_DIR=/var/lib/stockstream/state/process \
    NOTIFY_STATE_DIR=/var/lib/stockstream/state/notify \
    INGEST_FILE_POSITION_DIR=/var/lib/stockstream/state/ingest \
    METRICS_HOST=0.0.0.0 \
    API_HOST=0.0.0.0 \
    NUMBA_CACHE_DIR=/tmp/numba-cache
WORKDIR /var/lib/stockstream
LABEL org.opencontainers.image.title="stockstream" \
      org.opencontainers.image.description="Real-time trading signals, event-sourced on Kafka"

# ---------------------------------------------------------------------------------------------
# Spark target: the same Python and code, plus Java 17 (Spark 4 needs 17 or 21), pyspark and the
# Kafka source jars. Runs `stockstream backfill|replay|backtest` (the Spark driver) and the Spark
# workers (`spark-class org.apache.spark.deploy.worker.Worker spark://…`).
FROM base AS spark
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)" /opt/java
COPY --from=build-spark /opt/venv /opt/venv
COPY --from=build-spark /opt/spark-jars /opt/spark-jars
ENV JAVA_HOME=/opt/java \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    PYSPARK_DRIVER_PYTHON=/opt/venv/bin/python \
    STOCKSTREAM_SPARK_JARS=/opt/spark-jars
USER 10001:10001
EXPOSE 4040 7078 8081
ENTRYPOINT ["tini", "--", "stockstream"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
# Runtime target (default): every long-running service. No compiler, no Java, no root.
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
# serve (API, dashboard, /health, /metrics) and the services' /metrics ports.
EXPOSE 8000 9101 9102 9103 9104
ENTRYPOINT ["tini", "--", "stockstream"]
CMD ["--help"]

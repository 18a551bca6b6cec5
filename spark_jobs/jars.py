"""Spark's Kafka source jars: resolved once from Maven Central into a local cache, never at job run time.

``ops/spark/pom.xml`` names ``spark-sql-kafka-0-10_2.13`` for the installed pyspark version;
``mvn dependency:copy-dependencies`` copies it and its runtime dependencies into the cache
folder, then every jar whose artifact pyspark already ships (hadoop-client-*, scala-library,
slf4j, lz4, snappy …) is removed so the classpath has one copy of each library. A
``.complete`` marker makes later calls free. ``make setup`` calls :func:`resolve_spark_jars`;
jobs call :func:`spark_jars`, which fails with a hint instead of downloading.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pyspark

REPO_ROOT = Path(__file__).resolve().parents[1]
POM = REPO_ROOT / "ops" / "spark" / "pom.xml"
DEFAULT_JARS_DIR = REPO_ROOT / ".stack" / "spark-jars"
MARKER = ".complete"
_VERSIONED = re.compile(r"^(?P<artifact>.+)-\d+(?:\.\d+)+[\w.\-]*\.jar$")


class SparkJarsError(RuntimeError):
    """The Kafka source jars are missing or could not be resolved; the message says what to run."""


def pyspark_jars_dir() -> Path:
    return Path(pyspark.__file__).resolve().parent / "jars"


def artifact_name(jar: str) -> str:
    """``kafka-clients-3.9.2.jar`` → ``kafka-clients`` (the name without its version)."""
    match = _VERSIONED.match(jar)
    return match.group("artifact") if match else jar.removesuffix(".jar")


def resolve_spark_jars(directory: Path = DEFAULT_JARS_DIR, mvn: str | None = None) -> list[Path]:
    """Resolve the jars into ``directory`` unless done already; returns the jars to pass as ``spark.jars``.

    Called by ``make setup`` (needs Maven and access to Maven Central or a warm ``~/.m2``).
    Raises :class:`SparkJarsError` when Maven is missing or the resolution fails.
    """
    if (directory / MARKER).exists():
        return spark_jars(directory)
    binary = mvn or shutil.which("mvn")
    if binary is None:
        raise SparkJarsError("`mvn` not found: install Maven (apt-get install maven) to resolve the Spark Kafka jars")
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [binary, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime", f"-Dspark.version={pyspark.__version__}"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SparkJarsError("could not resolve spark-sql-kafka-0-10 from Maven Central:\n"
                             + (result.stdout + result.stderr)[-2000:])
    shipped = {artifact_name(jar.name) for jar in pyspark_jars_dir().glob("*.jar")}
    for jar in staging.glob("*.jar"):
        if artifact_name(jar.name) in shipped:
            jar.unlink()
    (staging / MARKER).write_text(f"pyspark {pyspark.__version__}\n")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return spark_jars(directory)


def spark_jars(directory: Path = DEFAULT_JARS_DIR) -> list[Path]:
    """The cached jars (sorted). Raises :class:`SparkJarsError` when the cache is not complete."""
    if not (directory / MARKER).exists():
        raise SparkJarsError(f"the Spark Kafka jars are not in {directory}: run `make setup`"
                             " (or `python -m spark_jobs.jars`) once")
    jars = sorted(directory.glob("*.jar"))
    if not any(artifact_name(jar.name) == "spark-sql-kafka-0-10_2.13" for jar in jars):
        raise SparkJarsError(f"{directory} has no spark-sql-kafka jar: delete it and run `make setup` again")
    return jars


if __name__ == "__main__":
    for jar in resolve_spark_jars():
        print(jar)  # noqa: T201 - a set-up script's output

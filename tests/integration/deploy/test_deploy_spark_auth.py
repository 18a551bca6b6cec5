"""``spark.authenticate`` as the manifests set it, run for real (issue 18; docs/security.md, "Spark").

A Spark master and a worker from the pinned pyspark, started with the arguments of the rendered dev
overlay (``--properties-file`` naming the spark-auth Secret's spark-defaults.conf, here the dev
Secret's own content in a temporary folder) on loopback ports; then a driver as the backfill Job
runs one (``SPARK_CONF_DIR`` holding that file) computes a sum on the cluster, while a driver
without the file and one with another secret are refused.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.deploy.deploy_support import by_kind, k8s_containers, one, pod_spec, render
from tests.support.kafka_tools import wait_until
from tests.support.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]
JOB = """
import sys
from pyspark.sql import SparkSession
session = (SparkSession.builder.master(sys.argv[1]).config("spark.driver.memory", "512m")
           .config("spark.executor.memory", "512m").config("spark.ui.enabled", "false").getOrCreate())
print("SUM", session.sparkContext.parallelize(range(100), 2).map(lambda x: x * 2).sum())
session.stop()
"""


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def daemon_args(resources: tuple[dict[str, Any], ...], name: str, ports: dict[str, int], conf: Path) -> list[str]:
    """The manifest's arguments of a Spark daemon, its addresses and files made local."""
    args = [str(a) for a in pod_spec(one(resources, "Deployment", name))["containers"][0]["args"]]
    local = []
    for arg in args:
        arg = arg.replace("$(POD_IP)", "127.0.0.1").replace("spark-master:7077", f"127.0.0.1:{ports['7077']}")
        if arg in ports:  # the RPC and web UI ports: free ones here
            arg = str(ports[arg])
        if arg.endswith("/spark-defaults.conf"):
            arg = str(conf)
        if arg == "/var/lib/stockstream/spark-work":
            arg = str(conf.parent / "work")
        local.append(arg)
    return local


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    resources = render("dev")
    [secret] = [s for n, s in by_kind(resources, "Secret").items() if n.startswith("spark-auth")]
    folder = tmp_path_factory.mktemp("spark-auth")
    conf = folder / "conf" / "spark-defaults.conf"
    conf.parent.mkdir()
    conf.write_bytes(base64.b64decode(secret["data"]["spark-defaults.conf"]))
    ports = {name: free_port() for name in ("7077", "7078", "8080", "8081")}
    env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOCAL_HOSTNAME": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m", "SPARK_NO_DAEMONIZE": "1",
           "PYSPARK_PYTHON": sys.executable}
    spark_class = str(spark_home() / "bin" / "spark-class")
    master_args = daemon_args(resources, "spark-master", ports, conf)
    worker_args = daemon_args(resources, "spark-worker", ports, conf)
    assert "--properties-file" in master_args and "--properties-file" in worker_args
    logs = {name: (folder / f"{name}.log").open("w") for name in ("master", "worker")}
    master = subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", *master_args],
                              env=env, stdout=logs["master"], stderr=subprocess.STDOUT)
    worker = None
    try:
        wait_until(lambda: "Starting Spark master" in (folder / "master.log").read_text(), timeout_s=120,
                   message="the Spark master")
        worker = subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker",
                                   *worker_args], env=env, stdout=logs["worker"], stderr=subprocess.STDOUT)
        wait_until(lambda: "Successfully registered with master" in (folder / "worker.log").read_text(),
                   timeout_s=120, message="the worker to register with the authenticated master")
        assert "authentication enabled" in (folder / "master.log").read_text()
        yield f"spark://127.0.0.1:{ports['7077']}", conf
    finally:
        for process in (worker, master):
            if process is not None:
                process.terminate()
                process.wait(60)
        for log in logs.values():
            log.close()


def driver(master: str, conf_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPARK_CONF_DIR": str(conf_dir), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOCAL_HOSTNAME": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_HOME", None)
    return subprocess.run([sys.executable, "-c", JOB, master], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_backfill_driver_authenticates_with_the_secret_file(cluster) -> None:
    master, conf = cluster
    backfill = next(c for c in k8s_containers(render("dev")) if c.stockstream_command == ["backfill"])
    assert backfill.env["SPARK_CONF_DIR"] == "/etc/stockstream/spark"  # the folder of the Secret's file
    ran = driver(master, conf.parent)
    assert ran.returncode == 0 and "SUM 9900" in ran.stdout, ran.stderr[-3000:]


def test_a_driver_without_the_secret_or_with_another_is_refused(cluster, tmp_path: Path) -> None:
    master, _conf = cluster
    empty = tmp_path / "none"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "spark-defaults.conf").write_text("spark.authenticate true\nspark.authenticate.secret not-the-secret\n")
    # Side by side: a refused driver gives up only after Spark's registration retries (about a minute each).
    with ThreadPoolExecutor(2) as pool:
        without, wrong = pool.map(lambda folder: driver(master, folder), (empty, other))
    assert without.returncode != 0 and "SUM" not in without.stdout
    assert "SASL" in without.stderr or "Sasl" in without.stderr, without.stderr[-2000:]
    assert wrong.returncode != 0 and "SUM" not in wrong.stdout

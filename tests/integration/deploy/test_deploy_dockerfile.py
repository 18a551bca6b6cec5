"""The Dockerfile and .dockerignore, checked without a Docker engine.

BuildKit's own front end (``dockerfilecheck``) parses, lints and dispatches every stage; the
build context is read through .dockerignore as the Docker CLI sends it; and the package is
built and installed from exactly those context files, as the image's build stage does, then
every command of the image answers ``--help``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from tests.integration.deploy.deploy_support import (
    OUR_IMAGES,
    REPO,
    RUNTIME_ENV,
    all_settings_env,
    dockerfile_env,
    dockerfile_report,
    run_tool,
    stage_chain,
)


def commands(target: str, name: str) -> list[dict[str, object]]:
    return [c for stage in stage_chain(target) for c in stage["commands"] if c["name"] == name]


def test_buildkit_accepts_the_dockerfile_without_warnings() -> None:
    report = dockerfile_report()
    assert not report.get("build_error")
    assert report["warnings"] == []
    assert report["ok"] is True


def test_the_check_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    """Negative control: lint rules, undefined variables and missing COPY sources are reported."""
    (tmp_path / "Dockerfile").write_text("FROM python:3.11 as build\nENV A=$UNDEFINED\nCOPY nothing.txt /x\n"
                                         "CMD stockstream serve\n")
    result = run_tool("dockerfilecheck", "-context", str(tmp_path), str(tmp_path / "Dockerfile"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert {w["rule"] for w in report["warnings"]} >= {"FromAsCasing", "UndefinedVar", "JSONArgsRecommended"}
    assert report["context"]["copy_sources"][0]["files"] == 0


def test_targets_run_stockstream_as_a_non_root_user() -> None:
    names = [stage["name"] for stage in dockerfile_report()["stages"]]
    assert names[-1] == "runtime", "a plain `docker build` must give the services' image"
    for target in OUR_IMAGES.values():
        users = commands(target, "user")
        assert users, f"{target}: no USER"
        uid = str(users[-1]["args"][0]).split(":")[0]  # type: ignore[index]
        assert uid.isdigit() and int(uid) >= 1000, f"{target}: numeric non-root uid (runAsNonRoot needs it)"
        entrypoint = commands(target, "entrypoint")[-1]
        assert entrypoint["args"] == ["tini", "--", "stockstream"] and not entrypoint.get("shell")
        assert stage_chain(target)[0]["base"] == "${PYTHON_IMAGE}"


def test_one_python_for_services_and_spark_and_java_only_in_spark() -> None:
    """Both targets share the base (same Python 3.11 for driver and executors); only spark has Java."""
    runtime, spark = stage_chain("runtime"), stage_chain("spark")
    assert runtime[0]["name"] == spark[0]["name"] == "base"
    text = (REPO / "Dockerfile").read_text()
    python_image = next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ARG PYTHON_IMAGE="))
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python_image.startswith("python:3.11.") and requires == ">=3.11"
    assert "-slim-" in python_image

    def installs(chain: list[dict[str, object]]) -> str:
        stages = [s["name"] for s in chain]
        return "\n".join(stage_text(text, name) for name in stages)

    assert "openjdk" not in installs(runtime)
    assert "openjdk-17-jre-headless" in installs(spark)
    assert dockerfile_env()["spark"]["JAVA_HOME"] == "/opt/java"
    assert dockerfile_env()["spark"]["PYSPARK_PYTHON"] == "/opt/venv/bin/python"


def stage_text(dockerfile: str, stage: str) -> str:
    """The lines of one stage, FROM to the next FROM."""
    out, inside = [], False
    for line in dockerfile.splitlines():
        if line.startswith("FROM "):
            inside = line.rstrip().endswith(f" AS {stage}")
        if inside:
            out.append(line)
    return "\n".join(out)


def test_image_env_is_read_by_the_app_or_the_runtime() -> None:
    known = all_settings_env() | set(RUNTIME_ENV)
    for target, env in dockerfile_env().items():
        assert not set(env) - known, f"{target}: {sorted(set(env) - known)}"
    # The Spark jobs find the Kafka source jars where the image puts them.
    from spark_jobs.settings import SparkJobSettings

    assert SparkJobSettings.model_fields["spark_jars_dir"].validation_alias.choices == ["STOCKSTREAM_SPARK_JARS"]
    assert dockerfile_env()["spark"]["STOCKSTREAM_SPARK_JARS"] == "/opt/spark-jars"


def test_dockerignore_sends_sources_but_no_venv_state_tests_or_secrets() -> None:
    context = dockerfile_report()["context"]
    files = set(context["files"])
    for prefix in (".venv/", ".stack/", ".git/", "tests/", "bench/", ".hypothesis/", "docs/"):
        assert not any(f.startswith(prefix) for f in files), prefix
    assert not any(f.endswith(".env") or "__pycache__" in f or f.endswith(".pyc") for f in files)
    tracked = subprocess.run(["git", "ls-files", "schemas", "processors", "spark_jobs", "stockstream",
                              "pyproject.toml", "README.md", "ops/spark/pom.xml"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    missing = [f for f in tracked if f not in files and (REPO / f).exists()]
    assert not missing, f"tracked sources the image would lack: {missing}"
    assert context["bytes"] < 20 * 1024 * 1024, "the context should stay small"
    for source in context["copy_sources"]:
        assert source["files"] > 0 and not source["ignored"], source


def test_the_package_built_from_the_context_runs_every_command(tmp_path: Path) -> None:
    """What the build stage does (pip install . from the context), then `stockstream <cmd> --help`."""
    context = tmp_path / "context"
    for name in dockerfile_report()["context"]["files"]:
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(context)], check=True, timeout=300, capture_output=True)
    wheel = next(wheels.glob("stockstream-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "stockstream/dashboard/static/index.html" in names, "the dashboard must be in the image"
    assert any(n.startswith("spark_jobs/") for n in names) and any(n.startswith("processors/core/") for n in names)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, timeout=300, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run([sys.executable, "-c", "import stockstream; print(stockstream.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip().startswith(str(site)), "must import the installed copy, not the repo"
    help_text = subprocess.run([sys.executable, "-m", "stockstream.cli", "--help"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120, check=True).stdout
    for command in ("ingest", "process", "materialize", "notify", "serve"):
        assert command in help_text
        result = subprocess.run([sys.executable, "-m", "stockstream.cli", command, "--help"], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"{command}: {result.stderr[-1500:]}"

"""The shared runtime every service and Spark job stands on: settings, Kafka admin, logging/metrics/health.

It sits below the services (``processors/*``, ``spark_jobs``) and above the pure core; it never imports
them, nor the ``stockstream`` CLI/API shell.
"""


def package_version() -> str:
    """The installed stockstream distribution's version (``0+unknown`` when run from a bare source tree)."""
    # ~50 ms: imported when asked, not by every process that imports processors.runtime (each CLI start)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stockstream")
    except PackageNotFoundError:
        return "0+unknown"

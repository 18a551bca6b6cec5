"""``stockstream process`` as a process: logging, secrets, metrics endpoint, topics, strategy, run.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT: the current checkpoint is committed);
1 when the application failed (Kafka fatal error, …; a supervisor restarts it and it resumes
from the last committed checkpoint); 2 for bad configuration (raised before anything starts).
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from types import FrameType

from processors.core.strategy import DEFAULT_STRATEGY, Strategy, StrategyError, load_strategy
from processors.runtime.kafka_admin import KafkaUnavailableError, ensure_topics, wait_for_kafka
from processors.runtime.kafka_health import KafkaConnection
from processors.runtime.observability import HEALTH, register_secret, setup_logging, start_metrics_server
from processors.runtime.runs import RunLogError
from processors.stream.control import LiveControl
from processors.stream.kafka_stats import ChangelogSizes
from processors.stream.metrics import ProcessMetrics
from processors.stream.recovery import watch_recovery
from processors.stream.settings import ProcessSettings
from processors.stream.states import StateChangeRefusedError
from processors.stream.topology import DutyChangedError, Processor, build_processor

log = logging.getLogger("processors.stream")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_RESTART = -1  # internal: build the application again for the new live duty


class ConfigurationError(RuntimeError):
    """Bad configuration found at start; the message says what to change."""


def load_configured_strategy(settings: ProcessSettings) -> Strategy:
    """The strategy file's content (validated), or the default strategy; raises ConfigurationError."""
    if settings.strategy_file is None:
        return DEFAULT_STRATEGY
    try:
        return load_strategy(settings.strategy_file)
    except StrategyError as error:
        raise ConfigurationError(str(error)) from None


def main(settings: ProcessSettings) -> int:
    """Run the processor until SIGTERM/SIGINT; returns the exit code (raises ConfigurationError)."""
    if settings.sasl_password is not None:
        register_secret(settings.sasl_password.get_secret_value())
    setup_logging(settings.log_level, "process")
    logging.getLogger("quixstreams").setLevel(settings.log_level)
    strategy = load_configured_strategy(settings)
    metrics = ProcessMetrics(max_symbols=settings.metrics_max_symbols)
    try:
        start_metrics_server(settings.metrics_host, settings.metrics_port, "process")
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port} ({error});"
            " set METRICS_PORT (0 disables it)") from None
    watch_recovery(metrics)

    # Outside Quix's run() (start-up, waiting on a hand-over), a signal just ends the process.
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d received outside processing: exiting", signum)
        stopping.set()

    handlers = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    control: LiveControl | None = None
    try:
        if not _ensure_topics(settings, stopping):
            return EXIT_OK
        control = LiveControl(settings, settings.group_id)
        try:
            control.start()
        except RunLogError as error:
            raise ConfigurationError(f"{error}; the processor reads the live record there (docs/runs.md)") from None
        while True:
            duty = control.wait_to_run(stopping)
            if duty is None:
                return EXIT_OK
            registry = control.own_registry(duty)
            if registry.run_id is not None:  # its own topics, and the live ones it may switch to
                ensure_topics(settings, registry.run_outputs() + registry.live().run_outputs())
            processor = build_processor(settings, strategy, metrics, duty=duty, registry=registry,
                                        still=functools.partial(control.still, duty))
            if stopping.is_set():
                return EXIT_OK
            control.engage(duty, processor.app.stop, stopping)
            code = _run(settings, processor, metrics)
            control.disengage()
            if code == EXIT_RESTART:
                code, control.restart = EXIT_OK, True
            for signum in handlers:
                signal.signal(signum, on_signal)
            if code != EXIT_OK or not control.restart or stopping.is_set():
                return code
    finally:
        if control is not None:
            control.close()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _run(settings: ProcessSettings, processor: Processor, metrics: ProcessMetrics) -> int:
    """Run one application until it stops; the exit code (EXIT_OK also when the live duty changed)."""
    log.info(
        "processing %s → indicators, signals, candles %s, aggregates.daily (group %s, %s, commit every %.2fs,"
        " strategy %s, state %s)", processor.ticks_topic, ",".join(settings.candle_timeframes) or "-",
        settings.group_id, settings.processing_guarantee, settings.commit_interval,
        settings.strategy_file or "default", settings.state_dir,
    )
    sizes = ChangelogSizes(metrics, processor.stats, settings.client_config(),
                           interval_s=max(1.0, settings.stats_interval_ms * 6 / 1000))
    if settings.stats_interval_ms:
        sizes.start()
    HEALTH.mark_ready()
    try:
        processor.run()
    except DutyChangedError:
        log.info("the live record changed this processor's duty as it started: starting again")
        return EXIT_RESTART
    except StateChangeRefusedError as error:
        HEALTH.fail("stored state built with another strategy")
        log.error("%s", error)  # noqa: TRY400 - the message is the whole story, no traceback
        return EXIT_CONFIG
    except Exception as error:
        HEALTH.fail(f"{type(error).__name__}: {error}")
        log.exception("the stream processor stopped on an error; restart it to resume from the last checkpoint")
        return EXIT_FAILED
    finally:
        sizes.stop()
    log.info("stopped cleanly")
    return EXIT_OK


def _ensure_topics(settings: ProcessSettings, stopping: threading.Event) -> bool:
    """Create this deployment's topics (waiting for Kafka); False if a signal came first."""
    while not stopping.is_set():
        try:
            wait_for_kafka(settings, timeout_s=10)
            ensure_topics(settings, settings.topics().all())
            HEALTH.clear("kafka")
            KafkaConnection("consumer").reachable()
            return True
        except KafkaUnavailableError as error:
            HEALTH.problem("kafka", "Kafka not reachable at start-up")
            KafkaConnection("consumer").unreachable()
            log.warning("%s; retrying", error)
            time.sleep(1)
    return False

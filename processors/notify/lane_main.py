"""Entry point of one lane process: ``python -m processors.notify.lane_main`` with a pickled LaneSpec on stdin.

Started only by :mod:`processors.notify.supervisor`, which validated everything first.
The lane exits when its parent disappears (even after a ``kill -9`` of the parent
alone), so a restarted supervisor never finds orphan lanes competing for its partitions.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import threading
import time
import warnings

log = logging.getLogger("processors.notify.lane")


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                log.error("supervisor %d is gone; lane exits", parent_pid)
                os._exit(70)
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    # confluent_kafka's schema registry (imported by quixstreams) pulls in authlib; from 1.8 on it warns about
    # httpx at import (the lock holds 1.7.2, requirements/constraints.txt): keep a lane's log clean regardless.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    # Imported here, after PROMETHEUS_MULTIPROC_DIR is in the environment, so metrics aggregate.
    from quixstreams import Application

    from processors.notify.channels import build_sender
    from processors.notify.lane import (
        InterruptibleSleep,
        LaneProcessor,
        LaneStopping,
        build_application,
        utc_now,
    )
    from processors.notify.spec import LaneSpec
    from processors.notify.subscriptions import maskable_values
    from processors.runtime.observability import register_secret, setup_logging

    spec = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by our own supervisor through a pipe
    if not isinstance(spec, LaneSpec):
        raise SystemExit("lane: stdin did not hold a LaneSpec")
    settings = spec.settings
    setup_logging(settings.log_level, service=f"notify[{spec.channel}]")
    if settings.log_level != "DEBUG":
        logging.getLogger("quixstreams").setLevel(logging.WARNING)
    for value in maskable_values(spec.secrets):
        register_secret(value)
    _exit_with_parent(spec.parent_pid)

    state_dir = settings.lane_state_dir(spec.channel, renotify=spec.renotify)
    if spec.renotify:
        shutil.rmtree(state_dir, ignore_errors=True)  # a renotify run starts from a clean slate
    sender = build_sender(spec.channel, spec.config, spec.secrets, settings, now=utc_now)
    processor = LaneProcessor(spec, sender, sleep=InterruptibleSleep())

    app_holder: list[Application] = []
    stop_offsets = spec.stop_offsets
    if stop_offsets is not None:
        pending = set(stop_offsets)
        if not pending:
            log.info("channel %s: nothing to re-announce", spec.channel)
            return 0

        def on_processed(_topic: str, partition: int, offset: int) -> None:
            if partition in pending and offset >= stop_offsets[partition]:
                pending.discard(partition)
                if not pending:
                    log.info("channel %s: renotify caught up with the log, stopping", spec.channel)
                    app_holder[0].stop()

        app = build_application(spec, processor, on_processed)
    else:
        app = build_application(spec, processor)
    app_holder.append(app)
    log.info("channel %s (%s): lane started, %d subscription(s)%s", spec.channel, spec.config.type,
             len(spec.subscriptions), " [renotify]" if spec.renotify else "")
    try:
        app.run()
    except LaneStopping:
        pass
    finally:
        processor.close()  # closes the sender too
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the file source stopped, on disk, so a restart resumes at its last line instead of line 1.

:class:`~processors.ingest.sources.file.FileSource` reads through a :class:`FilePositions` and
yields a :class:`~processors.ingest.sources.base.Checkpoint` every so many lines; the ingest
service calls its ``save`` only once Kafka has acknowledged every record produced before it
(``flush`` returned with nothing pending, no delivery failed). So the saved position never runs
ahead of the log (no line lost on ``kill -9``), and a restart re-reads at most the lines since
the last checkpoint, which the recall window (``INGEST_DEDUP_WINDOW``) keeps from being
published twice.

A position names its file by the deployment (bootstrap servers, ticks topic), the file's place
in the ``--path`` list and its resolved path (one file per position, named by a hash of those,
written atomically like the Alpha Vantage budget: temporary file, fsync, rename). It also holds

- the id Kafka gave the ticks topic: a topic deleted and created again is another log, so the
  file is read from the start into it;
- a fingerprint of the file's head (SHA-256 of its first :data:`HEAD_BYTES` bytes, or of all the
  bytes up to the position when fewer): a file replaced or truncated since is read from the start,
  with a warning. A file only appended to resumes (its ``source_id`` tag, a hash of the whole
  content, changes with the content).

A position file that cannot be read or parsed is ignored with a warning (the file is read from
the start; the recall window catches what the log already holds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

HEAD_BYTES = 4096


@dataclass(frozen=True)
class FilePosition:
    """The file's bytes before ``offset`` (lines 1 … ``line``) are read and their records acknowledged."""

    offset: int
    line: int
    head: str  # SHA-256 (hex) of the file's first min(HEAD_BYTES, offset) bytes


def head_fingerprint(handle: BinaryIO, offset: int) -> str:
    """SHA-256 of the first ``min(HEAD_BYTES, offset)`` bytes of ``handle`` (read in place: its position stays)."""
    return hashlib.sha256(os.pread(handle.fileno(), min(HEAD_BYTES, offset), 0)).hexdigest()


def check_writable(folder: Path) -> None:
    """Raise ``OSError`` if positions cannot be written to ``folder`` (checked at start, not at the first save)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-probe-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


class FilePositions:
    """The saved positions of one ingest deployment's input files, in ``folder``.

    ``log_id`` returns the id of the ticks topic (called once, when the first position is
    needed, i.e. after ingest has made sure the topic exists). ``from_start`` ignores what is saved.
    """

    def __init__(self, folder: Path, deployment: str, log_id: Callable[[], str], *, from_start: bool = False) -> None:
        self.folder = folder
        self.deployment = deployment
        self._log_id = log_id
        self._log: str | None = None
        self.from_start = from_start

    def log(self) -> str:
        if self._log is None:
            self._log = self._log_id()
        return self._log

    def path_of(self, index: int, path: Path) -> Path:
        """The position file of the ``index``-th input ``path`` (a hash, so no path text lands in a name)."""
        name = f"{self.deployment}\n{index}\n{path.resolve()}"
        return self.folder / f"file-position-{hashlib.sha256(name.encode()).hexdigest()[:16]}.json"

    def load(self, index: int, path: Path, handle: BinaryIO) -> FilePosition | None:
        """Where to resume ``path`` (open as ``handle``); None: from the start (nothing saved, or not valid any more)."""
        if self.from_start:
            return None
        where = self.path_of(index, path)
        try:
            data = json.loads(where.read_text())
            position = FilePosition(int(data["offset"]), int(data["line"]), str(data["head"]))
            log_id = str(data["log"])
            if position.offset < 0 or position.line < 0:
                raise ValueError("negative offset or line")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("file position %s of %s is unreadable (%s): reading the file from the start", where, path,
                        error)
            return None
        if log_id != self.log():
            log.info("%s: the ticks topic is not the one its saved position was written for (created again):"
                     " reading the file from the start", path)
            return None
        size = os.fstat(handle.fileno()).st_size
        if size < position.offset or head_fingerprint(handle, position.offset) != position.head:
            log.warning("%s was replaced or truncated since line %d was read: reading it from the start", path,
                        position.line)
            return None
        return position

    def save(self, index: int, path: Path, position: FilePosition) -> None:
        """Write atomically (temporary file, fsync, rename); an error propagates."""
        where = self.path_of(index, path)
        where.parent.mkdir(parents=True, exist_ok=True)
        temporary = where.with_suffix(".tmp")
        temporary.write_text(json.dumps({"path": str(path), "log": self.log(), "offset": position.offset,
                                         "line": position.line, "head": position.head}))
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        temporary.replace(where)

"""Figures quoted in README.md and docs/*.md, tied to the results JSON they come from.

A figure in the docs carries a marker right after it (an HTML comment: invisible once rendered)
that names the results file and where in it the number is::

    the engine does 805 000<!--fig bench/results/2026-11-27.json: benches[indicators].output.figures[indicator engine].ours.value--> ticks per CPU second
    12.3×<!--fig bench/results/2026-11-27.json: {benches[indicators].output.figures[indicator engine].ratio}-->
    35 %<!--fig bench/results/2026-11-27.json: {benches[process].output.figures[stream processor throughput, exactly-once].ratio} * 100-->

* The **source** is a JSON file of the repository (under ``bench/results/``), or ``pending(SHAPE)`` for a
  figure the next run produces: the text before the marker is then ``(to be regenerated)`` and SHAPE is
  how the number will be written (``1 234``, ``1,234``, ``12.3``, ``52k``: separator, decimals, rounding).
  ``pending(SHAPE; chaos-full)`` waits for a run of that family (``bench/results/chaos-full-<date>.json``,
  written by ``make test-chaos``); without it, for ``make bench``'s ``bench/results/<date>.json``.
* The **value** is a path into the JSON — ``.`` between keys, ``[name]`` picks the element of a list
  whose ``name`` is that text (``[fault=kill -9 process]``: whose ``fault`` is), or a dict key with dots
  or spaces, ``[3]`` an index — or an arithmetic
  expression (``+ - * /``, parentheses, numbers) over paths written ``{path}``.
* The **figure** is the last number before the marker on its line (since the previous marker):
  ``805 000``, ``31,074``, ``0.27``, ``10.9``, ``52k``, ``5.7M``. It must be the value rounded the
  way it is written: to its decimals, or for a whole number ending in zeros to that power of ten
  (``805 000`` stands for 804 500 … 805 499).
* ``<!--text FILE: PATH-->`` after a text (a table cell) says the text is that string of the JSON, numbers
  and all (the benchmarks' "how" column).
* ``<!--figpin FILE: PATH-->`` is a marker that ``update`` never re-points: a deliberate comparison
  with that run ("before issue 12 the run of 2026-11-27 measured …").
* ``<!--fig setting-->`` after a number says it is a setting, a parameter or a threshold, not a
  measurement (``commit interval 0.25 s``).

In the sections that report measurements (headings about benchmarks, measurements, recovery, chaos, A/B,
soak, figures, limits; paragraphs opening with "Measured"), every number with a unit of measure
(rates, µs, ms, seconds with decimals, ×, %) must carry a marker: :func:`unmarked_figures` finds the
ones that do not. ``tests/unit/bench/test_bench_figures.py`` runs both checks over the docs.

    .venv/bin/python -m bench.figures check                       # what the test checks
    .venv/bin/python -m bench.figures update --run bench/results/2026-12-01.json \\
        [--replace bench/results/2026-11-27.json | --replace previous] [--dry-run]  # fill pending (re-point old)

``update`` rewrites each pending figure from the run (and each figure that cites the replaced file),
in the shape it is written, and points its marker at the run: the docs are then regenerated from it.
``make bench`` does this itself (``bench/run_all.py`` calls :func:`update` with the ``make bench`` run the
docs cite most as the replaced file). A figure a benchmark has renamed since is found under its new name
(:data:`RENAMED`); a figure whose path the new run does not have stays on the older file and is listed
(a deliberate comparison with an earlier run, or a rename to add to :data:`RENAMED`). The prose around
the figures (dates, file names, words) is yours to read again.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO
from bench.figure_values import NUMBER, FigureError, Shown, evaluate, load_json, resolve, shape

PENDING = "pending"
BENCH_FAMILY = "bench"
PENDING_TEXT = "(to be regenerated)"
SETTING = "setting"
#: Figures a benchmark renamed after a run the docs cite: the older run's path → the path in newer runs.
#: :func:`update` uses the new path when the new run has no figure under the old one.
RENAMED = {
    f"benches[latency].output.figures[tick → signal latency {quantile}, exactly-once]":
        f"benches[latency].output.figures[tick → signal latency {quantile}, exactly-once, 0.25 s commits]"
    for quantile in ("p50", "p99")
}
#: How ``make bench`` names its results: ``bench/results/<date>.json`` (other files of that folder are named runs).
BENCH_RUN = re.compile(r"\d{4}-\d{2}-\d{2}\.json")

MARKER = re.compile(
    r"<!--fig(?P<pinned>pin)? (?P<source>pending\((?P<shape>[^)]*)\)|setting|[^\s:]+)(?:: (?P<expr>.*?))?\s*-->")
#: A text taken whole from the JSON (a benchmark's "how"): the text before it, back to the cell's "|" or
#: the previous marker, must be that string; the numbers in it are certified by it.
TEXT_MARKER = re.compile(r"<!--text (?P<source>[^\s:]+): (?P<path>.*?)\s*-->")
#: Units that make a number a measurement (seconds only with decimals: whole seconds are mostly settings).
MEASURE_UNIT = re.compile(
    r"^\s?(?:×|%|µs|ms\b|(?:ticks|records|events|deliveries|signals|requests|notifications)/s\b|/s\b"
    r"|ticks per CPU second|ticks/CPU-s)")
DECIMAL_SECONDS = re.compile(r"^\s?s\b")
#: A comparison before a number makes it a goal or a bound, not a measurement.
THRESHOLD_BEFORE = re.compile(r"(?:[≥≤<>]|goal|bound|bounds|under|above|below|within)\s*[~≈]?\s*$")
FIGURE_HEADINGS = re.compile(
    r"benchmark|measure|throughput|latency|recovery|chaos|soak|figures|known limits|performance|\bA/B\b|what it costs",
    re.IGNORECASE)
INLINE_CODE = re.compile(r"`[^`\n]*`")  # never across lines: one stray backtick must not mask the rest of a page
COMMENT = re.compile(r"<!--.*?-->")


@dataclass(frozen=True)
class Marker:
    file: Path
    line: int  # 1-based
    start: int  # offsets of the marker in the file's text
    end: int
    source: str  # a results file, "pending" or "setting"
    sample: str | None  # pending: the shape the figure will have
    family: str | None  # pending: the kind of run it waits for ("bench", "chaos-full", "soak")
    expression: str | None
    shown: Shown | None  # the figure before the marker (None for pending)
    pinned: bool = False  # ``figpin``: a deliberate reference to that run, never re-pointed by update

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(REPO) if self.file.is_relative_to(REPO) else self.file}:{self.line}"


def _masked(text: str) -> str:
    """``text`` with code (fenced blocks, inline spans) blanked, offsets kept: markers there are examples."""
    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    text = re.sub(r"^```.*?^```", blank, text, flags=re.MULTILINE | re.DOTALL)
    return INLINE_CODE.sub(blank, text)


def markers(path: Path, text: str | None = None) -> list[Marker]:
    """Every marker of a Markdown file with the figure it follows (markers inside code are examples)."""
    text = _masked(path.read_text(encoding="utf-8") if text is None else text)
    found = []
    previous_end = 0
    for match in MARKER.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = text[max(line_start, previous_end):match.start()]
        previous_end = match.end()
        source = match.group("source")
        sample, family = match.group("shape"), None
        if source.startswith(PENDING):
            source = PENDING
            sample, _, family = (sample or "").partition(";")
            family = family.strip() or BENCH_FAMILY
        numbers = list(NUMBER.finditer(COMMENT.sub(" ", before)))
        shown = Shown.parse(numbers[-1]) if numbers and source != PENDING else None
        found.append(Marker(path, text.count("\n", 0, match.start()) + 1, match.start(), match.end(), source,
                            sample, family, match.group("expr"), shown, bool(match.group("pinned"))))
    return found


def problems(marker: Marker) -> list[str]:
    """What is wrong with one marker (empty when the figure is the value of its source)."""
    if marker.source == SETTING:
        return [] if marker.shown is not None else [f"{marker.where}: a setting marker without a number before it"]
    if not marker.expression:
        return [f"{marker.where}: no value path after the source"]
    if marker.source == PENDING:
        try:
            shape(marker.sample or "")
        except FigureError as error:
            return [f"{marker.where}: {error}"]
        return []
    if not marker.source.startswith("bench/results/"):
        return [f"{marker.where}: the source must be a JSON under bench/results/, not {marker.source}"]
    if marker.shown is None:
        return [f"{marker.where}: no number before the marker"]
    try:
        value = evaluate(load_json(marker.source), marker.expression)
    except (FigureError, IndexError, ZeroDivisionError, json.JSONDecodeError) as error:
        return [f"{marker.where}: {error}"]
    if not math.isfinite(value) or not marker.shown.agrees_with(value):
        return [f"{marker.where}: the docs say {marker.shown.text}, {marker.source} gives {value:.6g}"
                f" ({marker.expression})"]
    return []


def text_problems(path: Path, text: str) -> list[str]:
    """Every text marker's text must be its JSON string."""
    found = []
    text = _masked(text)
    for match in TEXT_MARKER.finditer(text):
        where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{text.count(chr(10), 0, match.start()) + 1}"
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = text[line_start:match.start()]
        before = re.split(r"<!--.*?-->|\|", before)[-1].strip()
        try:
            expected = resolve(load_json(match.group("source")), match.group("path"))
        except (FigureError, IndexError, json.JSONDecodeError) as error:
            found.append(f"{where}: {error}")
            continue
        if before != str(expected).strip():
            found.append(f"{where}: the docs say {before!r}, {match.group('source')} gives {expected!r}")
    return found


def pending_text_problems(path: Path, text: str) -> list[str]:
    """A pending marker must follow the placeholder; the placeholder must be followed by a pending marker."""
    found = []
    text = _masked(text)
    for marker in markers(path, text):
        if marker.source == PENDING and not text[:marker.start].endswith(PENDING_TEXT):
            found.append(f"{marker.where}: a pending marker must follow the text {PENDING_TEXT!r}")
    for match in re.finditer(re.escape(PENDING_TEXT), text):
        if not MARKER.match(text, match.end()) or not text[match.end():].startswith("<!--fig pending("):
            found.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:"
                         f"{text.count(chr(10), 0, match.start()) + 1}: {PENDING_TEXT!r} without a pending marker")
    return found


def _figure_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the lines in sections that report measurements (code blocks skipped)."""
    headings: list[tuple[int, bool]] = []  # (level, reports measurements) of the open headings
    in_section = False
    in_measured = False
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)", line)
        if heading:
            level = len(heading.group(1))
            headings = [*(entry for entry in headings if entry[0] < level),
                        (level, bool(FIGURE_HEADINGS.search(heading.group(2))))]
            in_section = any(reports for _, reports in headings)
            in_measured = False
            continue
        if re.match(r"^\s*(?:[-*]\s+)?\**Measured\b", line):
            in_measured = True
        if in_section or in_measured:
            yield number, line


def unmarked_figures(path: Path, text: str | None = None) -> list[str]:
    """Numbers with a unit of measure, in a measurement section, that no marker follows."""
    text = path.read_text(encoding="utf-8") if text is None else text
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    found = []
    for number, line in _figure_lines(text):
        cleaned = INLINE_CODE.sub(lambda match: " " * len(match.group(0)), line)
        # The line cut at its markers: in each piece, the last number is the marked one.
        pieces = re.split(r"(<!--.*?-->)", cleaned)
        offset = 0
        for index in range(0, len(pieces), 2):
            piece = pieces[index]
            piece_offset = offset
            offset += len(piece) + (len(pieces[index + 1]) if index + 1 < len(pieces) else 0)
            marked_by_next = index + 1 < len(pieces) and pieces[index + 1].startswith(("<!--fig ", "<!--figpin "))
            if index + 1 < len(pieces) and pieces[index + 1].startswith("<!--text "):
                piece = piece[:piece.rfind("|") + 1]  # the cell's text is the JSON's, numbers and all
            numbers = list(NUMBER.finditer(piece))
            for position, match in enumerate(numbers):
                if marked_by_next and position == len(numbers) - 1:
                    continue
                after = piece[match.end():]
                if re.match(r"^\.\d", after):
                    continue  # a version (3.11.7, 6.18.44), not a figure
                # "52 000–79 000 ticks/s", "3.4 / 173 ms": the unit after the last number of a range or pair.
                unit_after = RANGE_CONTINUATION.sub("", after, count=1)
                measured = (MEASURE_UNIT.match(unit_after)
                            or (match.group("fraction") and DECIMAL_SECONDS.match(unit_after))
                            or _in_table_figure_cell(cleaned, piece_offset + match.start(),
                                                     piece_offset + match.end()))
                if not measured or THRESHOLD_BEFORE.search(piece[:match.start()]):
                    continue
                found.append(f"{where}:{number}: {match.group(0)}{after[:12].rstrip()} has no <!--fig …--> marker")
    return found


RANGE_CONTINUATION = re.compile(
    r"^(?:\s?(?:–|-|/|to)\s?(?:\d{1,3}(?:[ ,\u202f]\d{3})+|\d+)(?:\.\d+)?[kM]?)+(?=\s?\S)")
#: Words after a number in a table cell that make it a count or a setting, not a measured figure.
COUNT_WORDS = re.compile(r"^\s?(?:symbols?|partitions?|chunks?|cores?|rounds?|instances?|brokers?|min\b|minutes?"
                         r"|hours?|days?|GiB|indicators?|channels?|services?)")


def _in_table_figure_cell(line: str, start: int, end: int) -> bool:
    """A number opening a table cell past the first column, not a count of things: a measured cell."""
    if not line.lstrip().startswith("|") or re.fullmatch(r"[\s|:-]*", line):
        return False
    before = COMMENT.sub("", line[:start])
    cell_prefix = before[before.rfind("|") + 1:]
    return (before.count("|") >= 2 and re.fullmatch(r"[\s*~≈(]*", cell_prefix) is not None
            and not COUNT_WORDS.match(line[end:]))


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def check(paths: Sequence[Path] | None = None) -> list[str]:
    """Every problem of every marker, and every unmarked figure, in ``paths`` (default: README + docs)."""
    found: list[str] = []
    for path in paths or documents():
        text = path.read_text(encoding="utf-8")
        for marker in markers(path, text):
            found.extend(problems(marker))
        found.extend(pending_text_problems(path, text))
        found.extend(text_problems(path, text))
        found.extend(unmarked_figures(path, text))
    return found


def family(run: str) -> str:
    """The kind of run a results file holds: ``chaos-full-2026-12-05.json`` → chaos-full, ``2026-12-05.json`` → bench."""
    found = re.fullmatch(r"(?:(?P<family>.+?)-)?\d{4}-\d{2}-\d{2}(?:-[\w-]+)?\.json", Path(run).name)
    return (found.group("family") if found and found.group("family") else BENCH_FAMILY)


def previous_bench_run(run: str, paths: Sequence[Path] | None = None) -> str | None:
    """The ``make bench`` results file (``bench/results/<date>.json``, not ``run``) that most markers cite.

    Pinned markers do not count: they stay on their run whatever comes. None when no marker cites one."""
    counts: dict[str, int] = {}
    for path in paths or documents():
        for marker in markers(path):
            if (not marker.pinned and marker.source.startswith("bench/results/") and marker.source != run
                    and BENCH_RUN.fullmatch(Path(marker.source).name)):
                counts[marker.source] = counts.get(marker.source, 0) + 1
    return max(counts, key=lambda source: (counts[source], source)) if counts else None


def _renamed(expression: str) -> str:
    for old, new in RENAMED.items():
        expression = expression.replace(old, new)
    return expression


def update(run: str, replace: str | None = None, paths: Sequence[Path] | None = None,
           dry_run: bool = False) -> tuple[dict[str, int], list[str]]:
    """Fill pending figures of the run's family from ``run`` and re-point figures citing ``replace``.

    A figure whose path the run does not have keeps its marker and its value (it still cites the
    older file, which stays in the repository: a deliberate comparison with an earlier run, or a
    path a benchmark renamed — the returned list names each, to look at). Returns the figures
    changed per file and that list; ``dry_run`` only computes them."""
    document = load_json(run)
    kind = family(run)
    kept: list[str] = []
    changed: dict[str, int] = {}
    for path in paths or documents():
        text = path.read_text(encoding="utf-8")
        pieces: list[str] = []
        position = 0
        count = 0
        for marker in markers(path, text):
            if marker.expression is None or marker.pinned or marker.source not in (PENDING, replace):
                continue
            if marker.source == PENDING and marker.family != kind:
                continue
            expression = marker.expression
            try:
                value = evaluate(document, expression)
            except (FigureError, IndexError, ZeroDivisionError) as error:
                try:
                    expression = _renamed(expression)
                    value = evaluate(document, expression)
                except (FigureError, IndexError, ZeroDivisionError):
                    kept.append(f"{marker.where}: kept on {marker.source} ({error})")
                    continue
            if marker.source == PENDING:
                written = shape(marker.sample or "").format(value)
                figure_start = marker.start - len(PENDING_TEXT)
            else:
                assert marker.shown is not None
                written = marker.shown.format(value)
                figure_start = text.rfind(marker.shown.text, position, marker.start)
            pieces.append(text[position:figure_start])
            pieces.append(f"{written}<!--fig {run}: {expression}-->")
            position = marker.end
            count += 1
        if count and not dry_run:
            pieces.append(text[position:])
            path.write_text("".join(pieces), encoding="utf-8")
        if count:
            changed[str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)] = count
    return changed, kept


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="check every marked figure and find unmarked ones")
    fill = commands.add_parser("update", help="fill pending figures from a run (and re-point an older run's)")
    fill.add_argument("--run", required=True, help="the results JSON, relative to the repository")
    fill.add_argument("--replace", help="markers citing this file are re-pointed at --run and rewritten ('previous':"
                                        " the make bench run the docs cite most)")
    fill.add_argument("--dry-run", action="store_true", help="only list what would change and what would be kept")
    args = parser.parse_args(argv)
    if args.command == "update":
        replace = previous_bench_run(args.run) if args.replace == "previous" else args.replace
        if replace:
            print(f"re-pointing the figures that cite {replace}")
        changed, kept = update(args.run, replace, dry_run=args.dry_run)
        for name, count in changed.items():
            print(f"{name}: {count} figure(s) {'would be ' if args.dry_run else ''}taken from {args.run}")
        for line in kept:
            print(line)
    found = check()
    for problem in found:
        print(problem)
    pending = sum(1 for path in documents() for marker in markers(path) if marker.source == PENDING)
    print(f"{len(found)} problem(s); {pending} figure(s) pending the next run", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

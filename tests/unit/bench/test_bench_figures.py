"""Every figure in README.md and docs/*.md comes from a results JSON: the markers check out, none is missing.

``bench/figures.py`` reads the markers (``<!--fig bench/results/FILE.json: PATH-->`` after a figure) and
finds numbers with a unit of measure in the measurement sections that carry none. The first test runs it
over the real docs; the others hold the machinery to what it promises, on small texts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import figures
from bench.common import REPO, percentile

RUN = "bench/results/2026-11-27.json"
ENGINE = "benches[indicators].output.figures[indicator engine]"


def test_every_figure_in_the_docs_is_its_results_value_and_none_is_unmarked():
    problems = figures.check()
    assert problems == [], "\n".join(problems)


def test_the_docs_have_markers_and_every_source_is_a_committed_results_file():
    found = [marker for path in figures.documents() for marker in figures.markers(path)]
    assert len(found) > 100
    sources = {marker.source for marker in found} - {figures.PENDING, figures.SETTING}
    assert sources and all((REPO / source).is_file() and source.startswith("bench/results/") for source in sources)


def check_text(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "page.md"
    path.write_text(text)
    return figures.check([path])


def test_a_marked_figure_must_be_its_value_rounded_as_written(tmp_path):
    engine = json.loads((REPO / RUN).read_text())["benches"][0]["output"]["figures"][0]["ours"]["value"]
    assert round(engine) == 805319
    good = [f"805 319<!--fig {RUN}: {ENGINE}.ours.value-->", f"805 000<!--fig {RUN}: {ENGINE}.ours.value-->",
            f"805k<!--fig {RUN}: {ENGINE}.ours.value-->", f"12.27<!--fig {RUN}: {{{ENGINE}.ratio}}-->×",
            f"1.24<!--fig {RUN}: 1e6 / {{{ENGINE}.ours.value}}--> µs"]
    for line in good:
        assert check_text(tmp_path, f"## Benchmarks\n\n{line}\n") == [], line
    bad = {f"806 000<!--fig {RUN}: {ENGINE}.ours.value-->": "the docs say 806 000",
           f"805 400<!--fig {RUN}: {ENGINE}.ours.value-->": "the docs say 805 400",  # ±50: ~805 319 ≠ 805 400
           f"12.3<!--fig {RUN}: {ENGINE}.nothing-->": "no 'nothing'",
           f"12.3<!--fig bench/results/absent.json: {ENGINE}.ratio-->": "does not exist",
           f"12.3<!--fig docs/benchmarks.md: {ENGINE}.ratio-->": "must be a JSON under bench/results/",
           f"12.3<!--fig {RUN}: {{{ENGINE}.ratio}} + os-->": "only + - * /"}
    for line, said in bad.items():
        [problem] = check_text(tmp_path, f"## Benchmarks\n\n{line}\n")
        assert said in problem, problem


def test_unmarked_figures_in_measurement_sections_are_flagged(tmp_path):
    text = ("## Configuration\n\nruns at 1 000 ticks/s by default\n\n"
            "## Benchmarks\n\nthe engine does 805 000 ticks/s, 12.3× talipp, p99 173 ms, recovery 10.9 s,\n"
            "52 000–79 000 ticks/s; goal ≥ 5×; commit interval 0.25 s<!--fig setting-->; 200 000 ticks;\n"
            "version 3.11.7; `--rate 500 ticks/s`\n\n"
            "| figure | ours | baseline |\n|---|---|---|\n| drain | 31 074 | 88 661 (pass-through) |\n\n"
            "## Tests\n\nMeasured here: 4.2 ms per test.\n")
    flagged = [figures.NUMBER.match(problem.split(": ", 1)[1]).group(0)  # type: ignore[union-attr]
               for problem in check_text(tmp_path, text)]
    # Not flagged: the configuration section, a goal, a setting, counts, versions, inline code.
    assert flagged == ["805 000", "12.3", "173", "10.9", "52 000", "79 000", "31 074", "88 661", "4.2"]


def test_a_b_and_cost_sections_report_measurements(tmp_path):
    text = ("## What it costs the processor (A/B, same run)\n\n| benchmark | baseline | ours |\n|---|---|---|\n"
            "| handler | 48.80 µs CPU/tick | 48.71 µs CPU/tick |\n\n## Migrating\n\nabout 2.5 s per partition\n")
    flagged = [problem.split(": ", 1)[1].split()[0] for problem in check_text(tmp_path, text)]
    assert flagged == ["48.80", "48.71"]

def test_pending_figures_need_the_placeholder_and_a_shape(tmp_path):
    assert check_text(tmp_path, f"## Benchmarks\n\n(to be regenerated)<!--fig pending(1 234): {ENGINE}.ours.value-->"
                                " ticks/s\n") == []
    [problem] = check_text(tmp_path, f"## Benchmarks\n\nabout<!--fig pending(1 234): {ENGINE}.ours.value-->\n")
    assert "must follow the text" in problem
    [problem] = check_text(tmp_path, "## Benchmarks\n\nthroughput (to be regenerated) ticks/s\n")
    assert "without a pending marker" in problem
    [problem] = check_text(tmp_path, f"## Benchmarks\n\n(to be regenerated)<!--fig pending(fast): {ENGINE}.ratio-->\n")
    assert "not a number shape" in problem


def test_text_markers_certify_a_cell_taken_whole_from_the_json(tmp_path):
    how = "best of 7 alternating rounds; rates per CPU second of the process"
    row = "| figure | how |\n|---|---|\n| engine | {how}<!--text " + RUN + ": " + ENGINE + ".how--> |\n"
    assert check_text(tmp_path, "## Benchmarks\n\n" + row.format(how=how)) == []
    problems = check_text(tmp_path, "## Benchmarks\n\n" + row.format(how="best of 9 rounds"))
    assert any("the docs say 'best of 9 rounds'" in problem for problem in problems)


def test_update_fills_pending_figures_and_repoints_an_older_run(tmp_path, monkeypatch):
    new_run = tmp_path / "new.json"
    new_run.write_text(json.dumps({"benches": [{"name": "indicators", "output": {"figures": [
        {"name": "indicator engine", "ours": {"value": 812345.6}, "ratio": 12.91}]}}]}))
    page = tmp_path / "page.md"
    page.write_text(f"engine (to be regenerated)<!--fig pending(1 000): {ENGINE}.ours.value--> ticks/s, "
                    f"{12.27:.2f}<!--fig {RUN}: {{{ENGINE}.ratio}}-->× talipp\n")
    page.write_text(page.read_text() + f"before: 65 612<!--fig {RUN}: {ENGINE}.baseline.value--> ticks/s\n")
    changed, kept = figures.update(str(new_run), RUN, [page])
    assert list(changed.values()) == [2]
    assert page.read_text() == (f"engine 812 000<!--fig {new_run}: {ENGINE}.ours.value--> ticks/s, "
                                f"12.91<!--fig {new_run}: {{{ENGINE}.ratio}}-->× talipp\n"
                                f"before: 65 612<!--fig {RUN}: {ENGINE}.baseline.value--> ticks/s\n")
    [note] = kept  # the new run has no baseline: that figure stays on the older file, and is named
    assert "kept on" in note and RUN in note


def scaled(value, factor: float):
    """Every number of a results JSON times ``factor`` (whole numbers stay whole): a stand-in for a new run."""
    if isinstance(value, dict):
        return {key: scaled(item, factor) for key, item in value.items()}
    if isinstance(value, list):
        return [scaled(item, factor) for item in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return round(value * factor) if isinstance(value, int) else value * factor


def test_a_new_make_bench_run_regenerates_every_figure_of_the_previous_one(tmp_path):
    """What ``make bench`` does after a full run, on copies of the docs and a stand-in for the new run.

    Every figure quoting the make bench run the docs cite (not pinned) is rewritten from the new run and
    re-pointed at it, those a benchmark renamed since included (:data:`bench.figures.RENAMED`); none is
    left behind; the rewritten figures are the new run's values."""
    previous = figures.previous_bench_run("bench/results/2999-01-01.json")
    assert previous is not None and figures.BENCH_RUN.fullmatch(Path(previous).name)
    new = json.loads((REPO / previous).read_text())
    for bench in new["benches"]:  # the names the current benchmarks give these figures
        for figure in (bench.get("output") or {}).get("figures", []):
            prefix = f"benches[{bench['name']}].output.figures["
            figure["name"] = figures.RENAMED.get(f"{prefix}{figure['name']}]", f"{prefix}{figure['name']}]")[
                len(prefix):-1]
    new_run = tmp_path / "2999-01-01.json"
    new_run.write_text(json.dumps(scaled(new, 1.37)))
    copies = []
    for document in figures.documents():
        copy = tmp_path / document.name
        copy.write_text(document.read_text(encoding="utf-8"), encoding="utf-8")
        copies.append(copy)
    citing = [marker for copy in copies for marker in figures.markers(copy)
              if marker.source == previous and not marker.pinned]
    assert len(citing) > 200
    pending = [marker for copy in copies for marker in figures.markers(copy)
               if marker.source == figures.PENDING and marker.family == figures.BENCH_FAMILY]

    changed, kept = figures.update(str(new_run), previous, copies)

    # Pending figures of benchmarks the previous run did not have yet (so neither has its stand-in) wait
    # for a real run; every other figure is rewritten, the pending ones of the benchmarks it has filled.
    ran = {bench["name"] for bench in new["benches"]}
    waiting = [line for line in kept if ": kept on pending " in line]
    assert [line for line in kept if line not in waiting] == []
    assert not [line for line in waiting if re.search(r"benches\[([^\]]+)\]", line).group(1) in ran]
    regenerated = len(citing) + len(pending) - len(waiting)
    assert sum(changed.values()) == regenerated
    after = [marker for copy in copies for marker in figures.markers(copy)]
    assert not [marker.where for marker in after if marker.source == previous and not marker.pinned]
    moved = [marker for marker in after if marker.source == str(new_run)]
    assert len(moved) == regenerated
    document = json.loads(new_run.read_text())
    wrong = [f"{marker.where}: {marker.shown}" for marker in moved
             if marker.shown is None or not marker.shown.agrees_with(figures.evaluate(document, marker.expression))]
    assert wrong == []
    if any(path in (marker.expression or "") for marker in citing for path in figures.RENAMED):  # a renamed figure
        assert any(figures.RENAMED[path] in (marker.expression or "") for marker in moved for path in figures.RENAMED)

@pytest.mark.parametrize(("shown", "value", "written"), [
    ("805 000", 812_345.6, "812 000"), ("31,074", 29_999.5, "30,000"), ("0.27", 0.3549, "0.35"),
    ("52k", 61_234, "61k"), ("5.7M", 5_742_388, "5.7M"), ("10.9", 25.38, "25.4"), ("1 033", 999.6, "1 000"),
])
def test_a_new_value_is_written_in_the_shape_of_the_old_one(shown, value, written):
    match = figures.NUMBER.fullmatch(shown)
    assert match is not None
    assert figures.Shown.parse(match).format(value) == written


# -- the one percentile --------------------------------------------------------------------------------

def test_percentile_is_the_nearest_rank_of_the_measured_values():
    hundred = [float(value) for value in range(1, 101)]
    assert percentile(hundred, 0.50) == 50 and percentile(hundred, 0.99) == 99 and percentile(hundred, 1.0) == 100
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0  # the lower middle of an even count, an observed value
    assert percentile([5.0], 0.99) == 5.0 and percentile(range(1, 11), 0.99) == 10  # p99 of < 100 values: the max
    assert percentile([1.0, 2.0, 3.0], 0.34) == 2.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 0.0)


def test_bench_and_soak_use_the_one_percentile():
    for relative in ("bench/bench_latency.py", "bench/bench_notify.py", "tests/soak/soak_support.py"):
        source = (REPO / relative).read_text()
        assert "from bench.common import" in source and "percentile" in source, relative
        assert "def percentile" not in source and "ordered[min(" not in source, relative


def test_the_materializer_figure_is_the_median_of_the_per_round_ratios():
    from bench.bench_materialize import median_round

    found = median_round(ours=[50.0, 90.0, 30.0], baseline=[100.0, 100.0, 20.0], unit="events")
    assert found["ratio_per_round"] == [0.5, 0.9, 1.5] and found["ratio"] == 0.9 and found["median_round"] == 1
    # The reported pair is that round's: its ratio is the median ratio (not median(ours) / median(baseline) = 1.0).
    assert found["materialize_events_per_s"] / found["hset_events_per_s"] == 0.9
    even = median_round(ours=[1.0, 2.0, 3.0, 4.0], baseline=[1.0, 1.0, 1.0, 1.0], unit="records")
    assert even["ratio"] == 2.0 and even["median_round"] == 1  # the lower median: a real round


def test_a_stray_backtick_does_not_hide_the_figures_after_it(tmp_path):
    """Inline code never spans lines: one unmatched backtick once masked the rest of docs/core.md, and
    its figures went unchecked (and unregenerated)."""
    page = tmp_path / "page.md"
    text = "A stray ` backtick.\n\n## Benchmarks\n\nMeasured 2.5<!--fig setting--> ms and `code 9.9<!--fig setting-->`.\n"
    page.write_text(text, encoding="utf-8")
    found = figures.markers(page, text)
    assert [marker.shown.text for marker in found if marker.shown] == ["2.5"]

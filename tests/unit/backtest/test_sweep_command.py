"""``stockstream sweep`` refuses bad options and inputs before starting Spark (exit 2, the reason on stderr)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stockstream.cli import app


@pytest.mark.parametrize(("options", "said"), [
    (["--grid", "fast=9..3"], "positive step"),
    (["--grid", "fast=2..5, other=1..3"], "exactly the parameters fast and slow"),
    (["--grid", "fast=10..20, slow=2..5"], "no combination"),
    (["--metric", "luck"], "unknown metric"),
    (["--average", "wma"], "sma or ema"),
])
def test_bad_options_exit_2_without_spark(tmp_path, options, said):
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,open,close\n2024-01-01T00:00:00Z,1,1\n2024-01-01T00:01:00Z,1,2\n")
    result = CliRunner().invoke(app, ["sweep", "--input", str(bars), *options])
    assert result.exit_code == 2
    assert said in result.output


def test_unreadable_bars_exit_2(tmp_path):
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,close\n2024-01-01T00:00:00Z,-1\n")
    result = CliRunner().invoke(app, ["sweep", "--input", str(bars)])
    assert result.exit_code == 2
    assert "positive" in result.output


@pytest.mark.parametrize(("grid", "extra", "said"), [
    ("trend.nope=1..3", [], "not declared"),
    ("fast=3..5", ["--timeframe", "1h"], "no strategy runs on 1h"),
    ("fast=3..5", ["--symbol", "ETH-USD"], "pick one instrument"),
])
def test_strategy_sweeps_refuse_bad_requests_before_spark(tmp_path, grid, extra, said):
    strategy = tmp_path / "s.toml"
    strategy.write_text('[strategies.trend]\ntimeframe = "5m"\nparams = { fast = 5, slow = 20 }\n'
                        'buy = "ema(fast) > ema(slow)"\n')
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("timestamp,symbol,price\n1704067200000,BTC-USD,100\n1704067500000,BTC-USD,101\n")
    result = CliRunner().invoke(app, ["sweep", "--input", str(ticks), "--strategy", str(strategy), "--grid", grid,
                                      *extra])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())

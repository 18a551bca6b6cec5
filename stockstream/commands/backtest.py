"""``stockstream backtest``: simulate trading a rule set's signals, against buy-and-hold over the same range.

Over backfill output (``--input``), or over any range of the log (``--from`` /
``--to``: a Spark backfill into a temporary folder runs first). Writes a trades CSV
and an equity-curve PNG. Exit codes: 0 done; 2 nothing done (bad option, missing input).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stockstream.console import console
from stockstream.ranges import split_bound

EXIT_OK, EXIT_USAGE = 0, 2


class Mode(StrEnum):
    long_only = "long-only"
    long_short = "long-short"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def backtest(
    input_path: Annotated[Path | None, typer.Option("--input", help="A `stockstream backfill` output folder, or a ticks file (CSV/Parquet: timestamp, symbol, price[, volume]).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Instead of --input: backfill this range of the log first; its start (offsets, a time, a date or a duration ago, like backfill).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Range end, exclusive (offsets, a time, a date or a duration ago).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols (each venue's) or instruments SYMBOL@venue.", show_default="every instrument")] = None,
    timeframe: Annotated[str, typer.Option(help="Timeframe whose signals are traded and prices marked (tick, 1m…).")] = "tick",
    rules: Annotated[str | None, typer.Option(help="Comma-separated rules to trade.", show_default="all")] = None,
    fee: Annotated[float, typer.Option(min=0, max=0.5, help="Fee per side, a fraction of the notional (0.001 = 10 bp).")] = 0.001,
    slippage: Annotated[float, typer.Option(min=0, max=0.5, help="Slippage per fill, a fraction of the price.")] = 0.0,
    mode: Annotated[Mode, typer.Option(help="long-only: SELL closes; long-short: SELL reverses to a short.")] = Mode.long_only,
    sharpe_interval: Annotated[float, typer.Option(min=1, help="Unused since the next-bar model (Sharpe is annualized from the bars' spacing); kept so scripts keep working.")] = 3600.0,
    trades: Annotated[Path, typer.Option(help="Trades CSV to write.")] = Path("trades.csv"),
    plot: Annotated[Path, typer.Option(help="Equity-curve PNG to write.")] = Path("equity.png"),
    master: Annotated[str | None, typer.Option(help="Spark master for the backfill of a range (env SPARK_MASTER).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON on stdout.")] = False,
    report: Annotated[Path | None, typer.Option(help="A self-contained HTML report to write.")] = None,
    strategy_file: Annotated[Path | None, typer.Option("--strategy", help="Strategy file (TOML/YAML): the rule language ([strategies.NAME]; --rules then names strategies) or indicator/rule settings.")] = None,
    parameters: Annotated[str | None, typer.Option("--set", help="Rule-language parameters, e.g. 'trend.fast=12,trend.slow=30' (a bare name sets it in every strategy declaring it).")] = None,
    weights: Annotated[str | None, typer.Option(help="Capital weights, e.g. 'BTC-USD=0.6,ETH-USD=0.4'.")] = None,
    stop_loss: Annotated[str | None, typer.Option(help="Stop-loss, '2%' or '1.5atr'.")] = None,
    take_profit: Annotated[str | None, typer.Option(help="Take-profit, '5%' or '3atr'.")] = None,
    trailing_stop: Annotated[str | None, typer.Option(help="Trailing stop, '3%' or '2atr'.")] = None,
    sizing: Annotated[str, typer.Option(help="'fraction' of equity or fixed 'notional'.")] = "fraction",
    size: Annotated[float, typer.Option(help="The fraction (0–1] or the notional.")] = 1.0,
) -> None:
    """Backtest a rule set on backfill output or a range of the log: trades, returns, drawdown, Sharpe vs buy-and-hold."""
    from processors.core.rules import RULE_NAMES
    from schemas.timeframes import InvalidTimeframeError, validate_timeframe
    from spark_jobs.backtest.backfilled import run_backfilled
    from spark_jobs.backtest.data import BacktestInputError

    err = console(stderr=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[red]error:[/] {escape(message)}")
        return typer.Exit(EXIT_USAGE)

    from_offset, from_time = split_bound(start)
    to_offset, to_time = split_bound(end)
    ranged = start is not None or end is not None
    if input_path is not None and ranged:
        raise fail("give either --input or a range of the log (--from/--to), not both")
    if input_path is None and not ranged:
        raise fail("give --input (a backfill output folder) or a range of the log (--from/--to)")
    try:
        validate_timeframe(timeframe)
    except InvalidTimeframeError as error:
        raise fail(str(error)) from None
    chosen_symbols = tuple(_instrument_text(s) for s in (symbols or "").split(",") if s.strip())
    long_short = mode.value == "long-short"
    levels = (stop_loss, take_profit, trailing_stop)
    if input_path is not None and input_path.is_file():
        _backtest_file(input_path, chosen_symbols, timeframe, rules, fee, slippage, long_short,
                       trades, plot, report, strategy_file, weights, levels, sizing, size, json_output, fail, parameters)
        return
    if parameters:
        raise fail("--set needs a ticks file and a rule-language --strategy: a backfill's signals are already recorded")
    chosen_rules = tuple(r.strip() for r in rules.split(",") if r.strip()) if rules else RULE_NAMES
    unknown = sorted(set(chosen_rules) - set(RULE_NAMES))
    if unknown:
        raise fail(f"unknown rules {unknown}: choose from {', '.join(RULE_NAMES)}")
    workdir: Path | None = None
    try:
        config = _simulation_config(fee, slippage, long_short, sizing, size, levels, fail)
        if input_path is None:
            workdir = Path(tempfile.mkdtemp(prefix="stockstream-backtest-"))
            input_path = _backfill_range(workdir, from_offset, to_offset, from_time, to_time, chosen_symbols,
                                         master, fail, strategy_file)
            label = "a range of the log"
        else:
            if strategy_file is not None:
                raise fail("--strategy applies to a ticks file or a range of the log; a backfill folder's signals"
                           " are those of the strategy it was run with")
            label = input_path.name
        result = run_backfilled(input_path, chosen_symbols, timeframe, config, chosen_rules, _weights(weights))
    except (BacktestInputError, ValueError) as error:
        raise fail(str(error)) from None
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    _present(result, config, f"Backtest: {', '.join(chosen_rules)} on {label}", timeframe, trades, plot, report,
             json_output)


def _weights(text: str | None) -> dict[str, float] | None:
    """``'BTC-USD=0.6,ETH-USD=0.4'`` → weights by instrument (None: equal)."""
    if not text:
        return None
    found = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        found[_instrument_text(name)] = float(value)
    return found


def _simulation_config(fee: float, slippage: float, long_short: bool, sizing: str, size: float,
                       levels: tuple[str | None, ...], fail: Any) -> Any:
    from spark_jobs.backtest.simulate import SimulationConfig

    stop, take, trail = (_level(text, fail) for text in levels)
    return SimulationConfig(fee=fee, slippage=slippage, long_short=long_short, sizing=sizing,  # type: ignore[arg-type]
                            size=size, stop_loss=stop, take_profit=take, trailing_stop=trail)


def _level(text: str | None, fail: Any) -> Any:
    from spark_jobs.backtest.simulate import Level

    if text is None:
        return Level()
    cleaned = text.strip().lower()
    try:
        if cleaned.endswith("%"):
            return Level("percent", float(cleaned[:-1]) / 100)
        if cleaned.endswith("atr"):
            return Level("atr", float(cleaned[:-3]))
    except ValueError as error:
        raise fail(f"{text!r}: {error}") from None
    raise fail(f"{text!r}: a level is a percent ('2%') or ATR multiples ('1.5atr')")


def parse_parameters(text: str | None) -> dict[str, int | float]:
    """``'trend.fast=12, slow=30.5'`` → ``{'trend.fast': 12, 'slow': 30.5}`` (ValueError naming the bad item)."""
    found: dict[str, int | float] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, equals, value = item.partition("=")
        try:
            if not equals or not name.strip():
                raise ValueError
            number = float(value)
            found[name.strip()] = int(number) if number.is_integer() and "." not in value else number
        except ValueError:
            raise ValueError(f"{item!r}: expected name=number") from None
    return found


def _instrument_text(text: str) -> str:
    """``btc-usd@kraken`` → ``BTC-USD@kraken``: symbols are upper case, venues lower case."""
    symbol, at, venue = text.strip().partition("@")
    return f"{symbol.upper()}{at}{venue.lower()}"


def _backtest_file(path: Path, symbols: tuple[str, ...], timeframe: str, rules: str | None, fee: float,
                   slippage: float, long_short: bool, trades: Path, plot: Path, report: Path | None,
                   strategy_file: Path | None, weights: str | None, levels: tuple[str | None, ...], sizing: str,
                   size: float, json_output: bool, fail: Any, parameters: str | None = None) -> None:
    """A ticks file (CSV/Parquet) without Kafka: kernel signals, the next-bar model, a weighted portfolio."""
    from processors.core.strategy import DEFAULT_STRATEGY, StrategyError, load_strategy
    from spark_jobs.backtest.data import BacktestInputError
    from spark_jobs.backtest.portfolio import read_ticks, run_portfolio
    from spark_jobs.backtest.rulefile import RuleFile

    try:
        rule_file = None if strategy_file is None else RuleFile.read(strategy_file)
        overrides = parse_parameters(parameters)
        if overrides and rule_file is None:
            raise fail("--set needs a rule-language strategy file (--strategy with [strategies.NAME] tables)")
        strategy = (DEFAULT_STRATEGY if strategy_file is None or rule_file is not None
                    else load_strategy(strategy_file))
        config = _simulation_config(fee, slippage, long_short, sizing, size, levels, fail)
        weight_map = _weights(weights)
        chosen_rules = tuple(r.strip() for r in rules.split(",") if r.strip()) if rules else None
        result = run_portfolio(read_ticks(path), list(symbols), timeframe, config, strategy, chosen_rules, weight_map,
                               rule_file, overrides)
    except (BacktestInputError, StrategyError, ValueError) as error:
        raise fail(str(error)) from None
    title = strategy.name if rule_file is None else Path(rule_file.source).name
    _present(result, config, f"Backtest: {title} on {path.name}", timeframe, trades, plot, report, json_output)


def _present(result: Any, config: Any, title: str, timeframe: str, trades: Path, plot: Path, report: Path | None,
             json_output: bool) -> None:
    """Trades CSV, equity PNG, the HTML report when asked, and the metrics (table on stderr, or JSON on stdout)."""
    from spark_jobs.backtest.tradelog import plot_portfolio, write_portfolio_trades
    from stockstream.reports.backtest import write_report

    err = console(stderr=True)
    write_portfolio_trades(trades, result)
    plot_portfolio(plot, result)
    if report is not None:
        costs = (f"fee {config.fee:g}, slippage {config.slippage:g}, "
                 f"{'long-short' if config.long_short else 'long-only'}, {config.sizing} {config.size:g}")
        write_report(report, result, config.initial_capital, title,
                     f"{', '.join(i.symbol for i in result.instruments)} · {timeframe} · {costs}")
    if json_output:
        typer.echo(json.dumps({"portfolio": {"strategy": result.metrics, "buy_and_hold": result.hold_metrics},
                               **{i.symbol: {"weight": i.weight, "bars": len(i.bars.close),
                                             "signals": int((i.signal != 0).sum()), "strategy": i.metrics,
                                             "buy_and_hold": i.hold_metrics} for i in result.instruments}}))
    else:
        table = Table(title="backtest (strategy | buy & hold), next-bar fills")
        for column in ("", "trades", "total return", "CAGR", "Sharpe", "max drawdown", "exposure"):
            table.add_column(column, justify="left" if not column else "right")
        rows = [("portfolio", result.metrics, result.hold_metrics)]
        rows += [(i.symbol, i.metrics, i.hold_metrics) for i in result.instruments]
        for name, mine, hold in rows:
            table.add_row(name, str(mine["trades"]), f"{_pct(mine['total_return'])} | {_pct(hold['total_return'])}",
                          f"{_pct(mine['cagr'])} | {_pct(hold['cagr'])}",
                          f"{_number(mine['sharpe'])} | {_number(hold['sharpe'])}",
                          f"{_pct(mine['max_drawdown'])} | {_pct(hold['max_drawdown'])}", _pct(mine["exposure"]))
        err.print(table)
    err.print(f"trades: {trades}  equity curve: {plot}" + (f"  report: {report}" if report else ""), markup=False)


def _backfill_range(workdir: Path, from_offset: str | None, to_offset: str | None, from_time: str | None,
                    to_time: str | None, symbols: tuple[str, ...], master: str | None, fail: Any,
                    strategy_file: Path | None = None) -> Path:
    """Run the Spark backfill of the range into ``workdir`` and return the output folder."""
    from processors.core.strategy import DEFAULT_STRATEGY, StrategyError, load_strategy
    from spark_jobs.backfill.job import BackfillRequest, run_backfill
    from spark_jobs.backfill.ranges import RangeError, RangeRequest, parse_offsets
    from spark_jobs.jars import SparkJarsError
    from spark_jobs.progress import SparkProgress
    from spark_jobs.session import build_session
    from spark_jobs.settings import SparkJobSettings
    from stockstream.commands.backfill import parse_time

    err = console(stderr=True)
    try:
        settings = SparkJobSettings(**({"spark_master": master} if master else {}))
        request = BackfillRequest(
            range=RangeRequest(
                from_offset=None if from_offset is None else parse_offsets(from_offset),
                to_offset=None if to_offset is None else parse_offsets(to_offset),
                from_time=parse_time(from_time, "--from"), to_time=parse_time(to_time, "--to")),
            symbols=symbols, output=str(workdir / "backfill"), write_mode="overwrite",
            strategy=_range_strategy(strategy_file or settings.strategy_file, DEFAULT_STRATEGY, load_strategy),
        )
        session = build_session(settings, "stockstream-backtest")
    except (RangeError, SparkJarsError, StrategyError, ValueError) as error:
        raise fail(str(error)) from None
    try:
        with SparkProgress(session.spark, err) as progress:
            result = run_backfill(session.spark, settings, request, progress)
    except RangeError as error:
        raise fail(str(error)) from None
    finally:
        session.stop()
    for group in result.short:
        err.print(f"[yellow]warning:[/] {escape(str(group.key))}: warm-up short: {escape(group.detail)}")
    return workdir / "backfill"


def _range_strategy(path: Path | None, default: Any, load: Any) -> Any:
    """The indicator/rule-settings strategy the backfill of a range runs with (a rule-language file is refused)."""
    from spark_jobs.backtest.rulefile import RuleFile

    if path is None:
        return default
    if RuleFile.read(path) is not None:
        raise ValueError(f"{path}: a rule-language file backtests a ticks file (--input ticks.csv); the backfill of a"
                         " range records the signals of an indicator/rule-settings strategy")
    return load(path)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)

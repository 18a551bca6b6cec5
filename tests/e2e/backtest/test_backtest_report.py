"""``stockstream backtest --input ticks.csv --report out.html`` in headless Chromium: no console errors, curves drawn.

The CLI runs on a ticks file (no Kafka, no Spark): two instruments, 5-minute candles, stops, weights. The
page is opened from the file (it is self-contained: a network request would fail the test); the equity,
drawdown and price charts must hold canvases with the strategy's colours painted, the metrics and monthly
tables their rows, and the trades CSV as many rows as the page's trades table lists.
"""

from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from stockstream.cli import app

pytestmark = [pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"


def _ticks(path):
    rng = np.random.default_rng(4)
    lines = ["timestamp,symbol,price,volume"]
    start = 1_704_067_200_000
    for symbol, level in (("BTC-USD", 40_000.0), ("ETH-USD", 2_500.0)):
        prices = level * np.exp(np.cumsum(rng.normal(0, 2e-3, 8_000)))
        lines += [f"{start + i * 60_000},{symbol},{price:.2f},1.0" for i, price in enumerate(prices)]
    path.write_text("\n".join(lines) + "\n")


def _painted(png: bytes, colour: tuple[int, int, int]) -> int:
    """Pixels within a small distance of ``colour`` in a screenshot."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(pixels - np.array(colour)).sum(axis=2) < 60).sum())


def test_report_opens_without_errors_and_draws_its_curves(tmp_path):
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is missing: apt-get install -y chromium (ops/setup/system-deps.sh does it)")
    ticks = tmp_path / "ticks.csv"
    _ticks(ticks)
    report = tmp_path / "report.html"
    result = CliRunner().invoke(app, [
        "backtest", "--input", str(ticks), "--timeframe", "5m", "--rules", "ema_cross,macd_cross",
        "--stop-loss", "2%", "--take-profit", "4%", "--weights", "BTC-USD=0.7,ETH-USD=0.3",
        "--trades", str(tmp_path / "trades.csv"), "--plot", str(tmp_path / "equity.png"), "--report", str(report)])
    assert result.exit_code == 0, result.output
    trades = list(csv.DictReader((tmp_path / "trades.csv").open()))
    assert trades and {row["symbol"] for row in trades} == {"BTC-USD", "ETH-USD"}
    assert (tmp_path / "equity.png").read_bytes().startswith(b"\x89PNG")

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            page.wait_for_selector("body[data-drawn='yes']", timeout=60_000)
            page.wait_for_function("document.querySelectorAll('#equity canvas').length > 0", timeout=60_000)
            equity = page.locator("#equity").screenshot()
            drawdown = page.locator("#drawdown").screenshot()
            prices = [page.locator(f"div[data-symbol='{symbol}']").screenshot() for symbol in ("BTC-USD", "ETH-USD")]
            metric_rows = page.locator("table.metrics tr").count()
            monthly_rows = page.locator("table.monthly tr").count()
            trade_rows = page.locator("table.trades tr").count() - 1
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests  # self-contained: no network
    assert _painted(equity, (0x15, 0x65, 0xC0)) > 200, "the strategy's equity curve is drawn"
    assert _painted(equity, (0x9E, 0x9E, 0x9E)) > 200, "buy-and-hold is drawn"
    assert _painted(drawdown, (0xB3, 0x26, 0x1E)) > 100, "the drawdown curve is drawn"
    assert all(_painted(png, (0x37, 0x47, 0x4F)) > 200 for png in prices), "each instrument's price is drawn"
    assert metric_rows == 14 and monthly_rows == 2
    assert trade_rows == len(trades)

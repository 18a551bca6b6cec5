"""Examples shown at the end of every command's ``--help`` (by :mod:`stockstream.cli_conventions`).

Keyed by the command's path (``""`` is ``stockstream`` itself, ``"query latest"`` a sub-command).
Each example is a command line a person can copy; ``#`` starts a comment. Every command needs
at least one, and every example must parse (tests/e2e/cli/test_cli_conventions.py).
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "stockstream indicators --input tests/data/ticks_sample.csv --output out.csv   # no infrastructure",
        "stockstream run                     # the local stack and every service, simulator feed",
        "stockstream doctor                  # what is configured, what answers",
    ),
    "backfill": (
        "stockstream backfill                                   # the whole log -> ./backfill/<kind>/symbol=…/date=…",
        "stockstream backfill --from 2024-03-04 --to 2024-03-06 --symbols BTC-USD,ETH-USD",
        "stockstream backfill --from 0:5000,1:7200 --no-parquet --redis-prefix ss:backfill:",
        "stockstream backfill --from 6h --output recent                 # the last six hours",
    ),
    "apikey": ("stockstream apikey create --name dashboard-alice", "stockstream apikey list"),
    "apikey create": ("stockstream apikey create --name ci-reader --json   # the token is shown once",),
    "apikey list": ("stockstream apikey list --json",),
    "apikey revoke": ("stockstream apikey revoke KEY_ID            # the id from apikey list",),
    "backtest": (
        "stockstream backtest --input backfill                  # every symbol, tick signals, all rules",
        "stockstream backtest --input backfill --symbols BTC-USD --timeframe 1m --rules ema_cross --fee 0.0005",
        "stockstream backtest --input tests/data/ticks_sample.csv --stop-loss 2% --report report.html",
    ),
    "composite": ("stockstream composite --symbols BTC-USD    # BTC-USD@index from every venue's ticks",),
    "doctor": (
        "stockstream doctor                  # checks and the settings in effect (secrets masked)",
        "stockstream doctor --json           # the same for a script",
    ),
    "indicators": (
        "stockstream indicators --input tests/data/ticks_sample.csv --output out.csv",
        "stockstream indicators --input BTC-USD.csv --output out.csv   # a Date,Open,High,Low,Close,Volume download",
        "stockstream indicators -i ticks.csv -o candles.csv --timeframe 1m --strategy docs/examples/strategy.toml",
        "stockstream indicators -i ticks.csv -o out.csv --strategy docs/examples/strategies-batch.toml --outcomes outcomes.csv"
        "   # rule-language strategies: their indicator columns, signals and scorecard outcomes",
    ),
    "ingest": (
        "stockstream ingest --source simulator --symbols BTC-USD,ETH-USD --rate 50",
        "stockstream ingest --source file --path tests/data/ticks_sample.csv --speed 10",
        "stockstream ingest --source coinbase --symbols BTC-USD",
    ),
    "materialize": ("stockstream materialize                  # Kafka -> Redis views, until Ctrl-C",),
    "notify": (
        "stockstream notify -s docs/examples/subscriptions-console.toml   # every signal on the console",
        "stockstream notify -s subscriptions.toml --check                 # validate the file and its env vars",
        "stockstream notify -s subscriptions.toml --renotify --from 2h",
    ),
    "process": (
        "stockstream process                                  # exactly-once, default strategy",
        "stockstream process --strategy docs/examples/strategy.toml",
    ),
    "replay": (
        "stockstream replay --from 0                          # fresh group and state, stops at the log's end now",
        "stockstream replay --from 2024-03-04 --follow        # …then keeps going live",
    ),
    "run": (
        "stockstream run                     # Ctrl-C stops everything",
        "stockstream run --keep-stack        # leave Kafka, Redis, Prometheus running on exit",
    ),
    "sweep": (
        "stockstream sweep --input BTC-USD.csv --grid 'fast=5..20, slow=20..60:5' --top 5",
        "stockstream sweep --input bars.parquet --walk-forward 6:1 --folds 4 --json",
    ),
    "serve": ("stockstream serve                   # http://127.0.0.1:8000/ (dashboard), /docs",
              "stockstream serve --api-port 8080 --redis-url redis://127.0.0.1:6380/0"),
    "tail": (
        "stockstream tail --topic signals --from beginning -n 5",
        "stockstream tail --topic ticks.dlq --json",
    ),
    "query": ("stockstream query latest BTC-USD",),
    "query latest": ("stockstream query latest BTC-USD --json",),
    "query recommendation": ("stockstream query recommendation BTC-USD -t 1m",),
    "query indicators": (
        "stockstream query indicators BTC-USD -t tick -n 10",
        "stockstream query indicators BTC-USD --from 2024-03-04 --to 2024-03-05   # older than the views: the backfill's",
    ),
    "query signals": ("stockstream query signals BTC-USD -n 3 --rule ema_cross --side SELL",),
    "query candles": (
        "stockstream query candles BTC-USD -t 1m -n 20",
        "stockstream query candles BTC-USD -t 1m --to 2024-03-05 --cursor 1709596800000000_0_0_   # the page before",
    ),
    "query daily": ("stockstream query daily BTC-USD --from 2026-11-01 --to 2026-11-30 --json",),
    "query scorecard": (
        "stockstream query scorecard                              # every strategy, instrument and horizon",
        "stockstream query scorecard --strategy trend_pullback --horizon 1h --json",
    ),
    "runs": (
        "stockstream runs start --id wider-rsi --from 2024-03-04 --to 2024-03-06 --strategy wider-rsi.toml",
        "stockstream runs diff live wider-rsi",
    ),
    "runs start": (
        "stockstream runs start --id wider-rsi --from 2024-03-04 --to 2024-03-06 --strategy wider-rsi.toml",
        "stockstream runs start --id shadow --follow --warm-from 0 --from 2h --strategy next.toml   # a shadow",
    ),
    "runs list": ("stockstream runs list --json",),
    "runs show": ("stockstream runs show wider-rsi",),
    "runs diff": ("stockstream runs diff live wider-rsi -n 5     # only in A / only in B / changed",),
    "runs drop": ("stockstream runs drop wider-rsi --yes         # its topics, changelogs and views",),
    "runs prune": ("stockstream runs prune --dry-run               # the runs past RUN_RETENTION",
                   "stockstream runs prune --yes                   # delete them (cron, a CronJob)"),
    "strategy": (
        "stockstream strategy deploy next.toml --shadow --id next   # warm from the log, then follow live",
        "stockstream strategy promote next",
    ),
    "strategy deploy": ("stockstream strategy deploy next.toml --shadow --id next --description \"MACD on 1h\"",),
    "strategy promote": ("stockstream strategy promote next --timeout 120   # live from the switch point on",),
    "strategy rollback": ("stockstream strategy rollback                 # the previous run serves again",),
    "kafka-access": ("stockstream kafka-access plan", "stockstream kafka-access apply"),
    "kafka-access plan": ("stockstream kafka-access plan --principal process",),
    "kafka-access apply": ("stockstream kafka-access apply --topic-prefix prod.   # users and ACLs of a deployment",),
    "kafka-access env": ("stockstream kafka-access env process    # the variables to run process as its user",),
    "stack": ("stockstream stack up", "stockstream stack status --json"),
    "stack up": ("stockstream stack up", "stockstream stack up --only kafka --only redis"),
    "stack down": ("stockstream stack down                 # stops only what this stack started",),
    "stack status": ("stockstream stack status", "stockstream stack status --json"),
    "views": ("stockstream views rebuild --redis-prefix ss:rebuilt:", "stockstream views compare ss:rebuilt:"),
    "views rebuild": (
        "stockstream views rebuild --redis-prefix ss:rebuilt: # side by side with the live views",
        "stockstream views rebuild --swap --from 2h          # then atomically replace the live views",
    ),
    "views compare": ("stockstream views compare ss:rebuilt:",),
}

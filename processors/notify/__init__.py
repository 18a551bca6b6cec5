"""The notifier (``stockstream notify``): tells traders about signals on the channels they subscribed to.

Parts:
- :mod:`.subscriptions` — the subscription file (channels, filters, cooldowns), validated at start;
- :mod:`.notification` — what a message says (pure);
- :mod:`.ledger` — the per-channel decision: deliver, duplicate, stale, cooldown (pure);
- :mod:`.retry` — retries with backoff and jitter, ``Retry-After``, token-bucket rate limits;
- :mod:`.channels` — one module per outside service (webhook, Slack, Discord, Telegram, email, browser, console);
- :mod:`.lane` — the Quix Streams processor of one channel (its own consumer group and ledger);
- :mod:`.supervisor` — runs one lane process per channel, restarts crashed lanes, serves ``/metrics``.
"""

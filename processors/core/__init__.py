"""The pure core: indicator math, signal rules, candles and daily aggregation. No I/O, no Kafka, no Redis."""

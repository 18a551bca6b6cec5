"""The last safety net of the command line: an outside service that fails is a sentence, not a traceback.

:func:`stockstream.cli.main` calls :func:`explain` with any exception a command let through. Redis
and Kafka failures (unreachable, authentication refused) become the one sentence of
:func:`processors.runtime.masking.unreachable` — the address with its credentials masked, what
failed, what to do — and exit code 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


def explain(error: BaseException) -> str | None:
    """The message to print for ``error``, or None when it is not an outside service's failure."""
    import redis
    from confluent_kafka import KafkaException

    from processors.runtime.kafka_admin import KafkaUnavailableError, count_brokers
    from processors.runtime.masking import mask_url, mask_urls, unreachable
    from processors.runtime.settings import KafkaSettings, RedisSettings

    if isinstance(error, KafkaUnavailableError):
        return mask_urls(str(error))
    if isinstance(error, redis.RedisError):
        try:
            address = RedisSettings().redis_url
        except ValueError:  # the settings themselves are invalid: say what failed without the address
            address = "REDIS_URL"
        return unreachable("Redis", address, error, setting="REDIS_URL")
    if isinstance(error, KafkaException):
        try:
            settings = KafkaSettings()
        except ValueError:
            return unreachable("Kafka", "KAFKA_BOOTSTRAP_SERVERS", error, setting="KAFKA_BOOTSTRAP_SERVERS")
        try:  # one more metadata call tells "unreachable (connection refused)" from a request Kafka refused
            count_brokers(settings, timeout_s=5.0)
        except KafkaUnavailableError as unavailable:
            return str(unavailable)
        return f"Kafka at {mask_url(settings.bootstrap_servers)} refused the request: {mask_urls(str(error))}"
    return None

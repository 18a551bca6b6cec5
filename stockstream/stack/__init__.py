"""The local real services (Kafka, Redis, Prometheus) for development, tests and `make run`."""

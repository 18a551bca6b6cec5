"""``stockstream process``: the Quix Streams shell around the pure pipeline step.

Parts (each module is one of them):

- :mod:`.settings`: the one settings class of the service (env var names live there).
- :mod:`.records`: raw ``ticks`` record → ``Tick`` or ``DeadLetter`` (poison never crashes).
- :mod:`.handler`: one record + the symbol's state → the records to produce (calls the core).
- :mod:`.emission`: what the handler returns (one pre-encoded record per output).
- :mod:`.topology`: the Quix ``Application``: topics, the named state store, the dataframe.
- :mod:`.metrics`, :mod:`.kafka_stats`, :mod:`.recovery`: Prometheus metrics, consumer lag
  from librdkafka statistics, state-recovery progress from Quix's recovery log.
- :mod:`.service`: the process: logging, metrics endpoint, topics, strategy, run, exit code.
"""

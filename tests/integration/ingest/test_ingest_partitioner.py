"""Ingest partitions by instrument with Kafka's Java partitioner (murmur2), exactly where Java and Quix put a key.

Three witnesses agree on the partition of every instrument key: the reference murmur2 of
tests/support/murmur2.py (held to the vectors of Kafka's own ``UtilsTest``), Kafka's Java
client itself (``Utils.murmur2`` from the broker's kafka-clients jar, run with ``java``), and a
Quix Streams producer writing the same keys to the real broker. The ingest service's records
(file source, several venues per symbol) must land on those partitions.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from quixstreams.kafka import Producer as QuixProducer

from processors.runtime.kafka_admin import ensure_topics
from schemas.events import Tick
from schemas.instruments import format_instrument
from schemas.topics import TopicSpec
from stockstream.stack.services import StackSettings
from tests.integration.ingest.ingest_support import ingest_settings, run_ingest
from tests.support.kafka_tools import read_topic
from tests.support.murmur2 import java_partition, murmur2

PARTITIONS = 8
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "DOGE-USD", "XRP-USD", "LTC-USD", "DOT-USD"]
VENUES = ["coinbase", "kraken", "binance", "replay-7"]
KEYS = [format_instrument(symbol, venue) for symbol in SYMBOLS for venue in VENUES]

JAVA = textwrap.dedent("""
    import org.apache.kafka.common.utils.Utils;
    public class Partitions {
        public static void main(String[] args) {
            int partitions = Integer.parseInt(args[0]);
            for (int i = 1; i < args.length; i++) {
                byte[] key = args[i].getBytes(java.nio.charset.StandardCharsets.UTF_8);
                System.out.println(args[i] + " " + Utils.murmur2(key) + " " + Utils.toPositive(Utils.murmur2(key)) % partitions);
            }
        }
    }
""")


@pytest.mark.parametrize(("key", "expected"), [
    (b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829), (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_the_reference_murmur2_matches_kafkas_own_test_vectors(key, expected):
    assert murmur2(key) == expected


def test_kafkas_java_client_puts_every_instrument_key_where_the_reference_does(tmp_path):
    libs = StackSettings().kafka_libs_dir
    if not any(libs.glob("kafka-clients-*.jar")):
        pytest.fail(f"no kafka-clients jar in {libs}: run `make kafka-jars`")
    source = tmp_path / "Partitions.java"
    source.write_text(JAVA)
    result = subprocess.run(["java", "-cp", f"{libs}/*", str(source), str(PARTITIONS), *KEYS],  # noqa: S603, S607
                            capture_output=True, text=True, timeout=120, check=True)
    answers = {line.split()[0]: (int(line.split()[1]), int(line.split()[2])) for line in result.stdout.splitlines()}
    assert answers == {key: (murmur2(key.encode()), java_partition(key.encode(), PARTITIONS)) for key in KEYS}


def test_ingest_and_quix_put_every_instrument_on_the_java_partition(stack, namespace, tmp_path):
    lines = ["timestamp,symbol,price,venue"]
    for index, key in enumerate(KEYS * 3):
        symbol, venue = key.split("@")
        lines.append(f"2024-05-01T10:{index // 60:02d}:{index % 60:02d}Z,{symbol},{100 + index},{venue}")
    path = tmp_path / "venues.csv"
    path.write_text("\n".join(lines) + "\n")
    settings = ingest_settings(stack, namespace, source="file", file_paths=(path,), partitions=PARTITIONS)
    run = run_ingest(settings)
    assert run.summary.delivered == len(KEYS) * 3

    records = read_topic(stack.kafka_bootstrap, settings.topics().ticks.name)
    assert len(records) == len(KEYS) * 3
    for record in records:
        assert record.partition == java_partition(record.key, PARTITIONS), record.key

    quix_topic = TopicSpec(f"{namespace}quix-keys", "symbol", Tick, PARTITIONS)
    ensure_topics(settings, [quix_topic])
    with QuixProducer(broker_address=stack.kafka_bootstrap) as producer:
        for key in KEYS:
            producer.produce(quix_topic.name, value=b"{}", key=key.encode())
        producer.flush()
    placed = {record.key.decode(): record.partition for record in read_topic(stack.kafka_bootstrap, quix_topic.name)}
    assert placed == {key: java_partition(key.encode(), PARTITIONS) for key in KEYS}
    assert {record.key.decode(): record.partition for record in records} == placed

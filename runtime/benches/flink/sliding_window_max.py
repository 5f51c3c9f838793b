"""The reference job in PyFlink 2.3 with a Python `map`, for weir's side-by-side benchmark of
Python operators (scripts/bench-flink --python): what a Python user of Flink writes instead of
a weir operator in Python. JSON lines from a file are parsed by a Python `map` (json.loads,
datetime.fromisoformat), which runs in a Python worker process fed by the JVM in bundles; then,
per TICKER, the maximum PRICE and the trade count over 60 s event-time windows sliding by 10 s
(out-of-orderness 1 s), one JSON result per (ticker, window), in one of two ways:

- `sql`: the windows in Flink SQL (HOP, in the JVM) over the mapped stream, results written to
  files under COUNTS.d (one line each, counted afterwards);
- `python`: every function in Python (timestamp assigner, key selector, aggregate, window
  function), results to Flink's discarding sink, each window subtask adding its count of
  results to the file COUNTS when it closes.

    python sliding_window_max.py sql|python FILE PARALLELISM COUNTS
"""

import json
import sys
from datetime import datetime, timezone

from pyflink.common import Configuration, Duration, Time, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors import Sink
from pyflink.datastream.connectors.file_system import FileSource, StreamFormat
from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction
from pyflink.datastream.window import SlidingEventTimeWindows
from pyflink.java_gateway import get_gateway

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc) - EPOCH


def trade(line: str) -> tuple:
    """The Python `map`: (ticker, event time in ms, price) of a JSON line."""
    record = json.loads(line)
    moment = datetime.fromisoformat(record["EVENT_TIME"]).replace(tzinfo=timezone.utc)
    return record["TICKER"], (moment - EPOCH) // MS, float(record["PRICE"])


def main() -> None:
    windows, path, parallelism, counts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    config = Configuration()
    # Room for every (ticker, window)'s state in the Python worker: with the default (1,000
    # entries) most state reads of the `python` job cross to the JVM (about 100 trades/s).
    config.set_integer("python.state.cache-size", 100_000)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(parallelism)
    # The Python workers run in this venv's interpreter (the default is `python` on PATH).
    env.set_python_executable(sys.executable)
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), path).build()
    trades = env.from_source(source, WatermarkStrategy.no_watermarks(), "trades").map(
        trade, output_type=Types.TUPLE([Types.STRING(), Types.LONG(), Types.DOUBLE()])
    )
    if windows == "sql":
        windows_in_sql(env, trades, counts)
    elif windows == "python":
        windows_in_python(env, trades, counts)
    else:
        sys.exit(f"unknown windows {windows!r}: use sql or python")


SQL_WINDOWS = """
INSERT INTO results
SELECT JSON_OBJECT(
    'TICKER' VALUE f0,
    'WINDOW_START' VALUE DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm:ss.SSS'),
    'WINDOW_END' VALUE DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss.SSS'),
    'MAX_PRICE' VALUE MAX(f2),
    'TRADES' VALUE COUNT(*))
FROM TABLE(HOP(TABLE trades, DESCRIPTOR(rowtime), INTERVAL '10' SECOND, INTERVAL '60' SECOND))
GROUP BY f0, window_start, window_end
"""


def windows_in_sql(env: StreamExecutionEnvironment, trades, counts: str) -> None:
    from pyflink.table import DataTypes, Schema, StreamTableEnvironment

    tables = StreamTableEnvironment.create(env)
    schema = (
        Schema.new_builder()
        .column("f0", DataTypes.STRING())
        .column("f1", DataTypes.BIGINT())
        .column("f2", DataTypes.DOUBLE())
        .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(f1, 3)")
        .watermark("rowtime", "rowtime - INTERVAL '1' SECOND")
        .build()
    )
    tables.create_temporary_view("trades", tables.from_data_stream(trades, schema))
    tables.execute_sql(
        f"CREATE TABLE results (line STRING) WITH "
        f"('connector' = 'filesystem', 'path' = 'file://{counts}.d', 'format' = 'raw')"
    )
    tables.execute_sql(SQL_WINDOWS).wait()


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value, record_timestamp) -> int:
        return value[1]


class MaxAndCount(AggregateFunction):
    def create_accumulator(self):
        return [float("-inf"), 0]

    def add(self, value, accumulator):
        if value[2] > accumulator[0]:
            accumulator[0] = value[2]
        accumulator[1] += 1
        return accumulator

    def get_result(self, accumulator):
        return accumulator

    def merge(self, a, b):
        return [max(a[0], b[0]), a[1] + b[1]]


class Result(ProcessWindowFunction):
    def __init__(self, counts: str) -> None:
        self.counts = counts
        self.results = 0

    def process(self, key, context, elements):
        top, count = next(iter(elements))
        window = context.window()
        self.results += 1
        yield json.dumps(
            {
                "TICKER": key,
                "WINDOW_START": stamp(window.start),
                "WINDOW_END": stamp(window.end),
                "MAX_PRICE": top,
                "TRADES": count,
            }
        )

    def close(self) -> None:
        with open(self.counts, "a") as out:
            out.write(f"{self.results}\n")


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def windows_in_python(env: StreamExecutionEnvironment, trades, counts: str) -> None:
    watermarks = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(1)).with_timestamp_assigner(
        EventTime()
    )
    discard = Sink(get_gateway().jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink())
    (
        trades.assign_timestamps_and_watermarks(watermarks)
        .key_by(lambda t: t[0], key_type=Types.STRING())
        .window(SlidingEventTimeWindows.of(Time.seconds(60), Time.seconds(10)))
        .aggregate(
            MaxAndCount(),
            window_function=Result(counts),
            accumulator_type=Types.PICKLED_BYTE_ARRAY(),
            output_type=Types.STRING(),
        )
        .sink_to(discard)
    )
    env.execute("sliding-window-max-python")


if __name__ == "__main__":
    main()

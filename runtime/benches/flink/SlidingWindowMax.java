// The reference job in Flink's DataStream API, for weir's side-by-side benchmark
// (scripts/bench-flink): JSON lines from a file, parsed with Jackson, per TICKER the maximum
// PRICE and the trade count over 60 s event-time windows sliding by 10 s, out-of-orderness 1 s,
// one JSON result per (ticker, window), written nowhere (a discarding sink), as weir's run is
// measured with `--sink /dev/null`. Usage: SlidingWindowMax FILE PARALLELISM
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

public class SlidingWindowMax {
    /** Results written (the job runs in this JVM's mini-cluster). */
    static final AtomicLong RESULTS = new AtomicLong();

    /** A trade: event time (ms), ticker, price. */
    public static class Trade {
        public long time;
        public String ticker;
        public double price;
        public Trade() {}
    }

    /** Max price and count. */
    public static class Acc {
        public double max = Double.NEGATIVE_INFINITY;
        public long count;
    }

    public static void main(String[] args) throws Exception {
        String file = args[0];
        int parallelism = Integer.parseInt(args[1]);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        FileSource<String> source =
                FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(file)).build();
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "trades")
                .map(new MapFunction<String, Trade>() {
                    private transient ObjectMapper mapper;

                    @Override
                    public Trade map(String line) throws Exception {
                        if (mapper == null) {
                            mapper = new ObjectMapper();
                        }
                        JsonNode node = mapper.readTree(line);
                        Trade t = new Trade();
                        t.time = LocalDateTime.parse(node.get("EVENT_TIME").asText())
                                .toInstant(ZoneOffset.UTC).toEpochMilli();
                        t.ticker = node.get("TICKER").asText();
                        t.price = node.get("PRICE").asDouble();
                        return t;
                    }
                })
                .assignTimestampsAndWatermarks(WatermarkStrategy.<Trade>forBoundedOutOfOrderness(Duration.ofSeconds(1))
                        .withTimestampAssigner((t, ts) -> t.time))
                .keyBy(t -> t.ticker)
                .window(SlidingEventTimeWindows.of(Duration.ofSeconds(60), Duration.ofSeconds(10)))
                .aggregate(new AggregateFunction<Trade, Acc, Acc>() {
                    public Acc createAccumulator() { return new Acc(); }
                    public Acc add(Trade t, Acc a) { a.max = Math.max(a.max, t.price); a.count++; return a; }
                    public Acc getResult(Acc a) { return a; }
                    public Acc merge(Acc a, Acc b) { a.max = Math.max(a.max, b.max); a.count += b.count; return a; }
                }, new ProcessWindowFunction<Acc, String, String, TimeWindow>() {
                    private transient ObjectMapper mapper;

                    @Override
                    public void process(String ticker, Context ctx, Iterable<Acc> accs, Collector<String> out) throws Exception {
                        if (mapper == null) {
                            mapper = new ObjectMapper();
                        }
                        Acc a = accs.iterator().next();
                        ObjectNode r = mapper.createObjectNode();
                        r.put("TICKER", ticker);
                        r.put("WINDOW_START", java.time.Instant.ofEpochMilli(ctx.window().getStart()).toString());
                        r.put("WINDOW_END", java.time.Instant.ofEpochMilli(ctx.window().getEnd()).toString());
                        r.put("MAX_PRICE", a.max);
                        r.put("TRADES", a.count);
                        out.collect(mapper.writeValueAsString(r));
                    }
                })
                .map(r -> { RESULTS.incrementAndGet(); return r; })
                .sinkTo(new DiscardingSink<>());
        env.execute("sliding-window-max");
        System.out.println("results " + RESULTS.get());
    }
}

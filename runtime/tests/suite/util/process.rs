//! The one harness for a `weir run` in the background: standard input to write to, standard
//! output and the log collected as they are written, and the Prometheus metrics it serves
//! (on a free port), read the way an operator of weir would read them.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `weir run`; killed when dropped.
pub struct Weir {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    metrics_addr: String,
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Collect the lines of `from` into `into`.
fn collect(
    from: impl Read + Send + 'static,
    into: impl Fn(String) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into(line);
        }
    })
}

impl Weir {
    /// Start `cmd` (`weir run ...`, from [`super::weir`]) serving metrics on a free port.
    pub fn start(mut cmd: Command) -> Weir {
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let mut child = cmd
            .args(["--metrics-addr", &metrics_addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, log) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(String::new())));
        let (o, l) = (out.clone(), log.clone());
        let readers = vec![
            collect(child.stdout.take().unwrap(), move |line| o.lock().unwrap().push(line)),
            collect(child.stderr.take().unwrap(), move |line| {
                let mut log = l.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }),
        ];
        Weir { stdin: child.stdin.take(), child, out, log, readers, metrics_addr }
    }

    /// Write to weir's standard input.
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Send `signal` (`TERM`, `INT`, `KILL`) to weir, as `kill -SIGNAL PID` does.
    pub fn signal(&mut self, signal: &str) {
        let status =
            Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kill weir with SIGKILL and wait until it is gone; its log.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        self.log()
    }

    /// Whether weir has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until `ready` holds for (output lines, log), or fail after 30 s.
    pub fn wait_until(&self, what: &str, ready: impl Fn(&[String], &str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&self.out.lock().unwrap(), &self.log()) {
            assert!(Instant::now() < deadline, "never: {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the log has a line containing `needle`; the line.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
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

    /// Where it serves its metrics (`HOST:PORT`).
    pub fn metrics_addr(&self) -> &str {
        &self.metrics_addr
    }

    /// The metrics endpoint's body now (`GET /metrics`), waiting for the server to be up.
    pub fn metrics(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(body) = scrape(&self.metrics_addr) {
                return body;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("weir exited ({status}) while its metrics were wanted:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no metrics at {} within 30 s:\n{}",
                self.metrics_addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of one series (`name` or `name{labels}`) now; 0 if it is not there yet.
    pub fn metric(&mut self, series: &str) -> f64 {
        value(&self.metrics(), series).unwrap_or(0.0)
    }

    /// Wait until the series satisfies `ready`; the metrics at that moment.
    pub fn wait_for_metric(&mut self, series: &str, ready: impl Fn(f64) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.metrics();
            if ready(value(&text, series).unwrap_or(0.0)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{series} never got there within {within:?}:\n{text}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the sum of every series of `name` (all labels) satisfies `ready`; the metrics
    /// at that moment.
    pub fn wait_for_total(&mut self, name: &str, ready: impl Fn(f64) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.metrics();
            if ready(total(&text, name)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{name} (summed) never got there within {within:?}:\n{text}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for weir to exit on its own; its status and log.
    pub fn wait(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
                return (status, self.log());
            }
            assert!(Instant::now() < deadline, "weir did not end within {within:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Close standard input and wait for the end: status, output lines, log.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let out = self.out.lock().unwrap().clone();
        (status, out, self.log())
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dead letters in `logs`: weir writes them to standard error by default, a JSON object with
/// a `reason` each.
pub fn dead_letters<'a>(logs: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    logs.into_iter().flat_map(str::lines).filter(|l| l.contains("\"reason\"")).collect()
}

/// `GET /metrics` at `addr`: the body, or None if nothing answers yet.
pub fn scrape(addr: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// The value of the series `name{labels}` (or `name`) in a Prometheus text exposition.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sum of every series of `name` (all label values).
pub fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The standard output of a command that must have succeeded.
pub fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The standard error of a command that must have failed with exit code 1.
pub fn failed(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

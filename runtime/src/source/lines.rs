//! Splitting bytes into lines across reads, each line at most `max` bytes: a longer one is
//! skipped up to its newline and reported, so a file without newlines cannot grow a buffer
//! without bound.
//!
//! Why not tokio-util's `AnyDelimiterCodec`/`LinesCodec` (which do the same): they hand out
//! each line as its own `Bytes` (a split of the read buffer, reference-counted) after a
//! byte-by-byte search, and measured on the whole `weir run` path (file -> wasm -> discard,
//! 4 M trades, `WEIR_BENCH_ONLY=whole cargo bench --profile dev -p weir --bench throughput`)
//! that cost 11-14% of the throughput (2.27-2.34 M against 2.63 M records per CPU-second
//! before the cap). Here lines are borrowed straight from the read buffer, found with
//! `memchr`: 2.61-2.67 M in the same comparison, as fast as without a cap.

/// One piece of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole line (without its `\n`), with its 1-based number.
    Line(u64, &'a [u8]),
    /// Line number `.0` was longer than the limit and was skipped.
    TooLong(u64),
}

/// The state carried from one read to the next.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    /// The line being read is over the limit: drop bytes up to its end.
    discarding: bool,
    lines: u64,
}

impl LineSplitter {
    /// Lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max, partial: Vec::new(), discarding: false, lines: 0 }
    }

    /// Feed the next bytes read; `each` gets every line they complete, in order.
    pub fn feed(&mut self, mut chunk: &[u8], mut each: impl FnMut(Piece<'_>)) {
        if self.discarding || !self.partial.is_empty() {
            // Finish the line begun in an earlier read.
            let Some(end) = memchr::memchr(b'\n', chunk) else {
                self.carry(chunk);
                return;
            };
            self.carry(&chunk[..end]);
            self.lines += 1;
            if std::mem::take(&mut self.discarding) {
                each(Piece::TooLong(self.lines));
            } else {
                each(Piece::Line(self.lines, &self.partial));
            }
            self.partial.clear();
            chunk = &chunk[end + 1..];
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            self.lines += 1;
            if end - start > self.max {
                each(Piece::TooLong(self.lines));
            } else {
                each(Piece::Line(self.lines, &chunk[start..end]));
            }
            start = end + 1;
        }
        self.carry(&chunk[start..]);
    }

    /// The input ended: its last line, if it had no newline.
    pub fn finish(&mut self, mut each: impl FnMut(Piece<'_>)) {
        if self.discarding {
            self.lines += 1;
            each(Piece::TooLong(self.lines));
        } else if !self.partial.is_empty() {
            self.lines += 1;
            each(Piece::Line(self.lines, &self.partial));
        }
        self.partial.clear();
        self.discarding = false;
    }

    /// Keep `rest` of an unfinished line, unless that takes it over the limit.
    fn carry(&mut self, rest: &[u8]) {
        if self.discarding {
            return;
        }
        if self.partial.len() + rest.len() > self.max {
            self.discarding = true;
            self.partial.clear();
        } else {
            self.partial.extend_from_slice(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut splitter = LineSplitter::new(max);
        let mut got = Vec::new();
        let mut record = |p: Piece<'_>| match p {
            Piece::Line(n, l) => got.push(format!("{n}:{}", String::from_utf8_lossy(l))),
            Piece::TooLong(n) => got.push(format!("{n}:too long")),
        };
        for chunk in chunks {
            splitter.feed(chunk, &mut record);
        }
        splitter.finish(&mut record);
        got
    }

    #[test]
    fn lines_straddling_reads_come_out_whole_and_numbered() {
        assert_eq!(split(&[b"on", b"e\ntw", b"o\n\nthr", b"ee"], 10), ["1:one", "2:two", "3:", "4:three"]);
        assert_eq!(split(&[b"a\n", b"", b"b\n"], 10), ["1:a", "2:b"]);
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_whether_or_not_it_straddles_reads() {
        assert_eq!(split(&[b"ok\n0123456789AB\nok\n"], 10), ["1:ok", "2:too long", "3:ok"]);
        assert_eq!(split(&[b"ok\n0123456", b"789AB", b"CD\nok\n"], 10), ["1:ok", "2:too long", "3:ok"]);
        assert_eq!(split(&[b"0123456789ABC"], 10), ["1:too long"]);
        assert_eq!(split(&[b"0123456789\n"], 10), ["1:0123456789"], "exactly the limit is a line");
    }
}

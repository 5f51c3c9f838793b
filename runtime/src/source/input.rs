//! The bytes a file source reads: a file, read ahead on a thread of its own into buffers that
//! are handed over whole and come back to be filled again (no second copy, and the kernel's
//! copy off the source's task), or any async reader (standard input, tests), read in place.

use std::io::Read;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Bytes read at once.
pub const READ_BUFFER_BYTES: usize = 256 << 10;

/// Buffers filled ahead of the source.
const READ_AHEAD: usize = 2;

/// Where a file source's bytes come from.
pub enum Input {
    /// Read in place, a buffer at a time.
    Reader { reader: Box<dyn AsyncRead + Send + Unpin>, buf: Vec<u8>, n: usize },
    /// Filled on the reader's thread; an empty buffer is the end of the file.
    Thread {
        filled: mpsc::Receiver<std::io::Result<Vec<u8>>>,
        spare: std::sync::mpsc::Sender<Vec<u8>>,
        current: Vec<u8>,
    },
}

impl Input {
    /// `reader`, read in place.
    pub fn reader(reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        Self::Reader { reader: Box::new(reader), buf: vec![0; READ_BUFFER_BYTES], n: 0 }
    }

    /// `file`, read ahead on a thread of its own (`weir-file-reader`).
    pub fn file(file: std::fs::File) -> std::io::Result<Self> {
        let (fill, filled) = mpsc::channel(READ_AHEAD);
        let (spare, spares) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new().name("weir-file-reader".into()).spawn(move || {
            let mut file = file;
            loop {
                // Filled up to READ_BUFFER_BYTES, or less only at the end of the file.
                let mut buf = spares.try_recv().unwrap_or_else(|_| Vec::with_capacity(READ_BUFFER_BYTES));
                buf.clear();
                let read = (&mut file).take(READ_BUFFER_BYTES as u64).read_to_end(&mut buf).map(|_| buf);
                let last = read.as_ref().map_or(true, Vec::is_empty);
                // The source stopped reading: so does this thread.
                if fill.blocking_send(read).is_err() || last {
                    return;
                }
            }
        })?;
        Ok(Self::Thread { filled, spare, current: Vec::new() })
    }

    /// The next bytes: empty at the end of the input. A read that is not
    /// [full](Self::was_full) may be followed by more: the input is slow, not at its end.
    pub async fn next(&mut self) -> std::io::Result<&[u8]> {
        match self {
            Self::Reader { reader, buf, n } => {
                *n = reader.read(buf).await?;
                Ok(&buf[..*n])
            }
            Self::Thread { filled, spare, current } => {
                let done = std::mem::take(current);
                if done.capacity() > 0 {
                    let _ = spare.send(done);
                }
                *current = match filled.recv().await {
                    Some(read) => read?,
                    None => return Err(std::io::Error::other("the file's reader thread stopped")),
                };
                Ok(current)
            }
        }
    }

    /// Whether the last [`next`](Self::next) filled a whole buffer (more is likely waiting).
    pub fn was_full(&self) -> bool {
        match self {
            Self::Reader { n, .. } => *n == READ_BUFFER_BYTES,
            Self::Thread { current, .. } => current.len() == READ_BUFFER_BYTES,
        }
    }
}

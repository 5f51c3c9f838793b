//! The Prometheus endpoint: `GET /metrics` at `--metrics-addr`, served with hyper's HTTP/1
//! connection handling (one route, so no router).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::Metrics;

/// Serve `GET /metrics` (any path, in fact) at `addr` in the Prometheus text format until the
/// runtime ends. Binding happens before this returns, so a busy port is refused at start.
/// Returns the address bound and the serving task (it never ends unless it panics).
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let body = metrics.render();
                    async move {
                        hyper::Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from(body)))
                    }
                });
                if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                    tracing::debug!("metrics connection: {e}");
                }
            });
        }
    });
    Ok((bound, task))
}

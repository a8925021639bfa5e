//! `sluice-echo`: a tiny HTTP (or HTTPS) echo server for `make demo` and the end-to-end test.
//! It stands in for an application pod: it answers every request with JSON naming itself and
//! what it saw (the same shape as the test-support backends).
//!
//!   sluice-echo --name alpha --listen 10.244.130.1:8080 [--cert c.pem --key k.pem]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sluice_test_support::backend::Echo;

struct Args {
    name: String,
    listen: SocketAddr,
    cert: Option<String>,
    key: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut name, mut listen, mut cert, mut key) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--name" => name = Some(value),
            "--listen" => listen = Some(value.parse().context("--listen")?),
            "--cert" => cert = Some(value),
            "--key" => key = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(Args {
        name: name.context("--name is required")?,
        listen: listen.context("--listen is required")?,
        cert,
        key,
    })
}

fn tls_config(cert: &str, key: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut std::fs::read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .context("reading --cert")?;
    let key = rustls_pemfile::private_key(&mut std::fs::read(key)?.as_slice())
        .context("reading --key")?
        .context("no private key in --key")?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn echo(
    name: Arc<str>,
    tls: bool,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let e = Echo {
        version: format!("{:?}", req.version()),
        backend: name.to_string(),
        method: req.method().to_string(),
        host,
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        tls,
    };
    let _ = req.into_body().collect().await;
    let mut body = serde_json::to_vec_pretty(&e).unwrap_or_default();
    body.push(b'\n');
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = args()?;
    let acceptor = match (&a.cert, &a.key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(tls_config(c, k)?)),
        (None, None) => None,
        _ => anyhow::bail!("--cert and --key go together"),
    };
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    eprintln!(
        "sluice-echo {} listening on {}{}",
        a.name,
        a.listen,
        if acceptor.is_some() { " (TLS)" } else { "" }
    );
    let name: Arc<str> = a.name.into();
    loop {
        let (stream, _) = listener.accept().await?;
        let (name, acceptor) = (name.clone(), acceptor.clone());
        tokio::spawn(async move {
            let tls = acceptor.is_some();
            let svc = hyper::service::service_fn(move |req| echo(name.clone(), tls, req));
            let builder = auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acc) => {
                    if let Ok(s) = acc.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

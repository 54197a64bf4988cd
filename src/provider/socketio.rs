//! A small Socket.IO client (protocol v5 over Engine.IO v4, websocket
//! transport only), enough to drive Uptime Kuma.
//!
//! Why not a crate: `rust_socketio` 0.6 pulls native-tls (OpenSSL) beside
//! the rustls stack Fabrik uses everywhere else, marks its async client
//! experimental, drops zero-argument events such as `loginRequired` on the
//! floor of `on_any` and wraps acks in an extra array; `kuma-client` builds
//! on it and chooses Uptime Kuma 1.x or 2.x at *compile* time (feature
//! `uptime-kuma-v1`), while Fabrik must talk to both at run time. What Kuma
//! needs is small: connect, emit with ack, and remember the events the
//! server pushes. That fits in this file over `tokio-tungstenite`.
//!
//! Wire format (Engine.IO packet type first, then Socket.IO's):
//! `0{open}` handshake, `2`/`3` ping/pong, `40` namespace connect,
//! `42["event",…]` event, `42<id>["event",…]` event expecting an ack,
//! `43<id>[…]` ack, `41` disconnect, `44{…}` connect error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// A Socket.IO failure.
#[derive(Debug, thiserror::Error)]
pub enum SocketIoError {
    /// The websocket could not be opened or the handshake failed.
    #[error("could not connect to {url}")]
    Connect {
        /// The endpoint (without credentials).
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server refused the namespace connection.
    #[error("the server refused the connection: {0}")]
    Refused(String),
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The URL is not http(s) or ws(s).
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
}

#[derive(Default)]
struct Shared {
    acks: Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>,
    /// The latest arguments of each event the server pushed.
    events: Mutex<HashMap<String, Vec<Value>>>,
    notify: Notify,
    closed: AtomicBool,
}

/// A connected client on the default namespace.
pub struct SocketIoClient {
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SocketIoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoClient")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for SocketIoClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The websocket endpoint for a server URL: `…/socket.io/?EIO=4&transport=websocket`.
pub fn endpoint(base: &str) -> Result<url::Url, SocketIoError> {
    let mut url =
        url::Url::parse(base.trim()).map_err(|e| SocketIoError::InvalidUrl(e.to_string()))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(SocketIoError::InvalidUrl(format!(
                "unsupported scheme {other}"
            )));
        }
    };
    url.set_scheme(scheme)
        .map_err(|_| SocketIoError::InvalidUrl("cannot change scheme".into()))?;
    let path = format!("{}/socket.io/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(Some("EIO=4&transport=websocket"));
    url.set_username("").ok();
    url.set_password(None).ok();
    Ok(url)
}

impl SocketIoClient {
    /// Opens the websocket, completes the Engine.IO handshake and joins the
    /// default namespace. No `Origin` header is sent (Uptime Kuma 2.x checks
    /// it when present).
    pub async fn connect(base: &str, timeout: Duration) -> Result<Self, SocketIoError> {
        let url = endpoint(base)?;
        let shown = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let connect = async {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(|e| SocketIoError::Connect {
                    url: shown.clone(),
                    source: Box::new(e),
                })?;
            // Engine.IO open packet.
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with('0') => {}
                _ => {
                    return Err(SocketIoError::Refused(
                        "no Engine.IO open packet (is this a Socket.IO v4 server?)".into(),
                    ));
                }
            }
            ws.send(Message::text("40"))
                .await
                .map_err(|_| SocketIoError::Closed)?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let t = t.as_str();
                        if t.starts_with("40") {
                            return Ok(ws);
                        } else if let Some(rest) = t.strip_prefix("44") {
                            return Err(SocketIoError::Refused(rest.to_owned()));
                        } else if t == "2" {
                            ws.send(Message::text("3"))
                                .await
                                .map_err(|_| SocketIoError::Closed)?;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return Err(SocketIoError::Closed),
                }
            }
        };
        let ws = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| SocketIoError::Timeout(timeout))??;
        let shared = Arc::new(Shared::default());
        let (out, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(ws, rx, out.clone(), shared.clone()));
        Ok(Self {
            out,
            shared,
            next_id: AtomicU64::new(0),
            task,
        })
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Emits `event` with `args` and waits for the ack's arguments.
    pub async fn emit_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, SocketIoError> {
        if self.is_closed() {
            return Err(SocketIoError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut acks) = self.shared.acks.lock() {
            acks.insert(id, tx);
        }
        let mut payload = vec![Value::String(event.to_owned())];
        payload.extend(args);
        let frame = format!("42{id}{}", Value::Array(payload));
        if self.out.send(Message::text(frame)).is_err() {
            return Err(SocketIoError::Closed);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(SocketIoError::Closed),
            Err(_) => {
                if let Ok(mut acks) = self.shared.acks.lock() {
                    acks.remove(&id);
                }
                Err(SocketIoError::Timeout(timeout))
            }
        }
    }

    /// Forgets the last arguments of `event`, so that [`Self::wait_event`]
    /// waits for a fresh one.
    pub fn forget(&self, event: &str) {
        if let Ok(mut ev) = self.shared.events.lock() {
            ev.remove(event);
        }
    }

    /// Waits until one of `events` has been pushed and its arguments satisfy
    /// `accept`; returns its name and arguments.
    pub async fn wait_event(
        &self,
        events: &[&str],
        accept: impl Fn(&[Value]) -> bool,
        timeout: Duration,
    ) -> Result<(String, Vec<Value>), SocketIoError> {
        let wait = async {
            loop {
                let notified = self.shared.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Ok(ev) = self.shared.events.lock() {
                    for name in events {
                        if let Some(args) = ev.get(*name)
                            && accept(args)
                        {
                            return Ok(((*name).to_owned(), args.clone()));
                        }
                    }
                }
                if self.is_closed() {
                    return Err(SocketIoError::Closed);
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| SocketIoError::Timeout(timeout))?
    }

    /// Closes the connection.
    pub fn close(&self) {
        let _ = self.out.send(Message::text("41"));
        let _ = self.out.send(Message::Close(None));
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(
    ws: Ws,
    mut rx: mpsc::UnboundedReceiver<Message>,
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
) {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            msg = rx.recv() => {
                match msg {
                    Some(m) => if sink.send(m).await.is_err() { break },
                    None => break,
                }
            }
            frame = stream.next() => {
                match frame {
                    Some(Ok(Message::Text(t))) => handle(t.as_str(), &out, &shared),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    closed(&shared);
}

/// One Engine.IO packet from the server.
fn handle(text: &str, out: &mpsc::UnboundedSender<Message>, shared: &Shared) {
    match text.as_bytes().first() {
        Some(b'2') => {
            let _ = out.send(Message::text("3"));
        }
        Some(b'1') => closed(shared),
        Some(b'4') => handle_socketio(&text[1..], shared),
        _ => {}
    }
}

fn handle_socketio(p: &str, shared: &Shared) {
    let Some(kind) = p.as_bytes().first() else {
        return;
    };
    let rest = &p[1..];
    // Default namespace only: skip an explicit "/," prefix.
    let rest = rest.strip_prefix("/,").unwrap_or(rest);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id: Option<u64> = rest[..digits].parse().ok();
    let data: Vec<Value> = match serde_json::from_str(&rest[digits..]) {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    match kind {
        b'2' => {
            let mut data = data.into_iter();
            if let Some(Value::String(name)) = data.next() {
                if let Ok(mut ev) = shared.events.lock() {
                    ev.insert(name, data.collect());
                }
                shared.notify.notify_waiters();
            }
        }
        b'3' => {
            if let Some(id) = id
                && let Ok(mut acks) = shared.acks.lock()
                && let Some(tx) = acks.remove(&id)
            {
                let _ = tx.send(data);
            }
        }
        b'1' => closed(shared),
        _ => {}
    }
}

/// The server ended the session: no ack will come, so every call waiting
/// for one fails now (its sender is dropped) instead of at its timeout.
fn closed(shared: &Shared) {
    shared.closed.store(true, Ordering::SeqCst);
    if let Ok(mut acks) = shared.acks.lock() {
        acks.clear();
    }
    shared.notify.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_a_path_prefix_and_drops_credentials() {
        let u = endpoint("https://user:pw@kuma.example.com/status/").unwrap();
        assert_eq!(
            u.as_str(),
            "wss://kuma.example.com/status/socket.io/?EIO=4&transport=websocket"
        );
        let u = endpoint("http://127.0.0.1:3001").unwrap();
        assert_eq!(
            u.as_str(),
            "ws://127.0.0.1:3001/socket.io/?EIO=4&transport=websocket"
        );
        assert!(endpoint("ftp://x").is_err());
    }

    #[test]
    fn events_and_acks_are_parsed() {
        let shared = Shared::default();
        handle_socketio(r#"2["loginRequired"]"#, &shared);
        handle_socketio(r#"2["info",{"version":"2.5.3"}]"#, &shared);
        let ev = shared.events.lock().unwrap();
        assert_eq!(ev.get("loginRequired"), Some(&vec![]));
        assert_eq!(ev["info"][0]["version"], "2.5.3");
        drop(ev);
        let (tx, mut rx) = oneshot::channel();
        shared.acks.lock().unwrap().insert(12, tx);
        handle_socketio(r#"312[{"ok":true}]"#, &shared);
        assert_eq!(rx.try_recv().unwrap()[0]["ok"], true);
    }
}

//! The Socket.IO engine under the customer side: socketioxide's settings,
//! and what it keeps of each connection.
//!
//! An idle customer costs the bridge what socketioxide (and engineioxide,
//! tungstenite, hyper under it) keeps per connection, plus the little the
//! handlers keep (`handlers.rs`). Two things here make that smaller
//! (measured in `crates/bench/README.md`, "Memory per idle customer"):
//!
//! - [`OwnedHead`]: engineioxide keeps every session's request head
//!   (`Socket::req_parts`) for as long as the session lives, and hyper
//!   parses the URI and header values as slices of the connection's read
//!   buffer, so keeping the head kept that whole buffer (16 KiB) alive.
//!   The layer copies them (and the copy of the URI axum's router stores
//!   as the `OriginalUri` extension) into allocations of their own first.
//! - the websocket read buffer: tungstenite zero-fills it to its full size
//!   before every read, so all of it is resident; the protocol's frames are
//!   small (`MAX_PACKET_BYTES` at most, most under 1 KiB) and a bigger frame
//!   still reserves its full length once its header is read.

use std::task::{Context, Poll};

use axum::extract::OriginalUri;
use http::header::HeaderMap;
use http::{HeaderValue, Request, Uri};
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::layer::SocketIoLayer;
use socketioxide::service::SocketIoService;
use socketioxide::{SocketIo, SocketIoBuilder, TransportType};
use tower_layer::Layer;
use tower_service::Service;

use super::MAX_PACKET_BYTES;

/// Where socketioxide serves (its default): only these requests' heads are
/// copied.
const ENGINE_PATH: &str = "/socket.io/";

/// Bytes tungstenite reads at a time (engineioxide's default is 4 KiB).
pub const WS_READ_BUFFER_BYTES: usize = 1024;

/// socketioxide's settings, whatever the adapter.
pub fn builder() -> SocketIoBuilder {
    SocketIo::builder()
        .max_payload(MAX_PACKET_BYTES as u64)
        .ws_max_message_size(MAX_PACKET_BYTES)
        .ws_max_frame_size(MAX_PACKET_BYTES)
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
        .transports([TransportType::Polling, TransportType::Websocket])
}

/// The Socket.IO layer and its handle, rooms in this process. Attach the
/// namespace with [`super::attach`] once the core exists (the core needs
/// the handle to emit).
pub fn socket_io() -> (CustomerLayer, SocketIo) {
    let (layer, io) = builder().build_layer();
    (CustomerLayer(layer), io)
}

/// socketioxide's layer (on adapter `A`) behind [`OwnedHead`].
pub struct CustomerLayer<A: Adapter = LocalAdapter>(pub(super) SocketIoLayer<A>);

impl<A: Adapter> Clone for CustomerLayer<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: Clone, A: Adapter> Layer<S> for CustomerLayer<A> {
    type Service = OwnedHead<SocketIoService<S, A>>;

    fn layer(&self, inner: S) -> Self::Service {
        OwnedHead(self.0.layer(inner))
    }
}

/// Hands the inner service Socket.IO requests whose URI and header values
/// own their bytes (see [`own_head`]).
#[derive(Clone)]
pub struct OwnedHead<S>(S);

impl<S, B> Service<Request<B>> for OwnedHead<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path().starts_with(ENGINE_PATH) {
            let (mut head, body) = request.into_parts();
            own_head(&mut head);
            self.0.call(Request::from_parts(head, body))
        } else {
            self.0.call(request)
        }
    }
}

/// Copies the URI (and axum's `OriginalUri`) and every header value into
/// allocations of their own, so that keeping the head does not keep the
/// buffer it was parsed from. Names, order, repeated headers and the
/// sensitive flag are kept.
pub fn own_head(head: &mut http::request::Parts) {
    head.uri = owned_uri(&head.uri);
    if let Some(original) = head.extensions.get_mut::<OriginalUri>() {
        original.0 = owned_uri(&original.0);
    }
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        // `from_bytes` copies; a value hyper accepted is always valid again.
        let Ok(mut owned) = HeaderValue::from_bytes(value.as_bytes()) else {
            continue;
        };
        owned.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), owned);
    }
    head.headers = headers;
}

fn owned_uri(uri: &Uri) -> Uri {
    // Parsing a `&str` copies it; what was a URI parses again.
    Uri::try_from(uri.to_string().as_str()).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head parsed the way hyper parses one: URI and values are slices
    /// of one read buffer.
    fn head_sharing(buffer: &bytes::Bytes) -> http::request::Parts {
        let text = std::str::from_utf8(buffer).unwrap();
        let slice = |part: &str| {
            let start = text.find(part).unwrap();
            buffer.slice(start..start + part.len())
        };
        let (mut head, ()) = Request::new(()).into_parts();
        head.uri = Uri::from_maybe_shared(slice("/socket.io/?EIO=4&transport=websocket")).unwrap();
        head.extensions.insert(OriginalUri(head.uri.clone()));
        for (name, value) in [
            ("host", "127.0.0.1:3000"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ] {
            let value = HeaderValue::from_maybe_shared(slice(value)).unwrap();
            head.headers.append(name, value);
        }
        head.headers
            .get_mut("sec-websocket-key")
            .unwrap()
            .set_sensitive(true);
        head
    }

    fn inside(buffer: &[u8], bytes: &[u8]) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&bytes.as_ptr())
    }

    #[test]
    fn the_owned_head_says_the_same_and_no_longer_points_into_the_read_buffer() {
        let mut text = String::from(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nhost: 127.0.0.1:3000\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\ncookie: a=1\r\ncookie: b=2\r\n\r\n",
        );
        text.push_str(&" ".repeat(8192));
        let buffer = bytes::Bytes::from(text);
        let mut head = head_sharing(&buffer);
        let before = head.headers.clone();
        assert!(inside(&buffer, head.uri.path().as_bytes()));

        own_head(&mut head);

        assert_eq!(head.uri, "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(head.headers, before);
        let cookies: Vec<_> = head.headers.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert!(head.headers["sec-websocket-key"].is_sensitive());
        assert!(!inside(&buffer, head.uri.path().as_bytes()));
        let original = &head.extensions.get::<OriginalUri>().unwrap().0;
        assert_eq!(original, &head.uri);
        assert!(!inside(&buffer, original.path().as_bytes()));
        for value in head.headers.values() {
            assert!(!inside(&buffer, value.as_bytes()), "{value:?}");
        }
    }
}

//! `GET /_emulator/events`: Server-Sent Events, one per change. Each event
//! has `event:` = its type (e.g. `message.added`), `id:` = its sequence
//! number, and `data:` = JSON. A `ready` event opens every stream; a
//! subscriber that falls more than the event buffer behind
//! (`--event-buffer`) gets a `lagged` event saying how many it missed (then
//! reload `/_emulator/state`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::app::App;

pub(super) async fn events(
    State(app): State<Arc<App>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = app.events.subscribe();
    let generation = app.lock().generation;
    let ready = Event::default()
        .event("ready")
        .data(json!({ "generation": generation }).to_string());
    let changes = BroadcastStream::new(receiver).map(|item| {
        Ok(match item {
            Ok(event) => Event::default()
                .event(event.kind)
                .id(event.seq.to_string())
                .data(event.data.to_string()),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Event::default()
                .event("lagged")
                .data(json!({ "missed": missed }).to_string()),
        })
    });
    let stream = stream::once(async move { Ok(ready) })
        .chain(changes)
        .take_until(app.streams.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

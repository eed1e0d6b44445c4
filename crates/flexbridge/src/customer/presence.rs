//! Who is connected now: the `flexbridge_sockets_connected` and
//! `flexbridge_customers_online` gauges, kept as sockets connect, register
//! and leave. A socket counts once connected (a refused handshake never
//! does); its customer counts from the connect (a resumed socket) or from
//! `register`, and stops counting when their last socket leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::core::ids::CustomerId;
use crate::telemetry::families::{CUSTOMERS_ONLINE, SOCKETS_CONNECTED};

/// The connected customers of one bridge, by their open sockets.
#[derive(Debug, Default)]
pub struct Presence {
    sockets: Mutex<HashMap<CustomerId, usize>>,
}

/// A socket's handle on its bridge's [`Presence`] (a socket extension).
#[derive(Debug, Clone)]
pub(super) struct Present(pub Arc<Presence>);

impl Presence {
    /// A socket connected, bound to `customer` already if it resumed;
    /// counted until it disconnects (whoever it is bound to by then).
    pub(super) fn connected<A: Adapter>(
        self: &Arc<Self>,
        socket: &SocketRef<A>,
        customer: Option<&CustomerId>,
    ) {
        metrics::gauge!(SOCKETS_CONNECTED).increment(1.0);
        if let Some(customer) = customer {
            self.joined(customer);
        }
        socket.extensions.insert(Present(self.clone()));
        let presence = self.clone();
        socket.on_disconnect(async move |socket: SocketRef<A>| {
            metrics::gauge!(SOCKETS_CONNECTED).decrement(1.0);
            if let Some(bound) = socket.extensions.get::<super::handlers::Bound>() {
                presence.left(&bound.0.id);
            }
        });
    }

    /// A connected socket's customer: online from their first socket.
    pub(super) fn joined(&self, customer: &CustomerId) {
        let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        let count = sockets.entry(customer.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            metrics::gauge!(CUSTOMERS_ONLINE).increment(1.0);
        }
    }

    /// One of the customer's sockets left: offline after the last.
    fn left(&self, customer: &CustomerId) {
        let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(count) = sockets.get_mut(customer) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            sockets.remove(customer);
            metrics::gauge!(CUSTOMERS_ONLINE).decrement(1.0);
        }
    }
}

//! Per-socket event order. socketioxide runs every event handler in its own
//! task, so two `message` events a client emitted back to back could commit
//! in either order. The [`InOrder`] extractor takes a ticket while the
//! socket's packets are still being read in order (extraction is
//! synchronous), and the handler waits for its ticket's turn before doing
//! anything: one socket's events are handled strictly in emit order, while
//! different sockets still run concurrently.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use socketioxide::adapter::Adapter;
use socketioxide::handler::{FromMessageParts, Value};
use socketioxide::socket::Socket;
use tokio::sync::watch;

/// The queue of one socket's events.
#[derive(Debug)]
pub struct Turnstile {
    next_ticket: AtomicU64,
    /// The ticket whose turn it is.
    serving: watch::Sender<u64>,
}

impl Default for Turnstile {
    fn default() -> Self {
        Self {
            next_ticket: AtomicU64::new(0),
            serving: watch::Sender::new(0),
        }
    }
}

impl Turnstile {
    pub fn ticket(self: &Arc<Self>) -> Ticket {
        Ticket {
            number: self.next_ticket.fetch_add(1, Ordering::SeqCst),
            turnstile: Some(self.clone()),
        }
    }
}

/// A place in a socket's queue. Dropping it unused still lets the queue
/// move on once its turn comes.
#[derive(Debug)]
pub struct Ticket {
    number: u64,
    turnstile: Option<Arc<Turnstile>>,
}

/// Holding this means it is this event's turn; dropping it passes the turn.
#[derive(Debug)]
pub struct Turn {
    number: u64,
    turnstile: Arc<Turnstile>,
}

impl Ticket {
    /// Waits until every earlier event of the socket is done.
    pub async fn wait(mut self) -> Turn {
        let Some(turnstile) = self.turnstile.take() else {
            unreachable_turn()
        };
        wait_for(&turnstile, self.number).await;
        Turn {
            number: self.number,
            turnstile,
        }
    }
}

async fn wait_for(turnstile: &Turnstile, number: u64) {
    let mut serving = turnstile.serving.subscribe();
    // `wait_for` only fails when the sender is gone, and we hold it.
    let _ = serving.wait_for(|now| *now >= number).await;
}

fn unreachable_turn() -> ! {
    // A Ticket is consumed by `wait`, so its turnstile is always present.
    panic!("a ticket was waited on twice")
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(turnstile) = self.turnstile.take() {
            let number = self.number;
            tokio::spawn(async move {
                wait_for(&turnstile, number).await;
                pass(&turnstile, number);
            });
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        pass(&self.turnstile, self.number);
    }
}

fn pass(turnstile: &Turnstile, number: u64) {
    turnstile
        .serving
        .send_modify(|now| *now = (*now).max(number + 1));
}

/// Extractor: this event's ticket in its socket's queue.
pub struct InOrder(pub Ticket);

impl<A: Adapter> FromMessageParts<A> for InOrder {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        _: &mut Value,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let turnstile = match socket.extensions.get::<Arc<Turnstile>>() {
            Some(turnstile) => turnstile,
            None => {
                let turnstile = Arc::new(Turnstile::default());
                socket.extensions.insert(turnstile.clone());
                turnstile
            }
        };
        Ok(Self(turnstile.ticket()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn events_run_in_ticket_order_even_when_their_tasks_start_in_reverse() {
        let turnstile = Arc::new(Turnstile::default());
        let tickets: Vec<Ticket> = (0..5).map(|_| turnstile.ticket()).collect();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, ticket) in tickets.into_iter().enumerate().rev() {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let _turn = ticket.wait().await;
                tokio::task::yield_now().await;
                log.lock().unwrap().push(i);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_dropped_ticket_does_not_block_the_ones_behind_it() {
        let turnstile = Arc::new(Turnstile::default());
        let first = turnstile.ticket();
        let second = turnstile.ticket();
        drop(first);
        let turn = tokio::time::timeout(std::time::Duration::from_secs(5), second.wait()).await;
        assert!(turn.is_ok());
    }
}

//! The event bus: stored events fan out to live subscribers (gateways, `events --follow`,
//! the detector). The in-process bus is the embedded default; NATS JetStream comes with
//! scale-out. Events are stored before they are published, so a subscriber that missed
//! something reads it back from storage.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use otgate_policy::Event;

/// An event with its position in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredEvent {
    /// Sequence number, increasing.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Publish and subscribe.
pub trait EventBus: Send + Sync {
    /// Hands an already-stored event to every subscriber.
    fn publish(&self, event: StoredEvent);
    /// A new subscription; a lagging subscriber is told how much it missed.
    fn subscribe(&self) -> broadcast::Receiver<StoredEvent>;
}

/// The in-process bus.
pub struct LocalBus {
    sender: broadcast::Sender<StoredEvent>,
}

impl LocalBus {
    /// A bus that buffers `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        Self { sender }
    }
}

impl EventBus for LocalBus {
    fn publish(&self, event: StoredEvent) {
        // No subscriber is not an error: the event is stored already.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.sender.subscribe()
    }
}

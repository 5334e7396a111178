//! The engine's event stream (`docker events`): a broadcast channel for live subscribers and a
//! bounded ring of recent events for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many past events are kept for `since`.
const RING: usize = 1024;

/// One event, in the API's `EventMessage` shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    // Pre-1.22 fields that the docker CLI still reads for containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// The event hub.
pub struct Events {
    tx: broadcast::Sender<Event>,
    ring: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(RING);
        Events {
            tx,
            ring: Mutex::new(VecDeque::with_capacity(RING)),
        }
    }
}

impl Events {
    /// Publishes an event.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let nano = now.as_nanos() as i64;
        let legacy = kind == "container" || kind == "image";
        let ev = Event {
            kind: kind.to_string(),
            action: action.to_string(),
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: attributes.get("image").cloned().filter(|_| legacy),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: nano / 1_000_000_000,
            time_nano: nano,
        };
        {
            let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            if r.len() == RING {
                r.pop_front();
            }
            r.push_back(ev.clone());
            // Sent under the ring's lock: a subscriber sees each event exactly once.
            let _ = self.tx.send(ev);
        }
    }

    /// Past events at or after `since_nano`, and a receiver for what comes next (taken under
    /// the same lock, so nothing falls between the two).
    pub fn subscribe(&self, since_nano: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        let past = match since_nano {
            Some(s) => r.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

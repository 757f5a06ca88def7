//! The node daemon's view of its KuryrPorts: a kube-rs reflector store of
//! the KuryrPorts labelled with this node's name (all namespaces), fed by
//! one watch on the apiserver, and a change signal so a CNI ADD waits for
//! the controller event-driven, never polling (docs/kubernetes.md § The
//! node daemon).
//!
//! [`cache`] makes the two halves: the [`PortCache`] handlers read and
//! wait on, and the [`PortFeed`] that applies watch events to it, driven
//! by [`watch`] in the daemon and by hand in tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::watch as signal;
use tracing::{debug, info, warn};

use crate::crds::{KuryrPort, NODE_NAME_LABEL};

/// What handlers read: the KuryrPorts of this node as last seen, whether
/// the first full listing arrived, and a signal on every change. Cheap to
/// clone.
#[derive(Clone)]
pub struct PortCache {
    store: Store<KuryrPort>,
    changed: signal::Receiver<u64>,
    synced: Arc<AtomicBool>,
}

/// What the watch writes with: applies events to the store, then signals.
pub struct PortFeed {
    writer: reflector::store::Writer<KuryrPort>,
    changed: signal::Sender<u64>,
    synced: Arc<AtomicBool>,
}

/// An empty cache and the feed that fills it.
pub fn cache() -> (PortCache, PortFeed) {
    let writer = reflector::store::Writer::<KuryrPort>::default();
    let (tx, rx) = signal::channel(0);
    let synced = Arc::new(AtomicBool::new(false));
    let cache = PortCache { store: writer.as_reader(), changed: rx, synced: synced.clone() };
    (cache, PortFeed { writer, changed: tx, synced })
}

impl PortCache {
    /// The KuryrPort `namespace/name` (named after its pod), as last seen.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<KuryrPort>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// Whether the first full listing arrived: until then an absent
    /// KuryrPort may just not be known yet.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// A subscription to changes: [`Changes::seen`] before reading the
    /// cache, then [`Changes::next`] wakes on any later change, so none
    /// is missed between the read and the wait.
    pub fn changes(&self) -> Changes {
        Changes(self.changed.clone())
    }
}

/// A subscription to the cache's changes.
pub struct Changes(signal::Receiver<u64>);

impl Changes {
    /// Marks every change so far as seen.
    pub fn seen(&mut self) {
        self.0.borrow_and_update();
    }

    /// Waits for a change after the last [`Changes::seen`]; `false` when
    /// the feed is gone (the watch stopped: no change will come).
    pub async fn next(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

impl PortFeed {
    /// Applies one watch event, then wakes the waiters. A re-listing
    /// (`Init` .. `InitDone`) swaps in atomically at `InitDone`, the first
    /// of which marks the cache synced.
    pub fn apply(&mut self, event: &Event<KuryrPort>) {
        self.writer.apply_watcher_event(event);
        match event {
            Event::Apply(_) | Event::Delete(_) => {}
            Event::InitDone => {
                if !self.synced.swap(true, Ordering::AcqRel) {
                    info!(kuryrports = self.writer.as_reader().len(), "KuryrPorts synced");
                }
            }
            // Buffered until InitDone: nothing visible changed.
            Event::Init | Event::InitApply(_) => return,
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The label selector of the KuryrPorts of `node`.
pub fn node_selector(node: &str) -> String {
    format!("{NODE_NAME_LABEL}={node}")
}

/// Watches the KuryrPorts of `node` in every namespace into `feed`, for as
/// long as the returned future runs. A failed watch is retried with
/// kube-rs' default backoff and re-lists (the store stays as it was in
/// between: ADD's pod UID check keeps a stale entry from being bound).
pub async fn watch(client: kube::Client, node: String, mut feed: PortFeed) {
    let api: Api<KuryrPort> = Api::all(client);
    let config = watcher::Config::default().labels(&node_selector(&node));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    info!(node, selector = node_selector(&node), "watching KuryrPorts");
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if let Event::Apply(kp) | Event::Delete(kp) = &event {
                    debug!(
                        kuryrport = %ObjectRef::from_obj(kp),
                        deleted = matches!(event, Event::Delete(_)),
                        "KuryrPort changed"
                    );
                }
                feed.apply(&event);
            }
            Err(err) => warn!(%err, "watching KuryrPorts failed; retrying"),
        }
    }
}

//! What a worker shares with whoever supervises it: its id, a request
//! counter, the registry of requests in flight and a "ready" flag.
//!
//! The master's heartbeat reads these to report progress and, when a worker
//! hangs, which request it was stuck on.
//!
//! Its own module, below both `http` (which counts and registers each
//! request) and `worker` (which builds it and reports it to the master), so
//! that neither of those imports the other in both directions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Handles into a running worker. Cheap to clone: every field is shared.
#[derive(Clone, Debug)]
pub struct WorkerContext {
    /// The worker's number (1-based), as in `ConnectionInfo::worker_id`.
    pub worker_id: u32,
    /// Requests started so far (counted when the head is parsed).
    pub requests: Arc<AtomicU64>,
    /// The requests being served now.
    pub in_flight: InFlight,
    ready: Arc<tokio::sync::watch::Sender<bool>>,
    /// `--max-requests` (with jitter): the worker stops once it has started
    /// this many requests. `u64::MAX` = no quota.
    quota: Arc<AtomicU64>,
    quota_reached: Arc<tokio::sync::Notify>,
}

impl WorkerContext {
    /// A context for worker `worker_id`.
    pub fn new(worker_id: u32) -> WorkerContext {
        WorkerContext {
            worker_id,
            requests: Arc::new(AtomicU64::new(0)),
            in_flight: InFlight::default(),
            ready: Arc::new(tokio::sync::watch::channel(false).0),
            quota: Arc::new(AtomicU64::new(u64::MAX)),
            quota_reached: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Sets the number of requests after which the worker stops.
    pub fn set_request_quota(&self, quota: u64) {
        self.quota.store(quota, Ordering::Relaxed);
    }

    /// Counts a request that starts; wakes [`WorkerContext::quota_reached`]
    /// when it is the last of the quota.
    pub(crate) fn count_request(&self) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.quota.load(Ordering::Relaxed) {
            self.quota_reached.notify_one();
        }
    }

    /// Resolves once the request quota is used up.
    pub async fn quota_reached(&self) {
        self.quota_reached.notified().await
    }

    /// Requests started so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Resolves once the worker has run the application's start-up hook and
    /// accepts connections (at once if it already does).
    pub async fn ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Whether the worker accepts connections.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    pub(crate) fn set_ready(&self) {
        self.ready.send_replace(true);
    }
}

/// A request being served, as [`InFlight::oldest`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlightRequest {
    /// The method.
    pub method: String,
    /// The path and query as received.
    pub path: String,
    /// The request id (as in the access log).
    pub request_id: String,
    /// When the worker started serving it.
    pub started: Instant,
}

/// The registry of requests in flight in one worker.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    // In start order, so the first entry is the oldest request, and sorted
    // by key, so an entry is found by binary search. An ended request
    // leaves a hole (`None`) that is dropped once it reaches the front, or
    // in a compaction when holes outnumber requests (a long request must
    // not make the queue grow with every request after it). Registering a
    // request allocates nothing once the queue has grown to the worker's
    // concurrency, and the label is shared with the request's own
    // bookkeeping, so no string is copied; an [`InFlightRequest`] is only
    // built when asked for.
    requests: VecDeque<(u64, Option<Entry>)>,
    live: usize,
}

/// A request in flight: what names it, and when it started.
type Entry = (Arc<RequestLabel>, Instant);

impl Registry {
    fn remove(&mut self, key: u64) {
        if let Ok(i) = self.requests.binary_search_by_key(&key, |(k, _)| *k) {
            if self.requests[i].1.take().is_some() {
                self.live -= 1;
            }
        }
        while matches!(self.requests.front(), Some((_, None))) {
            self.requests.pop_front();
        }
        if self.requests.len() > 2 * self.live + 64 {
            self.requests.retain(|(_, r)| r.is_some());
        }
    }
}

/// What names a request in reports and error messages.
///
/// Built for every request, so it holds what hyper already made (a method
/// and URI share the head's buffer, an id its bytes): labelling a request
/// copies no string.
#[derive(Debug)]
pub(crate) struct RequestLabel {
    pub method: http::Method,
    /// The request-target as received.
    pub uri: http::Uri,
    pub request_id: http::HeaderValue,
}

impl RequestLabel {
    /// The path and query as received (the whole target in absolute or
    /// authority form).
    pub fn path(&self) -> std::borrow::Cow<'_, str> {
        match self.uri.path_and_query() {
            Some(pq) if self.uri.scheme().is_none() => pq.as_str().into(),
            _ => self.uri.to_string().into(),
        }
    }

    /// The request id as text (it is checked to be ASCII when made).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }
}

/// Removes its request from the registry when dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    registry: InFlight,
    key: u64,
}

impl InFlight {
    /// Records a request; it stays in flight until the guard is dropped.
    pub fn begin(&self, method: &str, path: &str, request_id: &str) -> InFlightGuard {
        let label = RequestLabel {
            method: method.parse().unwrap_or_default(),
            uri: path.parse().unwrap_or_default(),
            request_id: http::HeaderValue::from_str(request_id)
                .unwrap_or(http::HeaderValue::from_static("-")),
        };
        self.begin_label(Arc::new(label), Instant::now())
    }

    /// Records a request, labelled by `label`, that started at `started`.
    pub(crate) fn begin_label(&self, label: Arc<RequestLabel>, started: Instant) -> InFlightGuard {
        let mut reg = self.lock();
        let key = reg.next;
        reg.next += 1;
        reg.requests.push_back((key, Some((label, started))));
        reg.live += 1;
        InFlightGuard {
            registry: self.clone(),
            key,
        }
    }

    /// The request that has been in flight longest.
    pub fn oldest(&self) -> Option<InFlightRequest> {
        let reg = self.lock();
        let (label, started) = reg.requests.front()?.1.as_ref()?;
        Some(InFlightRequest {
            method: label.method.to_string(),
            path: label.path().into_owned(),
            request_id: label.request_id().to_owned(),
            started: *started,
        })
    }

    /// How many requests are in flight.
    pub fn len(&self) -> usize {
        self.lock().live
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (each operation is one insert or remove), so poison is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_is_first_begun_and_guards_remove() {
        let f = InFlight::default();
        assert!(f.oldest().is_none());
        let a = f.begin("GET", "/a", "1");
        let b = f.begin("POST", "/b", "2");
        assert_eq!(f.oldest().unwrap().path, "/a");
        drop(a);
        assert_eq!(f.oldest().unwrap().request_id, "2");
        assert_eq!(f.len(), 1);
        drop(b);
        assert!(f.is_empty());
    }

    #[test]
    fn a_long_request_does_not_grow_the_registry() {
        let f = InFlight::default();
        let long = f.begin("GET", "/stream", "long");
        let middle = f.begin("GET", "/m", "m");
        for i in 0..10_000 {
            drop(f.begin("GET", "/short", &i.to_string()));
        }
        assert!(f.lock().requests.len() <= 2 * 2 + 64 + 1);
        assert_eq!(f.len(), 2);
        drop(long);
        assert_eq!(f.oldest().unwrap().path, "/m");
        drop(middle);
        assert!(f.is_empty() && f.oldest().is_none());
        assert!(f.lock().requests.is_empty());
    }
}

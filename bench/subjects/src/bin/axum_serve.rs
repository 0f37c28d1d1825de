//! The axum example's `Router` (the very file `examples/axum.rs`, included)
//! served by `axum::serve` in N worker processes sharing one listening
//! socket, each on a single-threaded tokio runtime (as a ferricorn worker
//! with the default `--threads 1`): plain axum, to measure what ferricorn's
//! master, HTTP layer and tower adapter cost around the same application.
//!
//! ```text
//! FERRICORN_AUTH_DB=/tmp/a.sqlite3 FERRICORN_AUTH_SIGNING_KEY=... \
//!     axum-serve --bind 127.0.0.1:8000 --workers 2
//! ```

use axum::serve::ListenerExt;

#[path = "../prefork.rs"]
mod prefork;

// The example's `main` is not used here; its `router` is.
#[allow(dead_code)]
#[path = "../../../../examples/axum.rs"]
mod example;

fn main() {
    let std_listener = prefork::listener_or_master("AXUM_SERVE_WORKER");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        // Built in the worker, as ferricorn builds it: the token layer
        // opens its database here.
        let (settings, db) =
            ferricorn_auth::load_settings(None, &Default::default(), |k| std::env::var(k).ok()).expect("settings");
        let auth = ferricorn_auth::TokenLayer::with_db(settings, db.open(false).expect("database"))
            .expect("token layer");
        let router = example::router(auth);
        // TCP_NODELAY on every accepted connection, as ferricorn and
        // hyper-hello set it (axum::serve does not by default).
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .expect("listener")
            .tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
        axum::serve(listener, router).await.expect("serve");
    });
}

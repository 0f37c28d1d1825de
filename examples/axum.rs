//! An axum application under ferricorn's prefork master: the `Router` you
//! would hand to `axum::serve`, handed to `ferricorn_tower::main` instead,
//! with a route protected by ferricorn-auth's access tokens.
//!
//! - `GET /items` → 200, the items as a JSON list;
//! - `POST /items` with `{"name": "..."}` → 201 with the created item (a
//!   malformed body gets axum's own 400, 415 or 422);
//! - `GET /items/{id}` → 200 with the item, or 404 `{"error": ...}`;
//! - `GET /me` with `Authorization: Bearer <access token>` from
//!   ferricorn-auth (same signing key and database) → 200
//!   `{"user_id": ..., "username": ...}`, otherwise simplejwt's 401s;
//! - anything else: the echo contract of `examples/echo.rs` (the whole body
//!   read, then `{"method", "path", "query", "body_len", "pid", ...}`;
//!   `/sleep?s=N`, `/block?s=N`, `/panic`, `/stream?n=N`), so the kits that
//!   judge `echo` judge this one too.
//!
//! The items live in each worker process's memory (the `State` is built in
//! the factory, which runs in each worker): with several workers, each has
//! its own list. Keep shared data in a database.
//!
//! ```text
//! export FERRICORN_AUTH_SIGNING_KEY=$(openssl rand -hex 32) FERRICORN_AUTH_DB=auth.sqlite3
//! cargo run --release --example axum -- --bind 127.0.0.1:8000 --workers 2
//! curl -H 'Content-Type: application/json' -d '{"name": "tea"}' http://127.0.0.1:8000/items
//! ```

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ferricorn_auth::{AuthUser, TokenLayer};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[path = "shared/echo_contract.rs"]
mod echo_contract;

#[derive(Clone, Serialize)]
struct Item {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
}

/// The state every request of a worker shares.
#[derive(Clone, Default)]
struct Items(Arc<Mutex<Vec<Item>>>);

impl Items {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Item>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn list_items(State(items): State<Items>) -> Json<Vec<Item>> {
    Json(items.lock().clone())
}

async fn create_item(State(items): State<Items>, Json(new): Json<NewItem>) -> impl IntoResponse {
    let mut items = items.lock();
    let item = Item {
        id: items.len() as u64 + 1,
        name: new.name,
    };
    items.push(item.clone());
    let location = format!("/items/{}", item.id);
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(item),
    )
}

async fn show_item(State(items): State<Items>, Path(id): Path<u64>) -> Response {
    match items.lock().iter().find(|item| item.id == id) {
        Some(item) => Json(item.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no item {id}")})),
        )
            .into_response(),
    }
}

/// Reached only with a valid access token: the token layer answered
/// everything else.
async fn me(user: AuthUser) -> Json<serde_json::Value> {
    Json(json!({"user_id": user.id, "username": user.username}))
}

/// The echo contract, for every other method and path.
async fn echo(request: Request) -> Response {
    echo_contract::act_on(request.uri()).await;
    let (parts, mut body) = request.into_parts();
    // Counted as it streams in, never held: an upload of any size (under
    // `--limit-request-body`) is read to its end.
    let mut body_len = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => body_len += frame.data_ref().map_or(0, |d| d.len() as u64),
            // ferricorn turns a 5xx after a refused body into the client's
            // error (413 past the limit, 400 for bad chunking).
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
    if let Some(body) = echo_contract::streamed(&parts.uri) {
        let body = axum::body::Body::new(body);
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    Json(echo_contract::describe(&parts, body_len)).into_response()
}

/// The application (public: the benchmark serves this same `Router` with
/// `axum::serve` beside ferricorn). `auth` guards `/me`; `route_layer` puts it in front of
/// that route only, so other methods on `/me` fall through to the echo
/// instead of answering 401.
pub fn router(auth: TokenLayer) -> Router {
    Router::new()
        .route("/items", get(list_items).post(create_item).fallback(echo))
        .route("/items/{id}", get(show_item).fallback(echo))
        .route("/me", get(me).route_layer(auth).fallback(echo))
        .fallback(echo)
        .with_state(Items::default())
}

fn main() -> ExitCode {
    // The factory runs in each worker process, after the fork: the token
    // layer opens its database connection there, and each worker gets its
    // own `Items`.
    ferricorn_tower::main_with_config(|config| Ok(router(TokenLayer::from_config(config)?)))
}

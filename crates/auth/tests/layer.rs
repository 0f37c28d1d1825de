//! In-process tests of the token layer: a tower service behind
//! `TokenLayer`, requests in, responses out. The oracle for every refusal is
//! the application's own `GET /api/hello/` given the same header, on the
//! same store and settings ("exactly as `GET /api/hello/` does").

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferricorn_app_interface::{Application, Body, Request};
use ferricorn_auth::store::{SqliteStore, Store};
use ferricorn_auth::tokens::{self, Keys, Token};
use ferricorn_auth::{passwords, AuthApp, AuthUser, Settings, TokenLayer};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    settings: Settings,
    app: AuthApp,
    alice: i64,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("db.sqlite3")).unwrap());
    let alice = store
        .create_user("alice", &passwords::hash("pw"), true)
        .unwrap();
    let settings = Settings {
        signing_key: Some(KEY.into()),
        ..Settings::default()
    };
    let app = AuthApp::new(settings.clone(), store.clone()).unwrap();
    Fixture {
        _dir: dir,
        store,
        settings,
        app,
        alice,
    }
}

impl Fixture {
    fn keys(&self) -> Keys {
        Keys::new(&self.settings, KEY).unwrap()
    }

    /// A pair minted the way the obtain view mints it.
    fn tokens_for(&self, user_id: i64) -> (String, String) {
        let refresh = Token::refresh_for_user(user_id, tokens::now(), &self.settings);
        let access = refresh.access_token(&self.settings);
        let keys = self.keys();
        (
            access.encode(&keys, &self.settings),
            refresh.encode(&keys, &self.settings),
        )
    }

    fn layer(&self) -> TokenLayer {
        TokenLayer::new(self.settings.clone(), self.store.clone() as Arc<dyn Store>).unwrap()
    }

    /// What `GET /api/hello/` answers for this Authorization header.
    async fn hello(&self, authorization: Option<&str>) -> Answer {
        let mut req = http::Request::builder().uri("/api/hello/");
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let res = self.app.call(req.body(Body::empty()).unwrap()).await;
        Answer::of(res).await
    }
}

#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    async fn of<B>(res: http::Response<B>) -> Answer
    where
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (status, www_authenticate, content_type) = (
            res.status().as_u16(),
            header("www-authenticate"),
            header("content-type"),
        );
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            www_authenticate,
            content_type,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }
}

/// The protected service: answers with the `AuthUser` it was handed, and
/// counts its calls.
fn inner(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    Request,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |req: Request| {
        calls.fetch_add(1, Ordering::SeqCst);
        let user = req.extensions().get::<AuthUser>().cloned();
        async move {
            let user = user.expect("the layer hands the user to the service");
            let body = serde_json::json!({
                "id": user.id,
                "username": user.username,
                "token_type": user.claims["token_type"],
                "user_id_claim": user.claims["user_id"],
            });
            Ok::<_, Infallible>(http::Response::new(Body::from(body.to_string())))
        }
    })
}

async fn through(layer: &TokenLayer, calls: &Arc<AtomicUsize>, auth: Option<&str>) -> Answer {
    let mut req = http::Request::builder().uri("/mine");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let svc = layer.layer(inner(Arc::clone(calls)));
    let res = svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    Answer::of(res).await
}

#[tokio::test]
async fn a_valid_token_reaches_the_service_with_its_user() {
    let f = fixture();
    let calls = Arc::new(AtomicUsize::new(0));
    let (access, _) = f.tokens_for(f.alice);
    let answer = through(&f.layer(), &calls, Some(&format!("Bearer {access}"))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["id"], f.alice);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["token_type"], "access");
    // simplejwt 5.5 writes the id claim as a string.
    assert_eq!(body["user_id_claim"], f.alice.to_string());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refusals_are_hello_s_own_and_the_service_is_not_called() {
    let f = fixture();
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = f.layer();
    let (access, refresh) = f.tokens_for(f.alice);
    let (ghost, _) = f.tokens_for(9999);
    // The signature's first character: all six of its bits are real (the
    // last character's low bits are padding a decoder ignores).
    let sig_at = access.rfind('.').unwrap() + 1;
    let first = &access[sig_at..sig_at + 1];
    let tampered = format!(
        "{}{}{}",
        &access[..sig_at],
        if first == "A" { "B" } else { "A" },
        &access[sig_at + 1..]
    );
    let none_alg = {
        let parts: Vec<&str> = access.split('.').collect();
        // {"alg":"none","typ":"JWT"}
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1])
    };
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "Authentication credentials were not provided."),
        (
            Some("Token abc".into()),
            "Authentication credentials were not provided.",
        ),
        (Some("Bearer".into()), "two space-delimited values"),
        (
            Some(format!("Bearer {access} extra")),
            "two space-delimited values",
        ),
        (Some(format!("Bearer {refresh}")), "Token has wrong type"),
        (Some(format!("Bearer {tampered}")), "Token is invalid"),
        (Some(format!("Bearer {none_alg}")), "Token is invalid"),
        (Some("Bearer not.a.token".into()), "Token is invalid"),
        (Some(format!("Bearer {ghost}")), "User not found"),
    ];
    for (header, expected) in cases {
        let got = through(&layer, &calls, header.as_deref()).await;
        let oracle = f.hello(header.as_deref()).await;
        assert_eq!(got.status, 401, "{header:?}: {got:?}");
        assert!(got.body.contains(expected), "{header:?}: {}", got.body);
        assert_eq!(got.body, oracle.body, "{header:?}");
        assert_eq!(got.www_authenticate, oracle.www_authenticate, "{header:?}");
        assert_eq!(
            got.www_authenticate.as_deref(),
            Some("Bearer realm=\"api\"")
        );
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_expired_token_is_refused_as_hello_refuses_it() {
    let mut f = fixture();
    f.settings.access_token_lifetime = -10;
    let (access, _) = f.tokens_for(f.alice);
    let calls = Arc::new(AtomicUsize::new(0));
    let header = format!("Bearer {access}");
    let got = through(&f.layer(), &calls, Some(&header)).await;
    assert_eq!(got.status, 401);
    assert!(got.body.contains("Token is expired"), "{}", got.body);
    assert_eq!(got, f.hello(Some(&header)).await);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_user_deactivated_after_issue_is_refused_at_once_unless_stateless() {
    let f = fixture();
    let calls = Arc::new(AtomicUsize::new(0));
    let (access, _) = f.tokens_for(f.alice);
    let header = format!("Bearer {access}");
    let layer = f.layer();
    let stateless = TokenLayer::stateless(f.settings.clone()).unwrap();
    assert_eq!(through(&layer, &calls, Some(&header)).await.status, 200);

    f.store.set_active("alice", false).unwrap();
    let got = through(&layer, &calls, Some(&header)).await;
    assert_eq!(got.status, 401);
    assert_eq!(
        got.body,
        r#"{"detail":"User is inactive","code":"user_inactive"}"#
    );
    assert_eq!(got, f.hello(Some(&header)).await);

    // Stateless: the claims alone, no store read, so the user still passes
    // (until the token expires); the name is not in simplejwt's claims.
    let got = through(&stateless, &calls, Some(&header)).await;
    assert_eq!(got.status, 200, "{got:?}");
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["id"], f.alice);
    assert_eq!(body["username"], serde_json::Value::Null);
    // ...and still refuses what is not a valid access token.
    let (_, refresh) = f.tokens_for(f.alice);
    let got = through(&stateless, &calls, Some(&format!("Bearer {refresh}"))).await;
    assert_eq!(got.status, 401);
    assert!(got.body.contains("Token has wrong type"));
}

#[test]
fn stateless_without_a_signing_key_is_refused_naming_the_setting() {
    let err = TokenLayer::stateless(Settings::default())
        .err()
        .expect("no key, no layer")
        .to_string();
    assert!(err.contains("signing_key"), "{err}");
    assert!(err.contains("FERRICORN_AUTH_SIGNING_KEY"), "{err}");
}

#[tokio::test]
async fn poll_ready_reaches_the_inner_service() {
    let f = fixture();
    let calls = Arc::new(AtomicUsize::new(0));
    // A concurrency limit of one inside the layer: the layered service is
    // ready only while the permit is free.
    let limited = tower::limit::ConcurrencyLimitLayer::new(1).layer(inner(calls));
    let mut svc = f.layer().layer(limited);
    let mut held = svc.clone();
    std::future::poll_fn(|cx| held.poll_ready(cx))
        .await
        .unwrap();
    let waker = futures_noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(svc.poll_ready(&mut cx).is_pending());
    drop(held);
    assert!(svc.poll_ready(&mut cx).is_ready());
}

fn futures_noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_handler_takes_the_user_as_an_extractor() {
    use axum::routing::get;
    let f = fixture();
    let router: axum::Router = axum::Router::new()
        .route(
            "/me",
            get(|user: AuthUser| async move { format!("{} {:?}", user.id, user.username) })
                .route_layer(f.layer()),
        )
        .route(
            "/open",
            get(|user: AuthUser| async move { user.id.to_string() }),
        );
    let (access, _) = f.tokens_for(f.alice);
    let get_with = |path: &str, auth: Option<String>| {
        let mut b = http::Request::builder().uri(path);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    let res = router
        .clone()
        .oneshot(get_with("/me", Some(format!("Bearer {access}"))))
        .await
        .unwrap();
    let answer = Answer::of(res).await;
    assert_eq!(answer.body, format!("{} Some(\"alice\")", f.alice));
    let res = router.clone().oneshot(get_with("/me", None)).await.unwrap();
    assert_eq!(Answer::of(res).await, f.hello(None).await);
    // A route the layer does not cover fails closed.
    let res = router
        .oneshot(get_with("/open", Some(format!("Bearer {access}"))))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn stateless_rs256_verifies_with_the_public_key_alone() {
    let private = include_str!("keys/rsa_private.pem");
    let public = include_str!("keys/rsa_public.pem");
    let signer = Settings {
        algorithm: jsonwebtoken::Algorithm::RS256,
        signing_key: Some(private.into()),
        verifying_key: Some(public.into()),
        ..Settings::default()
    };
    let keys = Keys::new(&signer, private).unwrap();
    let refresh = Token::refresh_for_user(7, tokens::now(), &signer);
    let access = refresh.access_token(&signer).encode(&keys, &signer);
    // The protected service's settings: no private key anywhere.
    let verifier = Settings {
        signing_key: None,
        ..signer.clone()
    };
    let layer = TokenLayer::stateless(verifier).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let got = through(&layer, &calls, Some(&format!("Bearer {access}"))).await;
    assert_eq!(got.status, 200, "{got:?}");
    let mut forged = access.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let got = through(&layer, &calls, Some(&format!("Bearer {forged}"))).await;
    assert_eq!(got.status, 401);
    assert!(got.body.contains("Token is invalid"), "{}", got.body);
}

/// With `revoke_access_on_logout`, an access token issued before the
/// user's last log-out-everywhere is refused by the layer as by
/// `GET /api/hello/`; without it, it still passes (issue 15, item 5).
#[tokio::test]
async fn log_out_everywhere_revokes_access_through_the_layer_when_asked() {
    use ferricorn_auth::store::WriteOp;
    for revoke in [true, false] {
        let mut f = fixture();
        f.settings.revoke_access_on_logout = revoke;
        f.app = AuthApp::new(f.settings.clone(), f.store.clone()).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let (access, _) = f.tokens_for(f.alice);
        let bearer = format!("Bearer {access}");
        assert_eq!(through(&f.layer(), &calls, Some(&bearer)).await.status, 200);
        // The log-out is in the second after the token's `iat`.
        let at = tokens::now().floor() as i64 + 1;
        WriteOp::LogoutUser {
            user_id: f.alice,
            at,
        }
        .apply_to(&*f.store)
        .unwrap();
        let layered = through(&f.layer(), &calls, Some(&bearer)).await;
        let hello = f.hello(Some(&bearer)).await;
        if revoke {
            assert_eq!(layered, hello, "the layer refuses as hello does");
            assert_eq!(layered.status, 401, "{layered:?}");
            assert!(layered.body.contains("Token is blacklisted"), "{layered:?}");
            assert_eq!(calls.load(Ordering::SeqCst), 1, "the service was called");
        } else {
            assert_eq!((layered.status, hello.status), (200, 200), "{layered:?}");
        }
    }
}

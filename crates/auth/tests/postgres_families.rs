//! Refresh token families, the rotation lookup and "log out everywhere" on
//! PostgreSQL: what the SQLite store's unit tests check, on a real server
//! through the store a worker uses ([`Db`]), plus the upgrade of a
//! version-1 database and Django's schema, which has none of it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::postgres::PgCluster;
use ferricorn_auth::store::postgres::migrations;
use ferricorn_auth::store::{
    Database, Db, OutstandingToken, PgOptions, Rotation, Schema, TokenState, WriteOp,
};

/// Far enough ahead that nothing expires during a test.
const LATER: i64 = 4_000_000_000;

fn options(url: &str, schema: Schema) -> PgOptions {
    PgOptions::parse(url, 8, Duration::from_secs(15), schema).expect("a valid URL")
}

/// The store as a worker opens it (no writer thread: PostgreSQL has none).
fn open(url: &str, schema: Schema) -> Db {
    Database::Postgres(Box::new(options(url, schema)))
        .open(false)
        .expect("opening the store")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn token(jti: &str, user: Option<i64>, family: Option<&str>) -> OutstandingToken {
    OutstandingToken {
        jti: jti.into(),
        user_id: user,
        token: format!("token-{jti}"),
        created_at: 1_000,
        expires_at: LATER,
        family: family.map(Into::into),
        parent: None,
    }
}

fn revoke(family: &str) -> WriteOp {
    WriteOp::RevokeFamily {
        family: family.into(),
        user_id: Some(1),
        expires_at: LATER,
    }
}

async fn state(db: &Db, jti: &str, family: Option<&str>) -> TokenState {
    db.token_state(jti, family).await.unwrap()
}

#[test]
fn families_rotations_and_logout_on_postgresql() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();
    let rt = runtime();
    rt.block_on(async {
        assert_eq!(
            migrations::migrate(&options(&url, Schema::Ferricorn))
                .await
                .unwrap(),
            [1, 2]
        );
        migrations::check(&options(&url, Schema::Ferricorn))
            .await
            .unwrap();
        let db = Arc::new(open(&url, Schema::Ferricorn));
        let alice = db.create_user("alice", "h", true).await.unwrap();
        let bob = db.create_user("bob", "h", true).await.unwrap();

        // token_state: Live, Blacklisted, FamilyRevoked (which wins).
        for jti in ["a", "b", "c"] {
            db.write(WriteOp::AddOutstanding(token(jti, Some(alice), Some("f1"))))
                .await
                .unwrap();
        }
        db.write(WriteOp::AddOutstanding(token(
            "other",
            Some(alice),
            Some("f2"),
        )))
        .await
        .unwrap();
        assert_eq!(state(&db, "a", Some("f1")).await, TokenState::Live);
        assert_eq!(state(&db, "a", None).await, TokenState::Live);
        assert!(db
            .write(WriteOp::Blacklist(token("a", Some(alice), Some("f1"))))
            .await
            .unwrap());
        assert_eq!(state(&db, "a", Some("f1")).await, TokenState::Blacklisted);
        assert_eq!(state(&db, "a", None).await, TokenState::Blacklisted);
        assert_eq!(state(&db, "b", Some("f1")).await, TokenState::Live);

        // Concurrent revocations of one family: exactly one revokes it.
        let revocations: Vec<_> = (0..8)
            .map(|_| {
                let db = Arc::clone(&db);
                tokio::spawn(async move { db.write(revoke("f1")).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for r in revocations {
            won += usize::from(r.await.unwrap());
        }
        assert_eq!(won, 1, "one of the concurrent revocations");
        assert!(!db.write(revoke("f1")).await.unwrap(), "already revoked");
        for jti in ["a", "b", "c"] {
            assert_eq!(state(&db, jti, Some("f1")).await, TokenState::FamilyRevoked);
            assert!(db.is_blacklisted(jti).await.unwrap(), "{jti}");
        }
        assert!(!db.is_blacklisted("other").await.unwrap());
        assert_eq!(state(&db, "other", Some("f2")).await, TokenState::Live);

        // A member recorded after the revocation reads revoked, and a
        // second revocation sweeps it.
        db.write(WriteOp::AddOutstanding(token(
            "late",
            Some(alice),
            Some("f1"),
        )))
        .await
        .unwrap();
        assert!(!db.is_blacklisted("late").await.unwrap());
        assert_eq!(
            state(&db, "late", Some("f1")).await,
            TokenState::FamilyRevoked
        );
        assert!(!db.write(revoke("f1")).await.unwrap());
        assert!(db.is_blacklisted("late").await.unwrap());

        // rotated_to: the replacement that won, then spent.
        db.write(WriteOp::AddOutstanding(token("old", Some(bob), Some("f3"))))
            .await
            .unwrap();
        assert_eq!(db.rotated_to("old").await.unwrap(), None);
        let new = OutstandingToken {
            created_at: 42,
            parent: Some("old".into()),
            ..token("new", Some(bob), Some("f3"))
        };
        let rotate = |new: OutstandingToken| WriteOp::Rotate {
            spent: token("old", Some(bob), Some("f3")),
            new,
        };
        assert!(db.write(rotate(new.clone())).await.unwrap());
        let loser = OutstandingToken {
            parent: Some("old".into()),
            ..token("loser", Some(bob), Some("f3"))
        };
        assert!(!db.write(rotate(loser)).await.unwrap());
        let expected = Rotation {
            token: "token-new".into(),
            created_at: 42,
            spent: false,
        };
        assert_eq!(db.rotated_to("old").await.unwrap(), Some(expected.clone()));
        assert_eq!(
            pg.psql(
                "ferricorn",
                "SELECT family || ' ' || parent FROM ferricorn_outstanding_token WHERE jti = 'new'"
            ),
            "f3 old\n",
            "the rotation stored the replacement's family and parent"
        );
        assert!(db.write(WriteOp::Blacklist(new)).await.unwrap());
        assert_eq!(
            db.rotated_to("old").await.unwrap(),
            Some(Rotation {
                spent: true,
                ..expected
            })
        );

        // Log out everywhere: the mark only rises; only the user's
        // unexpired tokens are blacklisted.
        for (jti, expires_at) in [("b-live", 500), ("b-expired", 100)] {
            db.write(WriteOp::AddOutstanding(OutstandingToken {
                expires_at,
                ..token(jti, Some(bob), None)
            }))
            .await
            .unwrap();
        }
        db.write(WriteOp::AddOutstanding(token("a-live", Some(alice), None)))
            .await
            .unwrap();
        let valid_after = |id| {
            let db = Arc::clone(&db);
            async move { db.user_by_id(id).await.unwrap().unwrap().tokens_valid_after }
        };
        assert_eq!(valid_after(bob).await, None);
        let logout = |at| WriteOp::LogoutUser { user_id: bob, at };
        assert!(db.write(logout(200)).await.unwrap());
        assert_eq!(valid_after(bob).await, Some(200));
        assert_eq!(valid_after(alice).await, None);
        assert!(db.is_blacklisted("b-live").await.unwrap());
        assert!(!db.is_blacklisted("b-expired").await.unwrap());
        assert!(!db.is_blacklisted("a-live").await.unwrap());
        assert!(db.write(logout(150)).await.unwrap());
        assert_eq!(valid_after(bob).await, Some(200), "never lowered");
        assert!(db.write(logout(300)).await.unwrap());
        assert_eq!(valid_after(bob).await, Some(300));
        let bob_row = db.user_by_username("bob").await.unwrap().unwrap();
        assert_eq!(bob_row.tokens_valid_after, Some(300));
        let listed = db.list_users().await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|u| u.tokens_valid_after)
                .collect::<Vec<_>>(),
            [None, Some(300)]
        );
        assert!(db
            .write(WriteOp::LogoutUser {
                user_id: 999,
                at: 1
            })
            .await
            .unwrap());

        // The flush takes expired revocation records with it.
        assert!(db
            .write(WriteOp::RevokeFamily {
                family: "short".into(),
                user_id: None,
                expires_at: 100,
            })
            .await
            .unwrap());
        assert_eq!(
            state(&db, "x", Some("short")).await,
            TokenState::FamilyRevoked
        );
        db.flush_expired(100).await.unwrap();
        assert_eq!(state(&db, "x", Some("short")).await, TokenState::Live);
        assert_eq!(state(&db, "x", Some("f1")).await, TokenState::FamilyRevoked);
    });
}

#[test]
fn a_version_1_database_is_migrated_to_2_with_its_rows() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();
    let rt = runtime();
    let opts = options(&url, Schema::Ferricorn);
    assert_eq!(rt.block_on(migrations::migrate_to(&opts, 1)).unwrap(), [1]);
    let needs = rt.block_on(migrations::check(&opts)).unwrap_err();
    assert!(
        needs.contains("version 1") && needs.contains("migrate"),
        "{needs}"
    );
    pg.psql(
        "ferricorn",
        "INSERT INTO ferricorn_user (username, password, last_login) \
         VALUES ('alice', 'h', to_timestamp(7));
         INSERT INTO ferricorn_outstanding_token (token, created_at, expires_at, user_id, jti) \
         VALUES ('t', to_timestamp(1), to_timestamp(4000000000), 1, 'kept');
         INSERT INTO ferricorn_blacklisted_token (token_id, blacklisted_at) \
         SELECT id, now() FROM ferricorn_outstanding_token WHERE jti = 'kept';",
    );
    assert_eq!(rt.block_on(migrations::migrate(&opts)).unwrap(), [2]);
    assert_eq!(
        rt.block_on(migrations::migrate(&opts)).unwrap(),
        Vec::<i32>::new()
    );
    rt.block_on(migrations::check(&opts)).unwrap();
    rt.block_on(async {
        let db = open(&url, Schema::Ferricorn);
        let alice = db.user_by_username("alice").await.unwrap().unwrap();
        assert_eq!(
            (alice.id, alice.last_login, alice.tokens_valid_after),
            (1, Some(7), None)
        );
        assert_eq!(state(&db, "kept", None).await, TokenState::Blacklisted);
        assert_eq!(state(&db, "kept", Some("f")).await, TokenState::Blacklisted);
        db.write(WriteOp::AddOutstanding(OutstandingToken {
            parent: Some("kept".into()),
            ..token("child", Some(1), Some("f"))
        }))
        .await
        .unwrap();
        assert!(db.rotated_to("kept").await.unwrap().is_some());
        assert!(db.write(revoke("f")).await.unwrap());
        assert_eq!(
            state(&db, "child", Some("f")).await,
            TokenState::FamilyRevoked
        );
    });
}

/// Django's tables as its migrations make them (the columns ferricorn-auth
/// uses, and those without a database default).
const DJANGO_TABLES: &str = "
CREATE TABLE auth_user (
    id serial PRIMARY KEY,
    password varchar(128) NOT NULL,
    last_login timestamptz NULL,
    is_superuser boolean NOT NULL,
    username varchar(150) NOT NULL UNIQUE,
    first_name varchar(150) NOT NULL,
    last_name varchar(150) NOT NULL,
    email varchar(254) NOT NULL,
    is_staff boolean NOT NULL,
    is_active boolean NOT NULL,
    date_joined timestamptz NOT NULL
);
CREATE TABLE token_blacklist_outstandingtoken (
    id bigserial PRIMARY KEY,
    token text NOT NULL,
    created_at timestamptz NULL,
    expires_at timestamptz NOT NULL,
    user_id integer NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
    jti varchar(255) NOT NULL UNIQUE
);
CREATE TABLE token_blacklist_blacklistedtoken (
    id bigserial PRIMARY KEY,
    blacklisted_at timestamptz NOT NULL,
    token_id bigint NOT NULL UNIQUE
        REFERENCES token_blacklist_outstandingtoken (id) DEFERRABLE INITIALLY DEFERRED
);
";

#[test]
fn djangos_schema_has_no_families_and_is_not_altered() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.url();
    pg.psql_url(&url, DJANGO_TABLES).expect("Django's tables");
    let columns = || {
        pg.psql(
            "ferricorn",
            "SELECT table_name || '.' || column_name FROM information_schema.columns \
             WHERE table_schema = 'public' ORDER BY 1",
        )
    };
    let before = columns();
    let rt = runtime();
    let opts = options(&url, Schema::Django);
    assert_eq!(
        rt.block_on(migrations::migrate(&opts)).unwrap(),
        Vec::<i32>::new()
    );
    rt.block_on(async {
        let db = open(&url, Schema::Django);
        let alice = db.create_user("alice", "h", true).await.unwrap();
        db.write(WriteOp::AddOutstanding(token("a", Some(alice), Some("f1"))))
            .await
            .unwrap();
        let child = OutstandingToken {
            parent: Some("a".into()),
            ..token("b", Some(alice), Some("f1"))
        };
        assert!(db
            .write(WriteOp::Rotate {
                spent: token("a", Some(alice), Some("f1")),
                new: child,
            })
            .await
            .unwrap());
        // The family is ignored: the jti alone answers.
        for jti in ["a", "b", "never-seen"] {
            let blacklisted = db.is_blacklisted(jti).await.unwrap();
            let expected = if blacklisted {
                TokenState::Blacklisted
            } else {
                TokenState::Live
            };
            assert_eq!(state(&db, jti, Some("f1")).await, expected, "{jti}");
        }
        assert_eq!(state(&db, "a", Some("f1")).await, TokenState::Blacklisted);
        assert_eq!(db.rotated_to("a").await.unwrap(), None);
        // Nowhere to record a revocation: nothing revoked.
        assert!(!db.write(revoke("f1")).await.unwrap());
        assert_eq!(state(&db, "b", Some("f1")).await, TokenState::Live);
        // Log out everywhere still blacklists the user's tokens; there is
        // no mark to keep.
        assert!(db
            .write(WriteOp::LogoutUser {
                user_id: alice,
                at: 100
            })
            .await
            .unwrap());
        assert!(db.is_blacklisted("b").await.unwrap());
        let user = db.user_by_id(alice).await.unwrap().unwrap();
        assert_eq!(user.tokens_valid_after, None);
        db.flush_expired(LATER + 1).await.unwrap();
        assert!(!db.is_blacklisted("b").await.unwrap());
    });
    assert_eq!(columns(), before, "Django's tables are never altered");
}

//! Token encode and verify, as `POST /api/token/refresh/` and every
//! authenticated request run them (HS256, simplejwt's default claims).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferricorn_auth::tokens::{self, Keys, Token};
use ferricorn_auth::Settings;

const KEY: &str = "ferricorn-bench-signing-key-0123456789abcdef";

fn bench_tokens(c: &mut Criterion) {
    let settings = Settings::default();
    let keys = Keys::new(&settings, KEY).expect("HS256 keys");
    let now = tokens::now();

    c.bench_function("refresh_for_user+access_token+encode", |b| {
        b.iter(|| {
            let refresh = Token::refresh_for_user(black_box(1), now, &settings);
            let access = refresh.access_token(&settings);
            black_box((refresh.encode(&keys, &settings), access.encode(&keys, &settings)))
        })
    });

    let access = Token::refresh_for_user(1, now, &settings).access_token(&settings);
    c.bench_function("encode access", |b| {
        b.iter(|| black_box(access.encode(&keys, &settings)))
    });

    let raw = access.encode(&keys, &settings);
    let now = tokens::now() + 1.0;
    c.bench_function("decode+verify access", |b| {
        b.iter(|| {
            let payload =
                tokens::decode(black_box(raw.as_bytes()), &keys, &settings, now).expect("valid");
            tokens::verify(&payload, &settings, Some("access"), now).expect("verifies");
            black_box(payload)
        })
    });

    let mut bad = raw.clone().into_bytes();
    let last = bad.len() - 2;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    c.bench_function("decode bad signature", |b| {
        b.iter(|| black_box(tokens::decode(black_box(&bad), &keys, &settings, now).is_err()))
    });
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);

//! The smallest ferricorn application.
//!
//! ```text
//! cargo run --release --example hello -- --bind 127.0.0.1:8000
//! curl http://127.0.0.1:8000/
//! ```

use std::process::ExitCode;

use ferricorn_app_interface::{from_fn, Request};

async fn hello(_request: Request) -> &'static str {
    "Hello, World!\n"
}

fn main() -> ExitCode {
    ferricorn_server::main(|| Ok(from_fn(hello)))
}

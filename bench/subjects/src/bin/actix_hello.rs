//! actix-web's hello world, with `workers(N)` (actix workers are threads of
//! one process, each with its own single-threaded runtime).
//!
//! ```text
//! actix-hello --bind 127.0.0.1:8000 --workers 2
//! ```

use actix_web::{get, App, HttpServer, Responder};

#[get("/")]
async fn hello() -> impl Responder {
    "Hello, World!\n"
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = arg("--bind").unwrap_or_else(|| "127.0.0.1:8000".into());
    let workers: usize = arg("--workers").and_then(|w| w.parse().ok()).unwrap_or(2);
    let server = HttpServer::new(|| App::new().service(hello))
        .workers(workers)
        .bind(&bind)?;
    eprintln!("Listening at: http://{} ({})", server.addrs()[0], std::process::id());
    server.run().await
}

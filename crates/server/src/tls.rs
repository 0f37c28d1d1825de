//! TLS with rustls (no OpenSSL), configured by Gunicorn's flags:
//! `--certfile`, `--keyfile`, `--ca-certs`, `--cert-reqs`, `--ssl-version`,
//! `--ciphers`.
//!
//! TLS is served on every TCP bind; `unix:` binds stay cleartext, so one
//! server can face the network with TLS and a local proxy without it.
//!
//! The master builds the configuration once at start and at every reload
//! ([`check`]) so that a missing, unreadable or mismatched file stops the
//! start (or the reload) with a message naming the flag; each worker
//! builds its own ([`acceptor`]) when it starts. Since a reload (HUP)
//! replaces the workers, new workers read the certificate and key again:
//! new handshakes get the new certificate while the old workers finish
//! their connections with the old one.
//!
//! The handshake itself is driven by the connection (`http::serve_connection`)
//! under `--header-timeout`.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use tokio_rustls::TlsAcceptor;

use crate::config::{BindAddr, CertReqs, Config, SslVersion};

/// Whether `config` serves TLS (on its TCP binds).
pub fn enabled(config: &Config) -> bool {
    config.certfile.is_some()
}

/// The master's check of the TLS and HTTP/2 flags: contradictions, and the
/// files read and built into a configuration as a worker will. The error
/// names the flag and the fix.
pub fn check(config: &Config) -> Result<(), String> {
    let cleartext = config
        .bind
        .iter()
        .any(|b| !enabled(config) || matches!(b, BindAddr::Unix(_)));
    if config.http2c && !cleartext {
        return Err(
            "--http2c: every bind serves TLS (--certfile), where HTTP/2 is offered through ALPN; \
             drop --http2c, or add a cleartext unix: bind for the proxy in front"
                .into(),
        );
    }
    if config.http2c && !config.http_protocols.h2 {
        return Err("--http2c needs h2 in --http-protocols (e.g. --http-protocols h1,h2)".into());
    }
    if !config.http_protocols.h1 && cleartext && !config.http2c {
        return Err(
            "--http-protocols h2: a cleartext bind can serve HTTP/2 only with --http2c; \
             add --http2c, or h1 to --http-protocols"
                .into(),
        );
    }
    acceptor(config).map(|_| ())
}

/// The acceptor of a worker's TLS binds; `None` without `--certfile`.
pub(crate) fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, String> {
    server_config(config).map(|c| c.map(TlsAcceptor::from))
}

fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, String> {
    let Some(certfile) = &config.certfile else {
        if let Some(keyfile) = &config.keyfile {
            return Err(format!(
                "--keyfile {}: given without --certfile; give the certificate chain with --certfile",
                keyfile.display()
            ));
        }
        if config.cert_reqs != CertReqs::None || config.ca_certs.is_some() {
            return Err(
                "--cert-reqs/--ca-certs: client certificates need TLS; give --certfile and --keyfile"
                    .into(),
            );
        }
        return Ok(None);
    };
    let certs = read_certs("--certfile", certfile)?;
    // Gunicorn (Python's load_cert_chain) reads the key from the
    // certificate file when --keyfile is not given.
    let (key_flag, key_path) = match &config.keyfile {
        Some(k) => ("--keyfile", k.as_path()),
        None => ("--certfile (no --keyfile)", certfile.as_path()),
    };
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        format!(
            "{key_flag} {}: no readable private key ({e}); give the PEM private key \
             (-----BEGIN PRIVATE KEY-----) of the certificate",
            key_path.display()
        )
    })?;
    let provider = Arc::new(provider(config.ciphers.as_deref(), config.ssl_version)?);
    let versions: &[&rustls::SupportedProtocolVersion] = match config.ssl_version {
        SslVersion::Tls => &[&rustls::version::TLS13, &rustls::version::TLS12],
        SslVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("--ssl-version/--ciphers: {e}"))?;
    let builder = match (config.cert_reqs, &config.ca_certs) {
        (CertReqs::None, _) => builder.with_no_client_auth(),
        (reqs, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("--ca-certs", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("--ca-certs {}: {e}", ca.display()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if reqs == CertReqs::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("--ca-certs {}: {e}", ca.display()))?,
            )
        }
        (reqs, None) => {
            return Err(format!(
                "--cert-reqs {}: checking client certificates needs the CAs that sign them; \
                 give --ca-certs FILE (PEM)",
                reqs.as_number()
            ))
        }
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => {
                "the private key does not belong to the certificate".to_string()
            }
            other => other.to_string(),
        };
        format!(
            "--certfile {} / {key_flag} {}: {why}; give the certificate and its own key",
            certfile.display(),
            key_path.display()
        )
    })?;
    let p = config.http_protocols;
    server.alpn_protocols = [(p.h2, &b"h2"[..]), (p.h1, &b"http/1.1"[..])]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_vec())
        .collect();
    Ok(Some(Arc::new(server)))
}

/// The certificates of a PEM file; the error names `flag`.
fn read_certs(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    // Read first, for an error that says what is wrong with the file.
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "{flag} {}: cannot read it: {}",
            path.display(),
            io_reason(&e)
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {}: not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {}: no certificate in it; give PEM certificates (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (the master reads it as its user)".into()
        }
        _ => e.to_string(),
    }
}

/// ring's provider, with the cipher suites `--ciphers` names (IANA or
/// OpenSSL names, colon- or comma-separated), in the order given.
fn provider(ciphers: Option<&str>, version: SslVersion) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    let Some(list) = ciphers else {
        return Ok(provider);
    };
    let all = provider.cipher_suites.clone();
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for name in list
        .split([':', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let suite = all
            .iter()
            .find(|s| suite_names(s).iter().any(|n| n.eq_ignore_ascii_case(name)))
            .ok_or_else(|| {
                format!(
                    "--ciphers: {name:?} is not a cipher suite rustls offers; choose among {}",
                    all.iter()
                        .map(|s| suite_names(s)[1])
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        if !chosen.contains(suite) {
            chosen.push(*suite);
        }
    }
    let tls13 = chosen.iter().any(|s| s.tls13().is_some());
    if chosen.is_empty() || (version == SslVersion::Tls13 && !tls13) {
        return Err(
            "--ciphers: no TLS 1.3 suite left for --ssl-version TLSv1_3; add e.g. TLS_AES_128_GCM_SHA256"
                .into(),
        );
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// A suite's names: rustls's (IANA's with `TLS13_` for 1.3), the OpenSSL
/// one, and IANA's own.
fn suite_names(suite: &SupportedCipherSuite) -> [&'static str; 3] {
    let rustls_name = suite.suite().as_str().unwrap_or("");
    let (openssl, iana) = match rustls_name {
        "TLS13_AES_256_GCM_SHA384" => ("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
        "TLS13_AES_128_GCM_SHA256" => ("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
        "TLS13_CHACHA20_POLY1305_SHA256" => (
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_CHACHA20_POLY1305_SHA256",
        ),
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => ("ECDHE-ECDSA-AES256-GCM-SHA384", rustls_name),
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => ("ECDHE-ECDSA-AES128-GCM-SHA256", rustls_name),
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            ("ECDHE-ECDSA-CHACHA20-POLY1305", rustls_name)
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => ("ECDHE-RSA-AES256-GCM-SHA384", rustls_name),
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => ("ECDHE-RSA-AES128-GCM-SHA256", rustls_name),
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            ("ECDHE-RSA-CHACHA20-POLY1305", rustls_name)
        }
        other => (other, other),
    };
    [rustls_name, openssl, iana]
}

/// What the application learns of a TLS connection.
pub(crate) fn info(conn: &ServerConnection) -> ferricorn_app_interface::TlsInfo {
    ferricorn_app_interface::TlsInfo {
        version: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .replace('_', "."),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        client_subject: conn
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, cert)| cert.subject().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_names_in_both_spellings() {
        let p = provider(
            Some("ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384"),
            SslVersion::Tls,
        )
        .unwrap();
        assert_eq!(p.cipher_suites.len(), 2);
        let e = provider(Some("RC4-MD5"), SslVersion::Tls).unwrap_err();
        assert!(e.contains("--ciphers") && e.contains("RC4-MD5"), "{e}");
        let e = provider(Some("ECDHE-RSA-AES128-GCM-SHA256"), SslVersion::Tls13).unwrap_err();
        assert!(e.contains("TLS 1.3"), "{e}");
    }

    #[test]
    fn missing_files_name_the_flag() {
        let mut config = Config::default();
        config.certfile = Some("/nonexistent/cert.pem".into());
        let e = check(&config).unwrap_err();
        assert!(
            e.contains("--certfile /nonexistent/cert.pem") && e.contains("no such file"),
            "{e}"
        );
        config.certfile = None;
        config.keyfile = Some("/k.pem".into());
        assert!(check(&config).unwrap_err().contains("--keyfile"));
        config.keyfile = None;
        config.http2c = true;
        assert!(check(&config).is_ok());
    }
}

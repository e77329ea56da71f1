//! TLS for TCP connections (`-Z`), with rustls and memcached's option names:
//! `-o ssl_chain_cert=FILE,ssl_key=FILE[,ssl_ca_cert=FILE][,ssl_verify_mode=N]
//! [,ssl_min_version=tlsv1.2|tlsv1.3]`. `refresh_certs` re-reads the files.
//!
//! [`TlsStream`] makes a rustls connection over a non-blocking socket look
//! like the socket itself to `Conn` (`read`/`write` with `WouldBlock`), plus
//! two things a plain socket does not have: encrypted output still waiting
//! for the socket, and decrypted input the worker must take before it waits
//! for the next readiness event (the socket may have nothing more to say).

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, RwLock};

pub use crate::tls_settings::{TlsSettings, VerifyMode};

/// Builds a rustls server configuration from the files `settings` names.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.chain_cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .with_context(|| format!("reading ssl_chain_cert {}", settings.chain_cert.display()))?;
    if chain.is_empty() {
        bail!(
            "ssl_chain_cert {} holds no certificate",
            settings.chain_cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key)
        .with_context(|| format!("reading ssl_key {}", settings.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.min_tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .context("TLS protocol versions")?;
    let builder = match (&settings.ca_cert, settings.verify) {
        (Some(ca), mode) if mode != VerifyMode::None => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading ssl_ca_cert {}", ca.display()))?
            {
                roots
                    .add(c.with_context(|| format!("reading ssl_ca_cert {}", ca.display()))?)
                    .context("ssl_ca_cert")?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if mode == VerifyMode::Request {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().context("ssl_ca_cert")?)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .context("ssl_chain_cert and ssl_key do not make a usable certificate")?;
    Ok(Arc::new(config))
}

/// The server's TLS state: settings and the current configuration, which
/// `refresh_certs` replaces for new connections.
pub struct TlsContext {
    settings: TlsSettings,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsContext {
    pub fn new(settings: TlsSettings) -> Result<TlsContext> {
        let config = server_config(&settings)?;
        Ok(TlsContext {
            settings,
            config: RwLock::new(config),
        })
    }

    /// `refresh_certs`: re-reads the files; on error the old ones stay.
    pub fn refresh(&self) -> Result<()> {
        let config = server_config(&self.settings)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// A TLS server session over an accepted socket.
    pub fn accept(&self, sock: TcpStream) -> io::Result<TlsStream> {
        let config = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream { sock, conn })
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }
}

/// One TLS connection over a non-blocking TCP socket.
pub struct TlsStream {
    pub sock: TcpStream,
    conn: ServerConnection,
}

impl TlsStream {
    /// Writes encrypted output (handshake, alerts, replies) until the socket
    /// would block.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Encrypted output still waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Decrypted input not yet read: the worker reads it before waiting for
    /// the socket again.
    pub fn plaintext_pending(&mut self) -> usize {
        self.conn
            .process_new_packets()
            .map(|s| s.plaintext_bytes_to_read())
            .unwrap_or(0)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                // Ok(0) is the peer's close_notify: end of stream.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let handshaking = self.conn.is_handshaking();
                    let state = self.conn.process_new_packets();
                    // Handshake messages, or the alert for a bad peer.
                    let flushed = self.flush_tls();
                    if let Err(e) = state {
                        if handshaking {
                            crate::counters::bump(&crate::counters::SSL_HANDSHAKE_ERRORS, 1);
                        }
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    flushed?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_tls()?;
        // rustls takes plaintext up to its buffer limit, also before the
        // handshake is done; what the socket cannot take waits in rustls.
        let n = self.conn.writer().write(buf)?;
        self.flush_tls()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}

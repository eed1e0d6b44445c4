//! Throwaway PostgreSQL: `initdb` in a temporary directory, `pg_ctl start`
//! on a free loopback port with the server's unix socket in that
//! directory too, trust authentication for the `postgres` role, and no
//! fsync (nothing here outlives the run).
//!
//! Two ways to get one:
//!
//! - [`shared_database`]: a fresh database (`CREATE DATABASE`, a fraction
//!   of a second) on the server every test process of the machine's runs
//!   shares. nextest runs each test in a process of its own, so "one
//!   server per test binary" would still be one `initdb` (about a second)
//!   per test; instead the first process to need the server makes it,
//!   under a lock file, in `$TMPDIR/flexbridge-testbed-<uid>/`, and each
//!   process that uses it registers its pid there. A small watcher process
//!   started with the server stops it and removes its directory once no
//!   registered process has been alive for [`IDLE_SECONDS`]. The database
//!   is dropped when its guard is.
//! - [`Postgres::start`]: a server of the caller's own (a test that stops
//!   and restarts it), stopped and removed when dropped — and by the same
//!   watcher if the process dies first.
//!
//! **Running as root.** `initdb` and `postgres` refuse to run as root. When
//! the process is root (a CI container), the server's tools run as the
//! unprivileged user `nobody` (looked up in `/etc/passwd`), which owns the
//! server's directory; everything else (`psql`, the clients) runs as is.
//!
//! **Where the binaries are.** `FLEXBRIDGE_PG_BIN` if set, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package,
//! which `scripts/setup` installs), else `initdb` on the `PATH`.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long the shared server outlives its last user, in seconds.
pub const IDLE_SECONDS: u32 = 15;

/// The role every URL here connects as.
const ROLE: &str = "postgres";

/// A running throwaway server.
#[derive(Debug)]
pub struct Postgres {
    root: PathBuf,
    port: u16,
    tools: Tools,
    /// A server of its own: stopped and removed on drop.
    owned: bool,
}

/// Where the server's programs are, and as whom they run.
#[derive(Debug, Clone)]
struct Tools {
    bin: PathBuf,
    /// `(uid, gid)` to run the server's tools as (root runs them as `nobody`).
    run_as: Option<(u32, u32)>,
}

impl Tools {
    fn find() -> io::Result<Self> {
        Ok(Self {
            bin: bin_dir()?,
            run_as: run_as()?,
        })
    }

    /// One of the server's own tools (`initdb`, `pg_ctl`), as the server's user.
    fn server(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin.join(tool));
        if let Some((uid, gid)) = self.run_as {
            // From a directory the server's user can enter.
            command.uid(uid).gid(gid).current_dir("/");
        }
        command.stdin(Stdio::null());
        command
    }

    /// A client tool (`psql`, `pg_isready`), as this process.
    fn client(&self, tool: &str) -> Command {
        let mut command = Command::new(self.bin.join(tool));
        command.stdin(Stdio::null());
        command
    }

    /// Gives `path` to the server's user (when it is not this process's).
    fn hand_over(&self, path: &Path) -> io::Result<()> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }
}

/// The directory of `initdb`, `pg_ctl` and `psql`.
fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLEXBRIDGE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let debian = Path::new("/usr/lib/postgresql");
    if let Ok(entries) = fs::read_dir(debian) {
        let newest = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let version: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .max_by_key(|(version, _)| *version);
        if let Some((_, bin)) = newest {
            return Ok(bin);
        }
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|dir| dir.join("initdb").exists()));
    on_path.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "PostgreSQL's initdb was not found (looked in FLEXBRIDGE_PG_BIN, \
             /usr/lib/postgresql/*/bin and the PATH): run scripts/setup, which installs \
             Debian's postgresql package",
        )
    })
}

/// `nobody`'s ids when this process is root (the server may not run as root).
fn run_as() -> io::Result<Option<(u32, u32)>> {
    if fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"nobody"))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            io::Error::other(
                "running as root, and initdb refuses root: no `nobody` user in /etc/passwd to \
                 run the server as",
            )
        })
}

/// Runs `command`, failing with its output when it fails.
fn run(mut command: Command, what: &str) -> io::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| io::Error::new(error.kind(), format!("{what}: {error}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Postgres {
    /// A new server of the caller's own, in a new temporary directory;
    /// stopped and removed when dropped.
    pub fn start() -> io::Result<Self> {
        let tools = Tools::find()?;
        let root = std::env::temp_dir().join(format!(
            "flexbridge-pg-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(root.join("users"))?;
        register(&root)?;
        let server = Self::init(root, tools, true)?;
        watch(&server.root, 1)?;
        Ok(server)
    }

    /// Makes and starts a server in `root` (which exists).
    fn init(root: PathBuf, tools: Tools, owned: bool) -> io::Result<Self> {
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        tools.hand_over(&root)?;
        let data = root.join("data");
        let mut initdb = tools.server("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", ROLE, "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"]);
        run(initdb, "initdb")?;
        let mut server = Self {
            root,
            port: 0,
            tools,
            owned,
        };
        // A port free a moment ago may be taken by the time the server
        // binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("the server did not start")))
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server (role `postgres`, no password,
    /// no TLS).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{ROLE}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Stops the server (a clean, fast shutdown: connections are cut); it
    /// keeps its data and port for [`Postgres::start_again`].
    pub fn stop(&self) -> io::Result<()> {
        let mut pg_ctl = self.tools.server("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "fast", "-w", "-t", "30", "stop"]);
        run(pg_ctl, "pg_ctl stop").map(|_| ())
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&self) -> io::Result<()> {
        let socket = self.root.join("socket");
        fs::create_dir_all(&socket)?;
        self.tools.hand_over(&socket)?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=500",
            self.port,
            socket.display()
        );
        let mut pg_ctl = self.tools.server("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.root.join("data"))
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = pg_ctl.status()?;
        if status.success() {
            Ok(())
        } else {
            let log = fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            Err(io::Error::other(format!(
                "pg_ctl start failed ({status}); the server's log says:\n{log}"
            )))
        }
    }

    /// Whether the server answers.
    pub fn is_ready(&self) -> bool {
        let mut ready = self.tools.client("pg_isready");
        ready
            .args(["-q", "-h", "127.0.0.1", "-t", "2", "-p"])
            .arg(self.port.to_string());
        ready.stdout(Stdio::null()).stderr(Stdio::null());
        ready.status().is_ok_and(|status| status.success())
    }

    /// Runs `sql` on the `postgres` database.
    pub fn execute(&self, sql: &str) -> io::Result<String> {
        let mut psql = self.tools.client("psql");
        psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", ROLE, "-d", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-c", sql]);
        run(psql, "psql")
    }

    /// Creates a database named `name` (letters, digits, `_`); its URL.
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "a plain database name"
        );
        self.execute(&format!("CREATE DATABASE {name}"))?;
        Ok(self.url(name))
    }

    /// Drops database `name`, cutting its connections.
    pub fn drop_database(&self, name: &str) -> io::Result<()> {
        self.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .map(|_| ())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let mut pg_ctl = self.tools.server("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = pg_ctl.status();
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Records this process as a user of the server in `root`.
fn register(root: &Path) -> io::Result<()> {
    File::create(root.join("users").join(std::process::id().to_string()))?;
    Ok(())
}

/// The watcher: a shell loop, in a process group of its own (so it
/// outlives the test process that starts it), that stops the server in
/// `root` once none of the pids under `root/users` has been alive for
/// `idle` seconds, then removes `root`'s server files. It holds `root/lock`
/// while it decides, as [`shared`] does while it registers.
fn watch(root: &Path, idle: u32) -> io::Result<()> {
    const SCRIPT: &str = r#"
root=$1; idle_limit=$2; idle=0
echo $$ > "$root/watcher"
while sleep 1; do
  [ -d "$root/data" ] || exit 0
  exec 9>>"$root/lock"
  flock 9
  alive=0
  for user in "$root"/users/*; do
    [ -e "$user" ] || continue
    if kill -0 "${user##*/}" 2>/dev/null; then alive=1; else rm -f "$user"; fi
  done
  if [ "$alive" = 1 ]; then idle=0; else idle=$((idle + 1)); fi
  if [ "$idle" -ge "$idle_limit" ]; then
    pid=$(head -n 1 "$root/data/postmaster.pid" 2>/dev/null)
    if [ -n "$pid" ]; then
      kill -INT "$pid" 2>/dev/null
      n=0
      while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
      kill -KILL "$pid" 2>/dev/null
    fi
    rm -rf "$root/data" "$root/socket" "$root/port" "$root/server.log" "$root/watcher"
    exit 0
  fi
  exec 9>&-
done
"#;
    Command::new("sh")
        .args(["-c", SCRIPT, "watcher"])
        .arg(root)
        .arg(idle.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    Ok(())
}

/// Whether the process `pid` (from a file in `root`) is alive.
fn alive(root: &Path, file: &str) -> bool {
    fs::read_to_string(root.join(file))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// The server every test process shares (see the module doc): found, or
/// made, on first use in this process.
pub fn shared() -> io::Result<&'static Postgres> {
    static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| find_or_make_shared().map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| io::Error::other(format!("the shared test PostgreSQL: {error}")))
}

fn find_or_make_shared() -> io::Result<Postgres> {
    let tools = Tools::find()?;
    let uid = fs::metadata("/proc/self")?.uid();
    let version = tools
        .bin
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "pg".into(), |name| name.to_string_lossy().into_owned());
    let root = std::env::temp_dir()
        .join(format!("flexbridge-testbed-{uid}"))
        .join(format!("postgres-{version}"));
    fs::create_dir_all(root.join("users"))?;
    let lock = File::options()
        .create(true)
        .append(true)
        .open(root.join("lock"))?;
    lock.lock()?;
    register(&root)?;
    let port: Option<u16> = fs::read_to_string(root.join("port"))
        .ok()
        .and_then(|port| port.trim().parse().ok());
    let running = port.map(|port| Postgres {
        root: root.clone(),
        port,
        tools: tools.clone(),
        owned: false,
    });
    let server = match running {
        Some(server) if server.is_ready() && alive(&root, "watcher") => server,
        _ => {
            // None yet, or a dead one's leftovers (a reboot, a killed watcher).
            if let Some(old) = port.map(|port| Postgres {
                root: root.clone(),
                port,
                tools: tools.clone(),
                owned: false,
            }) {
                let _ = old.stop();
            }
            for leftover in ["data", "socket"] {
                let _ = fs::remove_dir_all(root.join(leftover));
            }
            let server = Postgres::init(root.clone(), tools, false)?;
            let mut port_file = File::create(root.join("port"))?;
            writeln!(port_file, "{}", server.port)?;
            watch(&root, IDLE_SECONDS)?;
            // The watcher writes its pid at once; wait for it so that the
            // next process does not take it for dead.
            for _ in 0..50 {
                if alive(&root, "watcher") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            server
        }
    };
    lock.unlock()?;
    Ok(server)
}

/// A database of the test's own on the shared server, dropped with this
/// guard.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server: &'static Postgres,
}

impl TestDatabase {
    /// Its URL (`postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server it is on.
    pub fn server(&self) -> &'static Postgres {
        self.server
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = self.server.drop_database(&self.name);
    }
}

/// A fresh, empty database on the shared server (see the module doc).
pub fn shared_database() -> io::Result<TestDatabase> {
    let server = shared()?;
    let name = format!("test_{}_{:08x}", std::process::id(), rand::random::<u32>());
    let url = server.create_database(&name)?;
    Ok(TestDatabase { name, url, server })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_database_is_fresh_and_reachable_and_dropped_with_its_guard() {
        let first = shared_database().expect("a database");
        let second = shared_database().expect("another database");
        assert_ne!(first.name(), second.name());
        let server = first.server();
        let listed = |name: &str| {
            server
                .execute(&format!(
                    "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
                ))
                .expect("psql")
                .trim()
                .to_owned()
        };
        assert_eq!(listed(first.name()), "1");
        let name = second.name().to_owned();
        drop(second);
        assert_eq!(listed(&name), "0", "dropped with its guard");
    }

    #[test]
    fn an_own_server_stops_and_starts_again_on_its_port_and_is_gone_when_dropped() {
        let server = Postgres::start().expect("a server");
        let root = server.root.clone();
        assert!(server.is_ready());
        server
            .execute("CREATE TABLE kept (n int)")
            .expect("created");
        server.stop().expect("stopped");
        assert!(!server.is_ready());
        server.start_again().expect("started again");
        assert!(server.is_ready());
        assert_eq!(
            server
                .execute("SELECT count(*) FROM kept")
                .expect("still there")
                .trim(),
            "0"
        );
        drop(server);
        assert!(!root.exists());
    }
}

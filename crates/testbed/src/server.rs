//! What the Redis and nginx servers share: a process that lives only as
//! long as its owner, a directory of its own, free ports, and finding the
//! programs.
//!
//! A server runs under a small `sh` guard whose standard input is a pipe
//! from this process: when the pipe closes (the owner dropped it, or this
//! process died, even by SIGKILL), the guard stops the server. So no test
//! leaves a server running behind it.

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to listen.
const STARTUP: Duration = Duration::from_secs(20);

/// The guard: runs `"$@"`, stops it (TERM, then KILL after 5 s) once
/// standard input closes, and ends when it has.
const GUARD: &str = r#"
"$@" </dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM
read _ignored
kill -TERM $pid 2>/dev/null
n=0
while kill -0 $pid 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"#;

/// A server process under its guard; stopped when dropped.
#[derive(Debug)]
pub(crate) struct Guarded {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guarded {
    /// Starts `program args` (its output to `log`) and waits until it
    /// listens on 127.0.0.1:`port`.
    pub(crate) fn start(
        program: &Path,
        args: &[String],
        log: &Path,
        port: u16,
    ) -> io::Result<Self> {
        let out = fs::File::create(log)?;
        let mut child = Command::new("sh")
            .args(["-c", GUARD, "guard"])
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|error| io::Error::new(error.kind(), format!("starting sh: {error}")))?;
        let stdin = child.stdin.take();
        let mut server = Self { child, stdin };
        let deadline = Instant::now() + STARTUP;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                let said = fs::read_to_string(log).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "{} exited ({status}) before listening on port {port}: {said}",
                    program.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} did not listen on port {port} within {STARTUP:?}",
                    program.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and waits until it has.
    pub(crate) fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A new, empty directory for one server (removed by its owner).
pub(crate) fn temp_dir(kind: &str) -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "flexbridge-{kind}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `program`: from the environment variable `env` if set, else the
/// `PATH`, else one of `fallbacks` (Debian puts nginx in /usr/sbin, which
/// a user's `PATH` may lack).
pub(crate) fn find_program(
    program: &str,
    env: &str,
    fallbacks: &[&str],
    package: &str,
) -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    });
    on_path
        .or_else(|| {
            fallbacks
                .iter()
                .map(PathBuf::from)
                .find(|path| path.is_file())
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{program} was not found (looked in {env}, the PATH and {}): run \
                     scripts/setup, which installs Debian's {package} package",
                    fallbacks.join(", ")
                ),
            )
        })
}

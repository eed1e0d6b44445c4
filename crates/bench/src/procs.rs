//! The processes a run starts (emulator, bridge, floor): spawned on port 0,
//! found by the "`NAME listening on http://HOST:PORT`" line they print on
//! stdout (docs/architecture.md §2), measured through `/proc` (resident
//! memory, CPU time), and killed when dropped. Their stderr goes to a log
//! file under the output directory, for when something fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a process may take to announce itself.
const STARTUP: Duration = Duration::from_secs(30);

/// How long [`Process::stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A running child process and the URL it announced.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub url: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

/// Finds `http://…` after "listening on" in one stdout line.
pub fn announced_url(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once(" listening on ")?;
    let url = rest.split_whitespace().next()?;
    url.starts_with("http://").then_some(url)
}

impl Process {
    /// Starts `program args` with `envs`, waits for its "listening on" line.
    pub async fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Process> {
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let log = log_dir.join(format!("{name}.log"));
        let stderr =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("BENCH_CHILD_LOG").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(STARTUP, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = announced_url(&line) {
                    return anyhow::Ok(url.to_owned());
                }
            }
            bail!(
                "{name} exited before announcing its URL (see {})",
                log.display()
            )
        })
        .await
        .with_context(|| format!("{name} did not announce its URL within {STARTUP:?}"))??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        tracing::info!(%name, %url, pid, "started");
        Ok(Process {
            name: name.to_owned(),
            url,
            pid,
            log,
            child,
        })
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// User + system CPU time consumed so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_time(&format!("/proc/{}/stat", self.pid))
    }

    /// File descriptors open now (`/proc/<pid>/fd`).
    pub fn open_files(&self) -> anyhow::Result<u64> {
        let dir = format!("/proc/{}/fd", self.pid);
        let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))?;
        Ok(entries.count() as u64)
    }

    /// Its soft open-files limit (`/proc/<pid>/limits`).
    pub fn nofile_limit(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/limits", self.pid);
        let limits = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_nofile_limit(&limits).with_context(|| format!("no open-files limit in {path}"))
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`STOP_GRACE`]
    /// (a server under a profiler writes its profile as it exits); reap.
    pub async fn stop(mut self) {
        let asked = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !asked
            || tokio::time::timeout(STOP_GRACE, self.child.wait())
                .await
                .is_err()
        {
            let _ = self.child.start_kill();
        }
        let _ = self.child.wait().await;
    }
}

/// The soft limit of the `Max open files` row of a `/proc/…/limits` file.
fn parse_nofile_limit(limits: &str) -> Option<u64> {
    let row = limits.lines().find(|l| l.starts_with("Max open files"))?;
    row["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `VmRSS` of `/proc/{pid}/status`, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// CPU time of this very process (the load generator).
pub fn own_cpu() -> anyhow::Result<Duration> {
    cpu_time("/proc/self/stat")
}

/// utime + stime of a `/proc/…/stat` file.
fn cpu_time(path: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_ticks(&stat).with_context(|| format!("parsing {path}"))?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// Fields 14 and 15 (utime, stime) counted after the `(comm)` field, which may hold spaces.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK` (100 on Linux in practice), read once.
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The 1-minute load average (`/proc/loadavg`), to print with every result.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    Some(parts.join(" "))
}

/// Raises the soft open-files limit to the hard one (children inherit it);
/// returns the new soft limit.
pub fn raise_nofile_limit() -> anyhow::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_read_from_the_announcement_line() {
        assert_eq!(
            announced_url("flexbridge listening on http://127.0.0.1:4100"),
            Some("http://127.0.0.1:4100")
        );
        assert_eq!(
            announced_url("floor listening on http://127.0.0.1:1 (pid 3)"),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(announced_url("account AC… listening later"), None);
        assert_eq!(announced_url("x listening on ftp://h"), None);
    }

    #[test]
    fn vm_rss_and_cpu_ticks_are_parsed_from_proc() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmPeak:\t 10 kB\nVmRSS:\t   5120 kB\n"),
            Some(5120)
        );
        let stat = "42 (a name) with) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0";
        assert_eq!(parse_stat_ticks(stat), Some(280));
    }

    #[test]
    fn the_soft_open_files_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63720                63720                processes \n\
                      Max open files            20000                65536                files     \n";
        assert_eq!(parse_nofile_limit(limits), Some(20000));
        assert_eq!(parse_nofile_limit("Max processes 1 1"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_and_cpu_time() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(own_cpu().is_ok());
    }
}

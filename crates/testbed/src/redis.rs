//! Throwaway Redis: `redis-server --port N --save '' --appendonly no` on a
//! free loopback port, its working directory a temporary one, nothing
//! persisted, stopped (and the directory removed) when dropped. It can be
//! stopped and started again on the same port ([`Redis::stop`],
//! [`Redis::start_again`]), as a restarted Redis would be; its data is
//! gone then, as Redis without persistence loses it.
//!
//! **Where the binary is.** `FLEXBRIDGE_REDIS_SERVER` if set, else
//! `redis-server` on the `PATH` (Debian's `redis-server` package, which
//! `scripts/setup` installs).

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::server::{Guarded, find_program, free_port, temp_dir};

/// A running throwaway Redis.
#[derive(Debug)]
pub struct Redis {
    dir: PathBuf,
    program: PathBuf,
    port: u16,
    server: Option<Guarded>,
}

impl Redis {
    /// Starts a new server on a free loopback port.
    pub fn start() -> io::Result<Self> {
        let program = find_program(
            "redis-server",
            "FLEXBRIDGE_REDIS_SERVER",
            &["/usr/bin/redis-server"],
            "redis-server",
        )?;
        let dir = temp_dir("redis")?;
        let mut redis = Self {
            dir,
            program,
            port: 0,
            server: None,
        };
        // A port free a moment ago may be taken when the server binds it.
        let mut last = None;
        for _ in 0..3 {
            redis.port = free_port()?;
            match redis.start_again() {
                Ok(()) => return Ok(redis),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its connections are cut, its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }

    /// Starts the (stopped) server again on the same port.
    pub fn start_again(&mut self) -> io::Result<()> {
        self.stop();
        let args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            &self.dir.display().to_string(),
            "--logfile",
            "",
        ]
        .map(String::from)
        .to_vec();
        let log = self.dir.join("redis.log");
        self.server = Some(Guarded::start(&self.program, &args, &log, self.port)?);
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    use super::*;

    /// Sends one inline command and reads the reply line.
    fn command(port: u16, line: &str) -> io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        stream.write_all(format!("{line}\r\n").as_bytes())?;
        let mut reply = [0u8; 256];
        let read = stream.read(&mut reply)?;
        Ok(String::from_utf8_lossy(&reply[..read]).into_owned())
    }

    #[test]
    fn a_server_answers_forgets_on_restart_and_is_gone_when_dropped() {
        let mut redis = Redis::start().expect("a server");
        let port = redis.port();
        assert_eq!(command(port, "SET k v").expect("set"), "+OK\r\n");
        assert_eq!(command(port, "GET k").expect("get"), "$1\r\nv\r\n");
        redis.stop();
        assert!(command(port, "PING").is_err(), "stopped");
        redis.start_again().expect("started again");
        assert_eq!(
            command(port, "GET k").expect("get"),
            "$-1\r\n",
            "nothing kept"
        );
        let dir = redis.dir.clone();
        drop(redis);
        assert!(command(port, "PING").is_err(), "stopped when dropped");
        assert!(!dir.exists());
    }
}

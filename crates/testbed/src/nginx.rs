//! Throwaway nginx: a load balancer in front of N servers on loopback,
//! made from a generated configuration in a temporary directory (its
//! prefix: pid file, logs, temporary files), on a free loopback port,
//! stopped (and the directory removed) when dropped.
//!
//! The configuration ([`config`]) is what a deployment needs: round-robin
//! over the upstreams, websocket upgrade passed through (`Upgrade` and
//! `Connection` headers, HTTP/1.1 to the upstreams, long read timeouts for
//! idle websockets), the original `Host` kept, and a request whose
//! upstream refuses the connection tried on the next one. It runs in the
//! foreground as one process (`daemon off; master_process off`), so it
//! needs no user switch when the tests run as root.
//!
//! **Where the binary is.** `FLEXBRIDGE_NGINX` if set, else `nginx` on the
//! `PATH`, else `/usr/sbin/nginx` (Debian's `nginx` package, which
//! `scripts/setup` installs).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::server::{Guarded, find_program, free_port, temp_dir};

/// A running throwaway nginx.
#[derive(Debug)]
pub struct Nginx {
    dir: PathBuf,
    port: u16,
    server: Option<Guarded>,
}

impl Nginx {
    /// Starts nginx on a free loopback port, balancing round-robin over
    /// `upstreams` (`host:port` each).
    pub fn start(upstreams: &[String]) -> io::Result<Self> {
        assert!(!upstreams.is_empty(), "nginx needs an upstream");
        let program = find_program("nginx", "FLEXBRIDGE_NGINX", &["/usr/sbin/nginx"], "nginx")?;
        let dir = temp_dir("nginx")?;
        let mut nginx = Self {
            dir,
            port: 0,
            server: None,
        };
        let mut last = None;
        for _ in 0..3 {
            nginx.port = free_port()?;
            match nginx.run(&program, upstreams) {
                Ok(()) => return Ok(nginx),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("nginx did not start")))
    }

    fn run(&mut self, program: &Path, upstreams: &[String]) -> io::Result<()> {
        let conf = self.dir.join("nginx.conf");
        fs::write(&conf, config(&self.dir, self.port, upstreams))?;
        let args = vec![
            "-p".to_owned(),
            format!("{}/", self.dir.display()),
            "-c".to_owned(),
            conf.display().to_string(),
            "-e".to_owned(),
            self.dir.join("error.log").display().to_string(),
        ];
        let log = self.dir.join("nginx.out");
        self.server = Some(Guarded::start(program, &args, &log, self.port)?);
        Ok(())
    }

    /// The balancer's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What nginx logged (errors: an upstream that refused, …).
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The configuration: nginx on 127.0.0.1:`port`, everything under `dir`,
/// round-robin over `upstreams`.
pub fn config(dir: &Path, port: u16, upstreams: &[String]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        // A refused connection marks the server down for a second only,
        // so a restarted bridge gets traffic again at once.
        .map(|upstream| format!("        server {upstream} max_fails=1 fail_timeout=1s;\n"))
        .collect();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    # A websocket upgrade is passed on; a plain request closes nothing.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    upstream bridges {{
{servers}        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://bridges;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # Idle websockets: Socket.IO pings every 25 s.
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
            proxy_connect_timeout 2s;
            # An upstream that refuses (stopped, restarting): the next one.
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    use super::*;

    /// A tiny HTTP server answering every request with `name`.
    fn upstream(name: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address").to_string();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        addr
    }

    fn get(port: u16) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("nginx answers");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .expect("sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
            .rsplit("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn requests_go_round_robin_and_skip_an_upstream_that_refuses() {
        // A port nothing listens on: a stopped bridge.
        let dead = format!("127.0.0.1:{}", free_port().expect("a port"));
        let nginx = Nginx::start(&[upstream("a"), upstream("b"), dead]).expect("nginx starts");
        let answers: Vec<String> = (0..6).map(|_| get(nginx.port())).collect();
        assert!(answers.iter().all(|a| a == "a" || a == "b"), "{answers:?}");
        assert!(answers.iter().any(|a| a == "a"), "{answers:?}");
        assert!(answers.iter().any(|a| a == "b"), "{answers:?}");
        let port = nginx.port();
        drop(nginx);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
    }
}

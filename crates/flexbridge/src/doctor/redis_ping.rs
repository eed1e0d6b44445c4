//! `PING` to the Redis server of `REDIS_URL`, for `doctor` only: one TCP
//! connection, `AUTH` first when the URL has a password, in Redis's wire
//! protocol (RESP: each command an array of bulk strings; the answer a
//! line starting `+` for a status, `-` for an error). The bridge's own
//! Redis client is the Socket.IO adapter's; this needs none.

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// The default port of `redis://`.
const DEFAULT_PORT: u16 = 6379;

/// Connects to `url` (`redis://[user:password@]host[:port][/db]`),
/// authenticates if it says so, and sends `PING`: `Ok` on `+PONG`, else
/// what went wrong in words.
pub async fn ping(url: &url::Url) -> Result<(), String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port().unwrap_or(DEFAULT_PORT);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    if let Some(password) = url.password() {
        let password = decode(password);
        let user = decode(url.username());
        let auth = if user.is_empty() {
            command(&["AUTH", &password])
        } else {
            command(&["AUTH", &user, &password])
        };
        let answer = exchange(&mut read, &mut write, &auth).await?;
        if answer != "+OK" {
            return Err(format!(
                "AUTH was refused: {}",
                answer.trim_start_matches('-')
            ));
        }
    }
    let answer = exchange(&mut read, &mut write, &command(&["PING"])).await?;
    match answer.as_str() {
        "+PONG" => Ok(()),
        other if other.starts_with('-') => Err(format!("PING was refused: {}", &other[1..])),
        other => Err(format!(
            "PING answered {other:?}, not +PONG: is this a Redis server?"
        )),
    }
}

/// A command as RESP: an array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends `request` and reads the answer's first line (without `\r\n`).
async fn exchange(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    request: &[u8],
) -> Result<String, String> {
    write
        .write_all(request)
        .await
        .map_err(|e| format!("sending to Redis: {e}"))?;
    let mut line = String::new();
    let read_bytes = read
        .read_line(&mut line)
        .await
        .map_err(|e| format!("reading Redis's answer: {e}"))?;
    if read_bytes == 0 {
        return Err("Redis closed the connection without answering".into());
    }
    Ok(line.trim_end().to_owned())
}

/// A URL's user or password, percent-decoded.
fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            command(&["AUTH", "p@ss"]),
            b"*2\r\n$4\r\nAUTH\r\n$4\r\np@ss\r\n"
        );
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(decode("p%40ss%2F1"), "p@ss/1");
        assert_eq!(decode("plain"), "plain");
        assert_eq!(decode("100%"), "100%");
    }
}

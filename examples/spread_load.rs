//! The load driver of `bench/run` scenario 4: like `wrk` with one fixed request, but its
//! connections come from several loopback source addresses (127.0.0.2, 127.0.0.3, …, round
//! robin), so a server's per-client cap (jars' API: 16 requests in progress per address) is
//! not what it measures. `wrk` cannot choose its source address.
//!
//! `spread_load HOST:PORT PATH BODY CONNECTIONS SECONDS SOURCES [AUTHORIZATION]`
//!
//! Each connection sends the same form POST, waits for the whole answer, and sends the next,
//! on keep-alive. It prints what `bench/run` reads from `wrk --latency`: the 50% and 99%
//! latencies, "N requests in", "Non-2xx or 3xx responses: N" and "Requests/sec: R".

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What one connection saw: each answer's latency (µs), and how many were not 2xx.
#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    not_2xx: u64,
}

fn usage() -> ! {
    eprintln!("usage: spread_load HOST:PORT PATH BODY CONNECTIONS SECONDS SOURCES [AUTHORIZATION]");
    std::process::exit(64)
}

#[tokio::main(worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        usage();
    }
    let target: SocketAddr = args[0].parse().unwrap_or_else(|_| usage());
    let (path, body) = (&args[1], &args[2]);
    let conns: usize = args[3].parse().unwrap_or_else(|_| usage());
    let secs: u64 = args[4].parse().unwrap_or_else(|_| usage());
    let sources: u8 = args[5].parse().unwrap_or_else(|_| usage());
    let authorization = args
        .get(6)
        .filter(|a| !a.is_empty())
        .map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {target}\r\n{authorization}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        // 127.0.0.2 onwards: one address in `sources`, round robin.
        let source = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            2 + (c % sources.max(1) as usize) as u8,
        ));
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            drive(target, source, &request, deadline).await
        }));
    }
    let mut all = Tally::default();
    let mut failed = 0;
    for task in tasks {
        match task.await.expect("a connection task panicked") {
            Ok(t) => {
                all.latencies.extend(t.latencies);
                all.not_2xx += t.not_2xx;
            }
            Err(e) => {
                failed += 1;
                eprintln!("spread_load: a connection failed: {e}");
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let at = |q: f64| {
        let n = all.latencies.len();
        if n == 0 {
            return 0;
        }
        all.latencies[((n as f64 * q) as usize).min(n - 1)]
    };
    let n = all.latencies.len();
    println!("  Latency Distribution");
    println!("     50%  {}us", at(0.50));
    println!("     99%  {}us", at(0.99));
    println!("  {n} requests in {elapsed:.2}s");
    if failed > 0 {
        println!("  Socket errors: connect {failed}, read 0, write 0, timeout 0");
    }
    if all.not_2xx > 0 {
        println!("  Non-2xx or 3xx responses: {}", all.not_2xx);
    }
    println!("Requests/sec: {:.2}", n as f64 / elapsed);
}

/// One connection from `source`: requests back to back until `deadline`.
async fn drive(
    target: SocketAddr,
    source: IpAddr,
    request: &[u8],
    deadline: Instant,
) -> std::io::Result<Tally> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(4096);
    while Instant::now() < deadline {
        let sent = Instant::now();
        stream.write_all(request).await?;
        let status = read_response(&mut stream, &mut buf).await?;
        tally
            .latencies
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if !(200..300).contains(&status) {
            tally.not_2xx += 1;
        }
    }
    Ok(tally)
}

/// Reads one response (headers and a `Content-Length` body) and returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed mid-response"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("head not UTF-8"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed mid-body"));
        }
        have += n;
    }
    Ok(status)
}

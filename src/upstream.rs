//! Reading what other services answer (the issuer's key set, MyRadio, Icecast's admin API):
//! every body is read chunk by chunk up to a limit, whatever its framing (`Content-Length`,
//! chunked, or until the connection closes), so a hostile or broken upstream cannot make jars
//! hold more than the limit ([`read_limited`], [`LimitedBody`]).
//!
//! # Security
//! `Content-Length` alone bounds nothing: a chunked answer has none, and one that lies is cut
//! by hyper only once it is read. Issue 28 measured a chunked answer read to 4.7 GB in 3 s.
//! Beyond the limit the response is dropped, which closes the connection (an unfinished
//! body is never pooled).

use bytes::Bytes;

/// Why an upstream's body could not be read. Display is fit for logs: never the URL (it may
/// carry an API key).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body is longer than the limit (said so by `Content-Length`, or found so while
    /// reading).
    #[error("answer longer than {0} bytes")]
    TooLarge(usize),
    /// The connection failed or timed out while the body was read.
    #[error("reading the answer failed: {0}")]
    Transport(reqwest::Error),
}

impl ReadError {
    /// The transport error, if that is what this is.
    pub fn transport(&self) -> Option<&reqwest::Error> {
        match self {
            ReadError::Transport(e) => Some(e),
            ReadError::TooLarge(_) => None,
        }
    }
}

/// A response body read chunk by chunk, at most `limit` bytes in all: for callers that
/// process an answer as it arrives (a streamed listing) rather than whole.
pub struct LimitedBody {
    response: reqwest::Response,
    limit: usize,
    read: usize,
}

impl LimitedBody {
    /// `response`'s body, to be read up to `limit` bytes; refused at once when its
    /// `Content-Length` says it is longer.
    pub fn new(response: reqwest::Response, limit: usize) -> Result<LimitedBody, ReadError> {
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(ReadError::TooLarge(limit));
        }
        Ok(LimitedBody {
            response,
            limit,
            read: 0,
        })
    }

    /// The next chunk (`None` at the end), or [`ReadError::TooLarge`] as soon as the chunks
    /// read add up to more than the limit.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        let Some(chunk) = self
            .response
            .chunk()
            .await
            .map_err(|e| ReadError::Transport(e.without_url()))?
        else {
            return Ok(None);
        };
        self.read = self.read.saturating_add(chunk.len());
        if self.read > self.limit {
            return Err(ReadError::TooLarge(self.limit));
        }
        Ok(Some(chunk))
    }
}

/// The whole body of `response`, or [`ReadError::TooLarge`] once more than `limit` bytes
/// arrived (or `Content-Length` announced them): no more than `limit` bytes (plus one chunk)
/// are ever held.
pub async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    // Room for what `Content-Length` announces (within the limit), else for a small answer.
    let announced = response.content_length().unwrap_or(0).min(limit as u64) as usize;
    let mut body = LimitedBody::new(response, limit)?;
    let mut bytes = Vec::with_capacity(announced.min(64 * 1024));
    while let Some(chunk) = body.chunk().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// [`read_limited`] as text; bytes that are not UTF-8 become U+FFFD.
pub async fn read_limited_text(
    response: reqwest::Response,
    limit: usize,
) -> Result<String, ReadError> {
    let bytes = read_limited(response, limit).await?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on 127.0.0.1 that answers one request with `head` and then, until the
    /// client goes away or `cap` bytes are written, 64 KiB chunks of `x` (chunked encoding
    /// when `chunked`). Returns its URL and the count of body bytes written.
    async fn hostile(chunked: bool, cap: u64) -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let written = Arc::new(AtomicU64::new(0));
        let count = written.clone();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let framing = if chunked {
                "Transfer-Encoding: chunked"
            } else {
                "Connection: close"
            };
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{framing}\r\n\r\n");
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let data = vec![b'x'; 64 * 1024];
            let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
            frame.extend_from_slice(&data);
            frame.extend_from_slice(b"\r\n");
            let frame = if chunked { frame } else { data };
            while count.load(Ordering::Relaxed) < cap {
                if socket.write_all(&frame).await.is_err() {
                    return;
                }
                count.fetch_add(64 * 1024, Ordering::Relaxed);
            }
        });
        (url, written)
    }

    const LIMIT: usize = 1 << 20;
    /// The most the hostile server may get written before it notices the client left: the
    /// limit, plus what the two sockets' buffers hold.
    const SLACK: u64 = 16 << 20;

    #[tokio::test]
    async fn a_chunked_answer_is_cut_at_the_limit_whatever_it_would_send() {
        for chunked in [true, false] {
            let (url, written) = hostile(chunked, 1 << 30).await;
            let resp = reqwest::get(&url).await.unwrap();
            assert_eq!(resp.content_length(), None);
            let err = read_limited(resp, LIMIT).await.unwrap_err();
            assert!(matches!(err, ReadError::TooLarge(LIMIT)), "{err}");
            // The server stops once jars has closed the connection.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let sent = written.load(Ordering::Relaxed);
            assert!(
                sent < LIMIT as u64 + SLACK,
                "chunked {chunked}: {sent} bytes sent"
            );
        }
    }

    #[tokio::test]
    async fn an_answer_within_the_limit_is_read_whole() {
        let (url, _) = hostile(true, 3 * 64 * 1024).await;
        // The server ends the body by closing without the last chunk: a transport error, not
        // a size error.
        let resp = reqwest::get(&url).await.unwrap();
        match read_limited(resp, LIMIT).await {
            Err(ReadError::Transport(_)) => {}
            other => panic!("{other:?}"),
        }
        let (url, _) = hostile(false, 3 * 64 * 1024).await;
        let resp = reqwest::get(&url).await.unwrap();
        let body = read_limited_text(resp, LIMIT).await.unwrap();
        assert_eq!(body.len(), 3 * 64 * 1024);
        assert!(body.bytes().all(|b| b == b'x'));
    }

    #[tokio::test]
    async fn a_content_length_over_the_limit_is_refused_before_reading() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\nxx")
                .await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        let resp = reqwest::get(&url).await.unwrap();
        let started = std::time::Instant::now();
        let err = read_limited(resp, LIMIT).await.unwrap_err();
        assert!(matches!(err, ReadError::TooLarge(_)), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}

//! A small keep-alive HTTP/1.1 client on a blocking socket: a request is one `write`, a response
//! is parsed in place (httparse), so the load generator costs the shared cores little next to the
//! server it measures.

use std::io::{self, Read, Write};
use std::net::TcpStream;

pub struct Connection {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    request: Vec<u8>,
}

/// What a response carried that the benchmark looks at.
pub struct Reply {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of a cookie this response set (not one it cleared).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies
            .iter()
            .filter_map(|v| v.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .find(|v| !v.is_empty())
    }
}

impl Connection {
    /// A connection to `addr` (`127.0.0.1:port`), opened on first use and again after the
    /// server closed it.
    pub fn new(addr: &str) -> Connection {
        Connection {
            addr: addr.to_owned(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            request: Vec::with_capacity(1024),
        }
    }

    pub fn get(&mut self, path: &str, cookie: Option<&str>) -> io::Result<Reply> {
        self.send("GET", path, cookie, None, None)
    }

    pub fn post_json(&mut self, path: &str, body: &str) -> io::Result<Reply> {
        self.send("POST", path, None, Some(body), None)
    }

    /// An API request with a bearer token and no body.
    pub fn bearer(&mut self, method: &str, path: &str, token: &str) -> io::Result<Reply> {
        self.send(method, path, None, None, Some(token))
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        json: Option<&str>,
        bearer: Option<&str>,
    ) -> io::Result<Reply> {
        self.request.clear();
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: doorman-bench\r\n",
            self.addr
        )?;
        if let Some(cookie) = cookie {
            write!(self.request, "Cookie: {cookie}\r\n")?;
        }
        if let Some(token) = bearer {
            write!(self.request, "Authorization: Bearer {token}\r\n")?;
        }
        if let Some(body) = json {
            write!(
                self.request,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
        } else {
            self.request.extend_from_slice(b"\r\n");
        }
        let result = self.exchange();
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange(&mut self) -> io::Result<Reply> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr)?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(&self.request)?;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = response
                .parse(&self.buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let status = response.code.unwrap_or_default();
                let mut length = 0;
                let mut set_cookies = Vec::new();
                for h in response.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .ok_or_else(|| io::Error::other("bad content-length"))?;
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(io::Error::other("chunked responses are not expected"));
                    } else if h.name.eq_ignore_ascii_case("set-cookie") {
                        set_cookies.push(String::from_utf8_lossy(h.value).into_owned());
                    }
                }
                while self.buf.len() < head + length {
                    self.fill()?;
                }
                let body = self.buf[head..head + length].to_vec();
                self.buf.drain(..head + length);
                return Ok(Reply {
                    status,
                    set_cookies,
                    body,
                });
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let stream = self.stream.as_mut().expect("connected");
        let start = self.buf.len();
        self.buf.resize(start + 16 * 1024, 0);
        let read = stream.read(&mut self.buf[start..]);
        self.buf.truncate(start + *read.as_ref().unwrap_or(&0));
        match read? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

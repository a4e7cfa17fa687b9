//! The API's socket: bound when the process starts, listening only once the ingress is
//! ready.
//!
//! Binding first makes a port in use fail the start at once. Listening late matters on
//! every restart: startup can take seconds (the broker's metadata, the replies group's
//! first assignment), and a socket that listened through it would let partners' requests
//! sit unanswered in the kernel's accept queue all that time. A socket that is bound but
//! not listening refuses them at once, so a client or a load balancer tries another
//! ingress and the partner's retry goes through.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel queues for the accept loop once listening; the same as
/// `TcpListener::bind`'s.
const BACKLOG: u32 = 1024;

pub enum ApiSocket {
    /// Bound, not yet listening: [`ApiSocket::bind`].
    Bound(TcpSocket),
    /// Already listening (a test's port-0 listener): used as it is.
    Listening(TcpListener),
}

impl ApiSocket {
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind` does: a restarted ingress takes its port back at once,
        // even with the old process's connections still in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        Ok(ApiSocket::Bound(socket))
    }

    /// Starts accepting connections.
    pub fn listen(self) -> io::Result<TcpListener> {
        match self {
            ApiSocket::Bound(socket) => socket.listen(BACKLOG),
            ApiSocket::Listening(listener) => Ok(listener),
        }
    }
}

impl From<TcpListener> for ApiSocket {
    fn from(listener: TcpListener) -> Self {
        ApiSocket::Listening(listener)
    }
}

//! Opening the TCP socket under every transport, optionally from a chosen
//! local address.
//!
//! Binding before connecting lets one agent spread its connections over
//! several source addresses. Linux allows one connection per local port for
//! each source/destination address pair. A single source address therefore
//! caps an agent at the size of the ephemeral port range per server address.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use crate::error::BotError;

/// Connects to `host:port`, from `source` when given, with Nagle's
/// algorithm off because stanzas are small and latency is what bots measure.
pub async fn open_tcp(
    host: &str,
    port: u16,
    source: Option<IpAddr>,
) -> Result<TcpStream, BotError> {
    let refused = |err: std::io::Error| {
        if err.kind() == std::io::ErrorKind::ConnectionRefused {
            BotError::Refused {
                addr: format!("{host}:{port}"),
            }
        } else {
            BotError::Io(err)
        }
    };

    let stream = match source {
        None => TcpStream::connect((host, port)).await.map_err(refused)?,
        Some(source) => {
            let target = resolve(host, port, source).await?;
            let socket = match target {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            defer_port_choice(&socket);
            socket.bind(SocketAddr::new(source, 0))?;
            socket.connect(target).await.map_err(refused)?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// First address of `host` in the family of `source`.
async fn resolve(host: &str, port: u16, source: IpAddr) -> Result<SocketAddr, BotError> {
    let mut addresses = tokio::net::lookup_host((host, port)).await?;
    addresses
        .find(|address| address.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| {
            BotError::Io(std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                format!("{host} has no address in the family of source address {source}"),
            ))
        })
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`, so that the kernel picks the local port
/// at connect time for the full address pair. Without it, `bind` to port 0
/// reserves a port for the source address alone, and all destinations
/// together share one port range. A failure only loses that gain, so it is
/// ignored.
fn defer_port_choice(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let enable: libc::c_int = 1;
        // SAFETY: the descriptor is open for the lifetime of `socket`, and
        // setsockopt reads `size_of::<c_int>()` bytes from `enable`.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&enable as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

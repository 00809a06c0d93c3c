//! Where a replica listens, as the cluster file writes it: an IP socket address
//! (`10.0.0.1:7100`, `[::1]:7100`) or a host name and port (`r0:7100`,
//! `replica-0.example.net:7100`) resolved when a member starts, so a cluster file can
//! name containers, Swarm services or DNS names. A replica named by host listens on the
//! unspecified address of its resolved family at its port (a name may resolve to an
//! address the host does not own, e.g. behind NAT or a virtual IP).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

/// A replica's address in the cluster file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ReplicaAddress {
    /// An IP address and port, used as is.
    Ip(SocketAddr),
    /// A host name (RFC 1123 labels) and port, resolved at start.
    Host {
        /// The host name.
        name: String,
        /// The UDP port.
        port: u16,
    },
}

impl ReplicaAddress {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            ReplicaAddress::Ip(addr) => addr.port(),
            ReplicaAddress::Host { port, .. } => *port,
        }
    }

    /// One resolution attempt: the address itself, or the host name's first address
    /// (IPv4 preferred) from the system resolver.
    pub fn resolve_once(&self) -> Result<SocketAddr> {
        match self {
            ReplicaAddress::Ip(addr) => Ok(*addr),
            ReplicaAddress::Host { name, port } => {
                let all: Vec<SocketAddr> = (name.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| anyhow!("cannot resolve {name}: {e}"))?
                    .collect();
                all.iter()
                    .find(|a| a.is_ipv4())
                    .or(all.first())
                    .copied()
                    .ok_or_else(|| anyhow!("{name} resolves to no address"))
            }
        }
    }

    /// Where a replica with this address binds, given what it resolved to: an IP
    /// address as is; for a host name the unspecified address of the resolved family
    /// at the port.
    pub fn listen_address(&self, resolved: SocketAddr) -> SocketAddr {
        match self {
            ReplicaAddress::Ip(addr) => *addr,
            ReplicaAddress::Host { port, .. } => {
                let ip = if resolved.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                };
                SocketAddr::new(ip, *port)
            }
        }
    }
}

/// Resolves every address, retrying names that do not resolve yet (a container or
/// service that is still starting) every 200 ms until `wait` has passed; the error
/// names the first address still unresolved.
pub fn resolve_all(addresses: &[ReplicaAddress], wait: Duration) -> Result<Vec<SocketAddr>> {
    let deadline = Instant::now() + wait;
    let mut resolved: Vec<Option<SocketAddr>> = vec![None; addresses.len()];
    let mut warned = false;
    loop {
        let mut last_error = None;
        for (slot, address) in resolved.iter_mut().zip(addresses) {
            if slot.is_none() {
                match address.resolve_once() {
                    Ok(addr) => *slot = Some(addr),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        let Some(error) = last_error else {
            return Ok(resolved.into_iter().flatten().collect());
        };
        if Instant::now() >= deadline {
            return Err(error.context(format!("gave up after {:?}", wait)));
        }
        if !warned {
            tracing::warn!(%error, "waiting for replica host names to resolve");
            warned = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `name` is a host name: dot-separated labels of 1 to 63 letters, digits and
/// hyphens, not starting or ending with a hyphen, 253 characters at most, and not all
/// digits (so a mistyped IPv4 address is not taken for a name).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.chars().all(|c| c.is_ascii_digit() || c == '.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl FromStr for ReplicaAddress {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ReplicaAddress::Ip(addr));
        }
        let Some((name, port)) = s.rsplit_once(':') else {
            bail!("`{s}` is not host:port or ip:port");
        };
        let port: u16 = port
            .parse()
            .map_err(|_| anyhow!("`{s}`: the port `{port}` is not a number 0..=65535"))?;
        if !is_host_name(name) {
            bail!("`{s}`: `{name}` is neither an IP address nor a host name");
        }
        Ok(ReplicaAddress::Host {
            name: name.to_ascii_lowercase(),
            port,
        })
    }
}

impl TryFrom<String> for ReplicaAddress {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ReplicaAddress> for String {
    fn from(a: ReplicaAddress) -> String {
        a.to_string()
    }
}

impl From<SocketAddr> for ReplicaAddress {
    fn from(a: SocketAddr) -> ReplicaAddress {
        ReplicaAddress::Ip(a)
    }
}

impl fmt::Display for ReplicaAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaAddress::Ip(addr) => write!(f, "{addr}"),
            ReplicaAddress::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_and_host_names_parse_and_print_back() {
        for s in [
            "10.0.0.1:7100",
            "[::1]:7100",
            "r0:7100",
            "replica-0.example.net:9",
        ] {
            let a: ReplicaAddress = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        assert!(matches!(
            "r3:7000".parse().unwrap(),
            ReplicaAddress::Host { port: 7000, .. }
        ));
        for bad in [
            "r0",
            "r0:",
            "r0:70000",
            "-r0:1",
            "r_0:1",
            "a..b:1",
            "10.0.0:1",
            "256.1.1.1:1",
            ":7",
        ] {
            let err = bad.parse::<ReplicaAddress>();
            assert!(err.is_err(), "{bad} parsed as {err:?}");
        }
    }

    #[test]
    fn names_resolve_and_listen_on_the_unspecified_address() {
        let a: ReplicaAddress = "localhost:7100".parse().unwrap();
        let resolved = a.resolve_once().unwrap();
        assert!(
            resolved.ip().is_loopback() && resolved.port() == 7100,
            "{resolved}"
        );
        assert_eq!(a.listen_address(resolved).to_string(), "0.0.0.0:7100");
        let ip: ReplicaAddress = "127.0.0.5:1".parse().unwrap();
        assert_eq!(
            ip.listen_address(ip.resolve_once().unwrap()).to_string(),
            "127.0.0.5:1"
        );
        let missing: ReplicaAddress = "no-such-host.invalid:1".parse().unwrap();
        let err = resolve_all(&[ip, missing], Duration::from_millis(300)).unwrap_err();
        assert!(
            format!("{err:#}").contains("no-such-host.invalid"),
            "{err:#}"
        );
    }
}

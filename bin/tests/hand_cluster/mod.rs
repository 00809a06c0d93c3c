//! What the end-to-end tests that start replica processes by hand share: free
//! loopback addresses for `keygen --addresses`, and the replica processes, killed
//! when the test ends (passed or failed).

use std::net::UdpSocket;
use std::process::Child;

/// `n` loopback UDP addresses free at the time of the call (`127.0.0.1:port`).
pub fn free_addresses(n: usize) -> Vec<String> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect()
}

/// Replica processes, killed on drop.
pub struct Replicas(pub Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! Free TCP ports for servers started later by port number (the project's autoscaler's metrics,
//! Karpenter's metrics and health probe): the kernel's pick of a free port, never one already
//! handed out in this process. The kernel may offer a port again as soon as the probe closes it,
//! so without the ledger two environments starting side by side (`e2e run --jobs N`) could both
//! get a port the first has not bound yet.

use std::collections::BTreeSet;
use std::net::{IpAddr, TcpListener};
use std::sync::{Mutex, PoisonError};

static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How many kernel picks to try before giving up (each one already handed out is retried).
const TRIES: usize = 200;

/// A port free on `host` now (`0.0.0.0`: on every interface) that this process never handed out
/// before. Ports are not given back: a run takes three a scenario from tens of thousands.
pub fn reserve(host: IpAddr) -> std::io::Result<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..TRIES {
        let port = TcpListener::bind((host, 0))?.local_addr()?.port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port on {host} not handed out before in {TRIES} tries"),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice_and_are_free() {
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let ports: Vec<u16> = (0..300).map(|_| reserve(host).unwrap()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        // Free when handed out: the last one binds.
        TcpListener::bind((host, *ports.last().unwrap())).unwrap();
    }
}

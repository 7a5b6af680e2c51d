//! Who is at the other end of a connection: the peer address, or, behind proxies
//! the operator trusts (`TRIAGE_TRUSTED_PROXIES`), the client `X-Forwarded-For` names.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// Proxies whose `X-Forwarded-For` is believed: addresses and CIDR blocks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Reads `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32` entries; empty ones are skipped.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut blocks = Vec::new();
        for entry in entries.iter().map(|entry| entry.trim()).filter(|entry| !entry.is_empty()) {
            let invalid =
                || anyhow::anyhow!("TRIAGE_TRUSTED_PROXIES: {entry:?} is not an address or CIDR block");
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits.parse::<u8>().map_err(|_| invalid())?)),
                None => (entry, None),
            };
            let address: IpAddr = address.parse().map_err(|_| invalid())?;
            let width = if address.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(width);
            anyhow::ensure!(bits <= width, invalid());
            blocks.push((address, bits));
        }
        Ok(Self(blocks))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|(block, bits)| in_block(address, *block, *bits))
    }

    /// The client of a request from `peer`: the nearest address in `X-Forwarded-For`
    /// that is not a trusted proxy, when `peer` is one; `peer` otherwise.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .collect();
        forwarded
            .iter()
            .rev()
            .copied()
            .find(|hop| !self.trusts(*hop))
            .or(forwarded.first().copied())
            .unwrap_or(peer)
    }
}

/// An IPv4 address the way it came, even when the socket reports it IPv4-mapped.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn in_block(address: IpAddr, block: IpAddr, bits: u8) -> bool {
    match (address, block) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().expect("a header value"));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).expect("valid");
        assert_eq!(proxies.client(ip("203.0.113.9"), &headers("198.51.100.1")), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "127.0.0.1".to_owned()]).expect("valid");
        let forwarded = headers("1.2.3.4, 198.51.100.1, 10.1.2.3");
        assert_eq!(proxies.client(ip("127.0.0.1"), &forwarded), ip("198.51.100.1"));
        assert_eq!(proxies.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".to_owned()]).is_err());
    }
}

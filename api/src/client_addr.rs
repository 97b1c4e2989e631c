//! The client's address, the one thing everything that keys on "who is calling" uses:
//! the per-client rate limit, the USSD allow-list, the access log and the audit log.
//!
//! Behind a load balancer the TCP peer is the balancer. Its `X-Forwarded-For` is believed
//! only when the peer is one of `trusted_proxies`: the client is then the right-most
//! address of that header that is not itself a trusted proxy (each proxy appends the
//! address it saw, so everything left of the first untrusted hop may be made up by the
//! client). A request straight from a client — any peer not in the list — is the peer,
//! whatever headers it sent, so a client cannot choose its own address.

use std::net::IpAddr;

use actix_web::HttpMessage;
use actix_web::http::header::HeaderMap;

use crate::config::{in_network, parse_networks};

/// The parsed `trusted_proxies` setting.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        parse_networks("trusted_proxies", entries).map(Self)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|&(net, len)| in_network(addr, net, len))
    }
}

/// The client's address of a request, set by the request middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// An IPv4 client seen on an IPv6 socket is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or
/// `1.2.3.4:5678` (some proxies add ports).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    entry
        .rsplit_once(':')
        .and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse::<std::net::Ipv4Addr>().ok()))
        .map(IpAddr::V4)
}

/// The client address of a request from `peer` with `headers` (see the module).
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let mut client = peer;
    // Several X-Forwarded-For lines are one list, in order.
    let hops: Vec<&str> =
        headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        // Garbage ends the walk: the last address vouched for by a trusted hop stands.
        let Some(ip) = parse_hop(hop).map(canonical) else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// The client address the middleware worked out for this request (the peer when the
/// middleware did not run, as in unit tests).
pub fn of(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    req.extensions().get::<ClientAddr>().map(|c| c.0).or_else(|| req.peer_addr().map(|a| canonical(a.ip())))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_direct_client_is_its_peer_whatever_it_claims() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(resolve(Some(ip("198.51.100.7")), &h, &trusted), Some(ip("198.51.100.7")));
        let none = TrustedProxies::default();
        assert_eq!(resolve(Some(ip("10.0.0.5")), &h, &none), Some(ip("10.0.0.5")), "nothing trusted by default");
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        // The client sent a made-up X-Forwarded-For; nginx appended the real address.
        let h = headers(&["1.1.1.1, 198.51.100.7"]);
        assert_eq!(resolve(Some(ip("10.0.0.5")), &h, &trusted), Some(ip("198.51.100.7")));
        // Two proxies: the edge's address is skipped, and several header lines are one list.
        let h = headers(&["1.1.1.1", "198.51.100.7, 10.0.0.9"]);
        assert_eq!(resolve(Some(ip("127.0.0.1")), &h, &trusted), Some(ip("198.51.100.7")));
        // IPv4-mapped peers, ports and brackets.
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(resolve(Some(ip("::ffff:10.0.0.5")), &h, &trusted), Some(ip("2001:db8::1")));
        let h = headers(&["198.51.100.7:5555"]);
        assert_eq!(resolve(Some(ip("10.0.0.5")), &h, &trusted), Some(ip("198.51.100.7")));
        // No header: the proxy itself; garbage: the last vouched-for hop.
        assert_eq!(resolve(Some(ip("10.0.0.5")), &HeaderMap::new(), &trusted), Some(ip("10.0.0.5")));
        let h = headers(&["198.51.100.7, nonsense, 10.0.0.9"]);
        assert_eq!(resolve(Some(ip("10.0.0.5")), &h, &trusted), Some(ip("10.0.0.9")));
        assert!(TrustedProxies::parse(&["nginx".into()]).is_err());
    }
}

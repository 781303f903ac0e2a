//! Zones, the VPC's subnets (with real IPv4 allocation), security groups and AMIs.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::config::{ImageConfig, SecurityGroupConfig, SubnetConfig, parse_cidr};

/// What a state file keeps of a [`Subnet`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SubnetState {
    pub id: String,
    tags: BTreeMap<String, String>,
    next: u32,
    used: std::collections::BTreeSet<u32>,
}

#[derive(Debug, Clone)]
pub struct Subnet {
    pub cfg: SubnetConfig,
    pub zone_id: String,
    pub tags: BTreeMap<String, String>,
    base: u32,
    size: u32,
    /// Next host offset to try; addresses AWS reserves (first four and the last) are skipped.
    next: u32,
    used: std::collections::BTreeSet<u32>,
    limit: u32,
}

impl Subnet {
    pub fn new(cfg: SubnetConfig, zone_id: String) -> Self {
        let (ip, bits) = parse_cidr(&cfg.cidr).unwrap_or((Ipv4Addr::new(10, 0, 0, 0), 24));
        let size = 1u32.checked_shl(32 - u32::from(bits)).unwrap_or(u32::MAX);
        let base = u32::from(ip) & !(size.wrapping_sub(1));
        let usable = size.saturating_sub(5);
        let limit = cfg.free_ips.map_or(usable, |f| f.min(usable));
        Self { tags: cfg.tags.clone(), cfg, zone_id, base, size, next: 4, used: Default::default(), limit }
    }

    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    pub fn available_ips(&self) -> u32 {
        self.limit.saturating_sub(self.used.len() as u32)
    }

    pub fn allocate_ip(&mut self) -> Option<Ipv4Addr> {
        if self.available_ips() == 0 {
            return None;
        }
        let span = self.size.saturating_sub(5).max(1);
        for _ in 0..span {
            let off = self.next;
            self.next = if self.next + 1 >= self.size - 1 { 4 } else { self.next + 1 };
            if self.used.insert(off) {
                return Some(Ipv4Addr::from(self.base + off));
            }
        }
        None
    }

    /// Tags and address allocation, for a state file.
    pub fn snapshot(&self) -> SubnetState {
        SubnetState { id: self.cfg.id.clone(), tags: self.tags.clone(), next: self.next, used: self.used.clone() }
    }

    pub fn restore(&mut self, s: SubnetState) {
        self.tags = s.tags;
        self.next = s.next;
        self.used = s.used;
    }

    pub fn release_ip(&mut self, ip: Ipv4Addr) {
        let off = u32::from(ip).wrapping_sub(self.base);
        self.used.remove(&off);
    }
}

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub cfg: SecurityGroupConfig,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub cfg: ImageConfig,
    pub tags: BTreeMap<String, String>,
}

/// `ip-10-0-1-23.us-west-2.compute.internal`, as EC2 names private DNS in a region.
pub fn private_dns_name(ip: Ipv4Addr, region: &str) -> String {
    let o = ip.octets();
    if region == "us-east-1" {
        format!("ip-{}-{}-{}-{}.ec2.internal", o[0], o[1], o[2], o[3])
    } else {
        format!("ip-{}-{}-{}-{}.{region}.compute.internal", o[0], o[1], o[2], o[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(cidr: &str, free: Option<u32>) -> Subnet {
        Subnet::new(
            SubnetConfig {
                id: "subnet-1".into(),
                zone: "z".into(),
                cidr: cidr.into(),
                free_ips: free,
                tags: Default::default(),
            },
            "z1".into(),
        )
    }

    #[test]
    fn allocates_unique_addresses_within_the_cidr_and_limit() {
        let mut s = subnet("10.0.1.0/28", None);
        assert_eq!(s.available_ips(), 11);
        let ips: Vec<_> = std::iter::from_fn(|| s.allocate_ip()).collect();
        assert_eq!(ips.len(), 11);
        assert_eq!(ips[0], Ipv4Addr::new(10, 0, 1, 4));
        assert!(ips.iter().all(|ip| ip.octets()[3] >= 4 && ip.octets()[3] < 15));
        s.release_ip(ips[3]);
        assert_eq!(s.allocate_ip(), Some(ips[3]));
        let mut limited = subnet("10.0.0.0/16", Some(2));
        assert!(limited.allocate_ip().is_some() && limited.allocate_ip().is_some());
        assert_eq!(limited.allocate_ip(), None);
    }

    #[test]
    fn names_private_dns_like_ec2() {
        assert_eq!(
            private_dns_name(Ipv4Addr::new(10, 0, 1, 23), "us-west-2"),
            "ip-10-0-1-23.us-west-2.compute.internal"
        );
        assert_eq!(private_dns_name(Ipv4Addr::new(10, 0, 1, 23), "us-east-1"), "ip-10-0-1-23.ec2.internal");
    }
}

//! Reply parsers: `CLUSTER NODES` (also the nodes.conf format) and `INFO`. Pure functions,
//! tested on captured replies.

use std::collections::HashMap;

use serde::Serialize;

use crate::topology::slots::SlotRange;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Flags {
    pub myself: bool,
    pub master: bool,
    pub replica: bool,
    pub pfail: bool,
    pub fail: bool,
    pub handshake: bool,
    pub noaddr: bool,
    pub nofailover: bool,
}

/// One line of `CLUSTER NODES`: what one node believes about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLine {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub bus_port: u16,
    pub flags: Flags,
    pub master_id: Option<String>,
    pub config_epoch: u64,
    pub connected: bool,
    pub slots: Vec<SlotRange>,
    /// (slot, target id) for slots this node is migrating away.
    pub migrating: Vec<(u16, String)>,
    /// (slot, source id) for slots this node is importing.
    pub importing: Vec<(u16, String)>,
}

impl NodeLine {
    pub fn addr(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
    /// Usable peer: address known, handshake done, not failing, link up.
    pub fn healthy(&self) -> bool {
        !self.flags.handshake
            && !self.flags.noaddr
            && !self.flags.fail
            && !self.flags.pfail
            && self.connected
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot parse CLUSTER NODES line {line:?}: {why}")]
pub struct NodesParseError {
    pub line: String,
    pub why: &'static str,
}

/// Parse `CLUSTER NODES` output (or nodes.conf, whose `vars` line is skipped).
pub fn cluster_nodes(text: &str) -> Result<Vec<NodeLine>, NodesParseError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("vars "))
        .map(node_line)
        .collect()
}

fn node_line(line: &str) -> Result<NodeLine, NodesParseError> {
    let err = |why| NodesParseError {
        line: line.to_string(),
        why,
    };
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return Err(err("fewer than 8 fields"));
    }
    // ip:port@cport[,hostname]
    let addr = f[1].split(',').next().unwrap_or("");
    let (hostport, cport) = addr.split_once('@').unwrap_or((addr, "0"));
    let (ip, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| err("address without port"))?;
    let port: u16 = port.parse().map_err(|_| err("bad port"))?;
    let bus_port: u16 = cport.parse().map_err(|_| err("bad bus port"))?;
    let mut flags = Flags::default();
    for fl in f[2].split(',') {
        match fl {
            "myself" => flags.myself = true,
            "master" => flags.master = true,
            "slave" => flags.replica = true,
            "fail?" => flags.pfail = true,
            "fail" => flags.fail = true,
            "handshake" => flags.handshake = true,
            "noaddr" => flags.noaddr = true,
            "nofailover" => flags.nofailover = true,
            _ => {}
        }
    }
    let master_id = (f[3] != "-").then(|| f[3].to_string());
    let config_epoch = f[6].parse().map_err(|_| err("bad config epoch"))?;
    let connected = f[7] == "connected";
    let mut slots = Vec::new();
    let mut migrating = Vec::new();
    let mut importing = Vec::new();
    for s in &f[8..] {
        if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            if let Some((slot, target)) = inner.split_once("->-") {
                migrating.push((
                    slot.parse().map_err(|_| err("bad slot"))?,
                    target.to_string(),
                ));
            } else if let Some((slot, source)) = inner.split_once("-<-") {
                importing.push((
                    slot.parse().map_err(|_| err("bad slot"))?,
                    source.to_string(),
                ));
            } else {
                return Err(err("bad open slot"));
            }
        } else if let Some((a, b)) = s.split_once('-') {
            let a: u16 = a.parse().map_err(|_| err("bad slot"))?;
            let b: u16 = b.parse().map_err(|_| err("bad slot"))?;
            if a > b || b >= crate::topology::slots::SLOTS {
                return Err(err("bad slot range"));
            }
            slots.push(SlotRange::new(a, b));
        } else {
            let a: u16 = s.parse().map_err(|_| err("bad slot"))?;
            if a >= crate::topology::slots::SLOTS {
                return Err(err("bad slot"));
            }
            slots.push(SlotRange::new(a, a));
        }
    }
    Ok(NodeLine {
        id: f[0].to_string(),
        ip: ip.to_string(),
        port,
        bus_port,
        flags,
        master_id,
        config_epoch,
        connected,
        slots,
        migrating,
        importing,
    })
}

/// `INFO` as a flat map of `field → value` (section headers dropped).
pub fn info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Total keys over all databases from INFO's keyspace lines (`db0:keys=3,expires=0,...`).
pub fn keyspace_keys(info: &HashMap<String, String>) -> u64 {
    info.iter()
        .filter(|(k, _)| k.starts_with("db") && k[2..].chars().all(|c| c.is_ascii_digit()))
        .filter_map(|(_, v)| {
            v.split(',')
                .find_map(|kv| kv.strip_prefix("keys="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from redis-server 7.0.15 during a migration.
    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [10923->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006 slave,fail? 292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 1426238317741 1426238316232 6 disconnected
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,noaddr - 1426238317741 1426238316232 0 disconnected
";

    #[test]
    fn parses_cluster_nodes() {
        let v = cluster_nodes(NODES).unwrap();
        assert_eq!(v.len(), 6);
        assert!(v[0].flags.replica);
        assert_eq!(
            v[0].master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!(v[0].bus_port, 31004);
        assert_eq!(v[1].slots, vec![SlotRange::new(5461, 10922)]);
        assert_eq!(
            v[2].migrating,
            vec![(
                10923,
                "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1".to_string()
            )]
        );
        assert!(v[3].flags.myself && v[3].flags.master);
        assert_eq!(v[3].importing.len(), 1);
        assert!(v[4].flags.pfail && !v[4].connected && !v[4].healthy());
        assert!(v[5].flags.noaddr);
        assert_eq!(v[5].port, 0);
        assert!(cluster_nodes("garbage").is_err());
    }

    #[test]
    fn skips_nodes_conf_vars() {
        let conf = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\nvars currentEpoch 6 lastVoteEpoch 0\n";
        assert_eq!(cluster_nodes(conf).unwrap().len(), 1);
    }

    #[test]
    fn parses_info() {
        let i = info(
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=4,expires=1,avg_ttl=0\r\n",
        );
        assert_eq!(i["redis_version"], "7.0.15");
        assert_eq!(keyspace_keys(&i), 7);
    }
}

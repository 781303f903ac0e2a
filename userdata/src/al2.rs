//! Amazon Linux 2: a shell script running `/etc/eks/bootstrap.sh` in a MIME multi-part document
//! (Karpenter's `bootstrap.EKS`).

use std::net::IpAddr;

use crate::kubelet::{apply_args, go_quote, map_flag, node_labels_flag, taint_string};
use crate::mime::{self, Part};
use crate::{Error, NodeRegistration, SHELL_CONTENT_TYPE};

const BOOTSTRAP: &str = "/etc/eks/bootstrap.sh";

pub(crate) fn render(reg: &NodeRegistration, custom: Option<&str>) -> Result<String, Error> {
    let mut parts = match custom {
        Some(c) if mime::is_mime(c) => mime::parse(c)?,
        Some(c) => vec![Part::new(SHELL_CONTENT_TYPE, c)],
        None => Vec::new(),
    };
    parts.push(Part::new(SHELL_CONTENT_TYPE, script(reg)));
    Ok(mime::write(&parts))
}

/// bootstrap.sh takes `--flag value`, never `--flag=value`; continuation lines start with the flag.
fn script(reg: &NodeRegistration) -> String {
    let cluster = &reg.cluster;
    let ca = match cluster.certificate_authority.as_str() {
        "" => String::new(),
        ca => format!("--b64-cluster-ca '{ca}'"),
    };
    let mut s = format!(
        "#!/bin/bash -xe\nexec > >(tee /var/log/user-data.log|logger -t user-data -s 2>/dev/console) 2>&1\n{BOOTSTRAP} '{}' --apiserver-endpoint '{}' {ca}",
        cluster.name, cluster.api_server_endpoint
    );
    if let Some(dns) = reg.cluster_dns.first() {
        if !is_ipv4(dns) {
            s.push_str(" \\\n--ip-family ipv6");
        }
        s.push_str(&format!(" \\\n--dns-cluster-ip '{dns}'"));
    }
    if reg.max_pods.is_some() {
        s.push_str(" \\\n--use-max-pods false");
    }
    s.push_str(&format!(" \\\n--kubelet-extra-args '{}'", kubelet_extra_args(reg).join(" ")));
    s
}

/// Go's `net.ParseIP(ip).To4() != nil`: IPv4, or IPv4 mapped into IPv6 (Karpenter takes anything
/// else, even no address, for IPv6).
fn is_ipv4(ip: &str) -> bool {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => true,
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some(),
        Err(_) => false,
    }
}

/// Labels, taints (always, even none), max pods, then reserved resources and hard eviction.
fn kubelet_extra_args(reg: &NodeRegistration) -> Vec<String> {
    let taints: Vec<String> = reg.taints.iter().map(taint_string).collect();
    [
        node_labels_flag(&reg.labels),
        Some(format!("--register-with-taints={}", go_quote(&taints.join(",")))),
        reg.max_pods.map(|m| format!("--max-pods={m}")),
        map_flag("--system-reserved", &reg.system_reserved, "="),
        map_flag("--kube-reserved", &reg.kube_reserved, "="),
        map_flag("--eviction-hard", &reg.eviction_hard, "<"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Whether a script calls bootstrap.sh (not merely mentions it in a comment).
pub(crate) fn runs_bootstrap(script: &str) -> bool {
    bootstrap_command(script).is_some()
}

/// The bootstrap.sh command line, continuation lines joined.
fn bootstrap_command(script: &str) -> Option<String> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.find(BOOTSTRAP).map(|i| l[i..].to_owned()))
}

/// What the script's bootstrap.sh call registers the node with.
pub(crate) fn parse_script(script: &str) -> Result<NodeRegistration, Error> {
    let command = bootstrap_command(script).ok_or_else(|| Error::BadBootstrap(format!("no {BOOTSTRAP} call")))?;
    let words =
        shlex::split(&command).ok_or_else(|| Error::BadBootstrap(format!("unbalanced quotes in {command:?}")))?;
    let mut reg = NodeRegistration::default();
    let mut extra_args = Vec::new();
    let mut i = 1;
    while let Some(word) = words.get(i) {
        i += 1;
        let Some(flag) = word.strip_prefix("--") else {
            if reg.cluster.name.is_empty() {
                reg.cluster.name = word.clone();
            }
            continue;
        };
        let (flag, value) = match flag.split_once('=') {
            Some((flag, value)) => (flag, value.to_owned()),
            None => {
                let value =
                    words.get(i).cloned().ok_or_else(|| Error::BadBootstrap(format!("--{flag} needs a value")))?;
                i += 1;
                (flag, value)
            }
        };
        match flag {
            "apiserver-endpoint" => reg.cluster.api_server_endpoint = value,
            "b64-cluster-ca" => reg.cluster.certificate_authority = value,
            "dns-cluster-ip" => reg.cluster_dns = vec![value],
            "kubelet-extra-args" => extra_args.push(value),
            _ => {}
        }
    }
    for args in &extra_args {
        let split = shlex::split(args).ok_or_else(|| Error::BadBootstrap(format!("unbalanced quotes in {args:?}")))?;
        apply_args(&mut reg, &split)?;
    }
    // Without --max-pods, bootstrap.sh takes max pods from the ENI limits (--use-max-pods true) or
    // leaves the kubelet's default: either way the user data does not say, so max_pods stays None.
    Ok(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_bare_script_and_ignores_comments() {
        let script = "#!/bin/bash\n# /etc/eks/bootstrap.sh 'old'\n/etc/eks/bootstrap.sh my-cluster --b64-cluster-ca=Q0E= --kubelet-extra-args '--node-labels=team=a --max-pods=7'\n";
        let reg = parse_script(script).unwrap_or_default();
        assert_eq!(reg.cluster.name, "my-cluster");
        assert_eq!(reg.cluster.certificate_authority, "Q0E=");
        assert_eq!(reg.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(reg.max_pods, Some(7));
        assert!(!runs_bootstrap("#!/bin/bash\n# /etc/eks/bootstrap.sh\necho hi"));
    }

    #[test]
    fn rejects_broken_commands() {
        assert!(matches!(parse_script("/etc/eks/bootstrap.sh c --apiserver-endpoint"), Err(Error::BadBootstrap(_))));
        assert!(matches!(parse_script("/etc/eks/bootstrap.sh 'c"), Err(Error::BadBootstrap(_))));
        assert!(matches!(
            parse_script("/etc/eks/bootstrap.sh c --kubelet-extra-args '--register-with-taints=a:Never'"),
            Err(Error::BadEffect(_))
        ));
    }

    #[test]
    fn tells_ipv4_from_ipv6_as_go_does() {
        assert!(is_ipv4("10.96.0.10"));
        assert!(is_ipv4("::ffff:10.0.0.1"));
        assert!(!is_ipv4("fd00::a"));
        assert!(!is_ipv4("not-an-ip"));
    }
}

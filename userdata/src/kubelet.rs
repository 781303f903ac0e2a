//! Kubelet command-line flags as Karpenter writes them (AL2's `--kubelet-extra-args`, AL2023's
//! NodeConfig `kubelet.flags`) and as a kubelet reads them.

use std::collections::BTreeMap;

use crate::{Error, NodeRegistration, Taint};

/// Go's `%q`: a double-quoted string with Go escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if !c.is_control() => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// `key=value` (or `key` for none) then `:Effect`, as `corev1.Taint.ToString` writes it.
pub(crate) fn taint_string(t: &Taint) -> String {
    match t.value() {
        Some(v) => format!("{}={v}:{}", t.key, t.effect),
        None => format!("{}:{}", t.key, t.effect),
    }
}

/// `--node-labels="k=v,..."`, keys sorted; none without labels.
pub(crate) fn node_labels_flag(labels: &BTreeMap<String, String>) -> Option<String> {
    (!labels.is_empty()).then(|| format!("--node-labels={}", go_quote(&join(labels, "="))))
}

/// `--name="k<sep>v,..."`, keys sorted; none for an empty map.
pub(crate) fn map_flag(name: &str, m: &BTreeMap<String, String>, separator: &str) -> Option<String> {
    (!m.is_empty()).then(|| format!("{name}={}", go_quote(&join(m, separator))))
}

fn join(m: &BTreeMap<String, String>, separator: &str) -> String {
    m.iter().map(|(k, v)| format!("{k}{separator}{v}")).collect::<Vec<_>>().join(",")
}

/// Applies shell-split kubelet arguments (`--flag=value` or `--flag value`) to `reg`: the flags
/// that shape a Node's registration; others are a kubelet's business, not the Node's.
pub(crate) fn apply_args(reg: &mut NodeRegistration, args: &[String]) -> Result<(), Error> {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value.to_owned()),
            None => match args.get(i).filter(|next| !next.starts_with("--")) {
                Some(next) => {
                    i += 1;
                    (arg.as_str(), next.clone())
                }
                None => (arg.as_str(), String::new()),
            },
        };
        apply_flag(reg, name, &value)?;
    }
    Ok(())
}

/// Splits a flag string as a shell would (quotes removed), then applies it.
pub(crate) fn apply_flag_string(reg: &mut NodeRegistration, flags: &str) -> Result<(), Error> {
    let args = shlex::split(flags)
        .ok_or_else(|| Error::BadFlag { flag: flags.to_owned(), why: "unbalanced quotes".to_owned() })?;
    apply_args(reg, &args)
}

fn apply_flag(reg: &mut NodeRegistration, name: &str, value: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::BadFlag { flag: format!("{name}={value}"), why: why.to_owned() };
    let items = || value.split(',').filter(|p| !p.is_empty());
    match name {
        "--node-labels" => {
            for pair in items() {
                let (k, v) = pair.split_once('=').ok_or_else(|| bad("a label needs key=value"))?;
                reg.labels.insert(k.to_owned(), v.to_owned());
            }
        }
        "--register-with-taints" => {
            for t in items() {
                let (kv, effect) = t.rsplit_once(':').ok_or_else(|| bad("a taint needs key[=value]:Effect"))?;
                let (key, value) = match kv.split_once('=') {
                    Some((k, v)) => (k, Some(v.to_owned()).filter(|v| !v.is_empty())),
                    None => (kv, None),
                };
                reg.taints.push(Taint { key: key.to_owned(), value, effect: effect.to_owned() }.checked()?);
            }
        }
        "--max-pods" => reg.max_pods = Some(value.parse().map_err(|_| bad("--max-pods needs a number"))?),
        "--kube-reserved" | "--system-reserved" => {
            let target = if name == "--kube-reserved" { &mut reg.kube_reserved } else { &mut reg.system_reserved };
            for pair in items() {
                let (k, v) = pair.split_once('=').ok_or_else(|| bad("a reservation needs resource=quantity"))?;
                target.insert(k.to_owned(), v.to_owned());
            }
        }
        "--eviction-hard" => {
            for pair in items() {
                let (k, v) = pair.split_once('<').ok_or_else(|| bad("a threshold needs signal<quantity"))?;
                reg.eviction_hard.insert(k.to_owned(), v.to_owned());
            }
        }
        "--cluster-dns" => reg.cluster_dns = items().map(str::to_owned).collect(),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go_does() {
        assert_eq!(go_quote("a=b,c=d"), "\"a=b,c=d\"");
        assert_eq!(go_quote("q\"\\\n\u{1}é"), "\"q\\\"\\\\\\n\\x01é\"");
        assert_eq!(go_quote(""), "\"\"");
    }

    #[test]
    fn reads_both_flag_forms() {
        let mut reg = NodeRegistration::default();
        let args: Vec<String> =
            ["--node-labels", "a=1,b=2", "--max-pods=12", "--eviction-hard=memory.available<5%", "--v=2", "--flag"]
                .map(str::to_owned)
                .to_vec();
        assert_eq!(apply_args(&mut reg, &args), Ok(()));
        assert_eq!(reg.labels.len(), 2);
        assert_eq!(reg.max_pods, Some(12));
        assert_eq!(reg.eviction_hard.get("memory.available").map(String::as_str), Some("5%"));
        assert_eq!(
            apply_flag_string(&mut reg, "--register-with-taints=\"k=v:Sometimes\""),
            Err(Error::BadEffect("Sometimes".into()))
        );
        assert!(matches!(apply_flag_string(&mut reg, "--node-labels=novalue"), Err(Error::BadFlag { .. })));
        assert!(matches!(apply_flag_string(&mut reg, "--max-pods='x"), Err(Error::BadFlag { .. })));
    }
}

//! Bottlerocket: TOML settings (Karpenter's `bootstrap.Bottlerocket`). Karpenter reads the user's
//! settings, sets the cluster, labels (merged over the user's), taints (replacing the user's), max
//! pods, cluster DNS, reservations and eviction, and writes `settings.kubernetes` back in its own
//! field order; other settings are kept as the user wrote them, unknown Kubernetes settings dropped.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::toml_out::{self, Entries, Item};
use crate::{Error, NodeRegistration, Taint};

/// How Karpenter types a setting; user values of another type fail as Karpenter's decoding fails.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    StrList,
    StrMap,
    StrListMap,
    /// Structured values: (field, kind, written even when absent).
    Struct(&'static [(&'static str, Kind, bool)]),
    StructMap(&'static [(&'static str, Kind, bool)]),
    Commands,
}

const CREDENTIAL_PROVIDER: &[(&str, Kind, bool)] = &[
    ("enabled", Kind::Bool, false),
    ("cache-duration", Kind::Str, false),
    ("image-patterns", Kind::StrList, true),
    ("environment", Kind::StrMap, false),
];
const STATIC_POD: &[(&str, Kind, bool)] = &[("enabled", Kind::Bool, false), ("manifest", Kind::Str, false)];
const TOPOLOGY_OPTIONS: &[(&str, Kind, bool)] =
    &[("prefer-closest-numa-nodes", Kind::Bool, false), ("max-allowable-numa-nodes", Kind::Int, false)];
const BOOTSTRAP_COMMAND: &[(&str, Kind, bool)] =
    &[("commands", Kind::Commands, true), ("mode", Kind::Str, true), ("essential", Kind::Bool, true)];

/// The `settings.kubernetes` keys Karpenter knows, in the order it writes them.
const KUBERNETES: &[(&str, Kind)] = &[
    ("api-server", Kind::Str),
    ("cloud-provider", Kind::Str),
    ("cluster-certificate", Kind::Str),
    ("cluster-name", Kind::Str),
    ("cluster-dns-ip", Kind::Str),
    ("credential-providers", Kind::StructMap(CREDENTIAL_PROVIDER)),
    ("node-labels", Kind::StrMap),
    ("node-taints", Kind::StrListMap),
    ("max-pods", Kind::Int),
    ("static-pods", Kind::StructMap(STATIC_POD)),
    ("eviction-hard", Kind::StrMap),
    ("eviction-soft", Kind::StrMap),
    ("eviction-soft-grace-period", Kind::StrMap),
    ("eviction-max-pod-grace-period", Kind::Int),
    ("kube-reserved", Kind::StrMap),
    ("system-reserved", Kind::StrMap),
    ("allowed-unsafe-sysctls", Kind::StrList),
    ("server-tls-bootstrap", Kind::Bool),
    ("registry-qps", Kind::Int),
    ("registry-burst", Kind::Int),
    ("event-qps", Kind::Int),
    ("event-burst", Kind::Int),
    ("kube-api-qps", Kind::Int),
    ("kube-api-burst", Kind::Int),
    ("container-log-max-size", Kind::Str),
    ("container-log-max-files", Kind::Int),
    ("cpu-manager-policy", Kind::Str),
    ("cpu-manager-policy-options", Kind::StrList),
    ("cpu-manager-reconcile-period", Kind::Str),
    ("memory-manager-policy", Kind::Str),
    ("topology-manager-scope", Kind::Str),
    ("topology-manager-policy", Kind::Str),
    ("topology-manager-policy-options", Kind::Struct(TOPOLOGY_OPTIONS)),
    ("image-gc-high-threshold-percent", Kind::Str),
    ("image-gc-low-threshold-percent", Kind::Str),
    ("ids-per-pod", Kind::Int),
    ("cpu-cfs-quota-enforced", Kind::Bool),
    ("shutdown-grace-period", Kind::Str),
    ("shutdown-grace-period-for-critical-pods", Kind::Str),
    ("cluster-domain", Kind::Str),
    ("seccomp-default", Kind::Bool),
    ("pod-pids-limit", Kind::Int),
    ("device-ownership-from-security-context", Kind::Bool),
    ("single-process-oom-kill", Kind::Bool),
    ("container-log-max-workers", Kind::Int),
    ("container-log-monitor-interval", Kind::Str),
    ("hostname-override-source", Kind::Str),
    ("log-level", Kind::Int),
];

pub(crate) fn render(reg: &NodeRegistration, custom: Option<&str>) -> Result<String, Error> {
    let root: Table = match custom {
        Some(c) => c.parse().map_err(|e: toml::de::Error| Error::Toml(e.message().to_owned()))?,
        None => Table::new(),
    };
    let mut settings = table_at(&root, "settings")?.cloned().unwrap_or_default();
    let user = table_at(&settings, "kubernetes")?.cloned().unwrap_or_default();
    let commands = settings.remove("bootstrap-commands");
    settings.remove("kubernetes");
    let mut entries = toml_out::sorted(&settings);
    entries.push(("kubernetes".to_owned(), Item::Table(kubernetes(reg, user)?)));
    if let Some(commands) = commands {
        entries.push((
            "bootstrap-commands".to_owned(),
            typed("bootstrap-commands", Kind::StructMap(BOOTSTRAP_COMMAND), &commands)?,
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(toml_out::document(&vec![("settings".to_owned(), Item::Table(entries))]))
}

fn table_at<'a>(t: &'a Table, key: &str) -> Result<Option<&'a Table>, Error> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(bad(key, "must be a table")),
    }
}

fn bad(key: &str, why: &str) -> Error {
    Error::BadSetting { key: key.to_owned(), why: why.to_owned() }
}

fn strings(m: &BTreeMap<String, String>) -> Value {
    Value::Table(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// `settings.kubernetes`: the user's known settings with Karpenter's on top, in Karpenter's order.
fn kubernetes(reg: &NodeRegistration, mut user: Table) -> Result<Entries, Error> {
    // Karpenter decodes the user's settings before setting its own: a mistyped one fails even if
    // Karpenter would overwrite it.
    for (key, kind) in KUBERNETES {
        if let Some(v) = user.get(*key) {
            typed(key, *kind, v)?;
        }
    }
    let c = &reg.cluster;
    user.insert("cluster-name".into(), Value::String(c.name.clone()));
    user.insert("api-server".into(), Value::String(c.api_server_endpoint.clone()));
    match c.certificate_authority.as_str() {
        "" => user.remove("cluster-certificate"),
        ca => user.insert("cluster-certificate".into(), Value::String(ca.to_owned())),
    };
    let mut labels = match user.get("node-labels") {
        Some(v) => string_map("node-labels", v)?,
        None => BTreeMap::new(),
    };
    labels.extend(reg.labels.clone());
    user.insert("node-labels".into(), strings(&labels));
    if let Some(max_pods) = reg.max_pods {
        user.insert("max-pods".into(), Value::Integer(i64::from(max_pods)));
    }
    if let Some(dns) = reg.cluster_dns.first() {
        user.insert("cluster-dns-ip".into(), Value::String(dns.clone()));
    }
    for (key, ours) in [
        ("system-reserved", &reg.system_reserved),
        ("kube-reserved", &reg.kube_reserved),
        ("eviction-hard", &reg.eviction_hard),
    ] {
        if !ours.is_empty() {
            user.insert(key.into(), strings(ours));
        }
    }
    let mut taints: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for t in &reg.taints {
        taints.entry(t.key.clone()).or_default().push(Value::String(format!(
            "{}:{}",
            t.value().unwrap_or_default(),
            t.effect
        )));
    }
    user.insert("node-taints".into(), Value::Table(taints.into_iter().map(|(k, v)| (k, Value::Array(v))).collect()));

    let mut entries = Entries::new();
    for (key, kind) in KUBERNETES {
        let Some(v) = user.get(*key) else { continue };
        let empty_map = matches!(kind, Kind::StrMap | Kind::StrListMap | Kind::StructMap(_))
            && v.as_table().is_some_and(Table::is_empty);
        let empty_list = matches!(kind, Kind::StrList) && v.as_array().is_some_and(Vec::is_empty);
        if empty_map || empty_list {
            continue;
        }
        entries.push(((*key).to_owned(), typed(key, *kind, v)?));
    }
    Ok(entries)
}

/// `v` checked against `kind` and laid out as Karpenter's typed settings write it.
fn typed(key: &str, kind: Kind, v: &Value) -> Result<Item, Error> {
    let ok = match kind {
        Kind::Str => v.is_str(),
        Kind::Int => v.is_integer(),
        Kind::Bool => v.is_bool(),
        Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_str)),
        Kind::Commands => {
            v.as_array().is_some_and(|a| a.iter().all(|c| c.as_array().is_some_and(|c| c.iter().all(Value::is_str))))
        }
        Kind::StrMap => v.as_table().is_some_and(|t| t.values().all(Value::is_str)),
        Kind::StrListMap => {
            v.as_table().is_some_and(|t| t.values().all(|l| l.as_array().is_some_and(|a| a.iter().all(Value::is_str))))
        }
        Kind::Struct(fields) => {
            return v.as_table().map(|t| structured(key, fields, t)).ok_or_else(|| bad(key, "must be a table"))?;
        }
        Kind::StructMap(fields) => {
            let t = v.as_table().ok_or_else(|| bad(key, "must be a table"))?;
            let mut entries = Entries::new();
            for (name, value) in t {
                let inner = value.as_table().ok_or_else(|| bad(&format!("{key}.{name}"), "must be a table"))?;
                entries.push((name.clone(), structured(&format!("{key}.{name}"), fields, inner)?));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(Item::Table(entries));
        }
    };
    if ok { Ok(toml_out::item(v)) } else { Err(bad(key, "has the wrong type")) }
}

/// A struct-typed setting: its known fields in order, zero values for those always written.
fn structured(key: &str, fields: &[(&str, Kind, bool)], t: &Table) -> Result<Item, Error> {
    let mut entries = Entries::new();
    for (name, kind, always) in fields {
        let zero = match kind {
            Kind::Str => Value::String(String::new()),
            Kind::Bool => Value::Boolean(false),
            Kind::Int => Value::Integer(0),
            Kind::StrList | Kind::Commands => Value::Array(Vec::new()),
            _ => Value::Table(Table::new()),
        };
        let value = match t.get(*name) {
            Some(v) => v,
            None if *always => &zero,
            None => continue,
        };
        entries.push(((*name).to_owned(), typed(&format!("{key}.{name}"), *kind, value)?));
    }
    Ok(Item::Table(entries))
}

/// `settings` of a Bottlerocket user data, if the text is TOML with a settings table (or clearly
/// meant to be: invalid TOML starting with one).
pub(crate) fn settings(text: &str) -> Option<Result<Table, Error>> {
    match text.parse::<Table>() {
        Ok(root) => match root.get("settings") {
            Some(Value::Table(s)) => Some(Ok(s.clone())),
            _ => None,
        },
        Err(e) => {
            let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
            (first.starts_with("[settings") || first.starts_with("settings."))
                .then(|| Err(Error::Toml(e.message().to_owned())))
        }
    }
}

/// What `settings.kubernetes` registers the node with.
pub(crate) fn parse(settings: &Table) -> Result<NodeRegistration, Error> {
    let mut reg = NodeRegistration::default();
    let Some(k8s) = table_at(settings, "kubernetes")? else { return Ok(reg) };
    let string = |key: &str| -> Result<String, Error> {
        match k8s.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(key, "must be a string")),
        }
    };
    reg.cluster.name = string("cluster-name")?;
    reg.cluster.api_server_endpoint = string("api-server")?;
    reg.cluster.certificate_authority = string("cluster-certificate")?;
    reg.cluster_dns = match k8s.get("cluster-dns-ip") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("cluster-dns-ip", "must hold strings"))?,
        Some(_) => return Err(bad("cluster-dns-ip", "must be a string or a list of strings")),
    };
    reg.max_pods = match k8s.get("max-pods") {
        None => None,
        Some(v) => Some(
            v.as_integer().and_then(|i| u32::try_from(i).ok()).ok_or_else(|| bad("max-pods", "must be a pod count"))?,
        ),
    };
    for (key, target) in [
        ("node-labels", &mut reg.labels),
        ("kube-reserved", &mut reg.kube_reserved),
        ("system-reserved", &mut reg.system_reserved),
        ("eviction-hard", &mut reg.eviction_hard),
    ] {
        if let Some(v) = k8s.get(key) {
            *target = string_map(key, v)?;
        }
    }
    if let Some(v) = k8s.get("node-taints") {
        let table = v.as_table().ok_or_else(|| bad("node-taints", "must be a table"))?;
        for (key, values) in table {
            let values: Vec<&Value> = match values {
                Value::Array(a) => a.iter().collect(),
                single => vec![single],
            };
            for value in values {
                let text = value.as_str().ok_or_else(|| bad("node-taints", "must hold \"value:Effect\" strings"))?;
                let (value, effect) =
                    text.rsplit_once(':').ok_or_else(|| bad("node-taints", "must hold \"value:Effect\" strings"))?;
                let value = Some(value.to_owned()).filter(|v| !v.is_empty());
                reg.taints.push(Taint { key: key.clone(), value, effect: effect.to_owned() }.checked()?);
            }
        }
    }
    Ok(reg)
}

fn string_map(key: &str, v: &Value) -> Result<BTreeMap<String, String>, Error> {
    let table = v.as_table().ok_or_else(|| bad(key, "must be a table"))?;
    table
        .iter()
        .map(|(k, v)| {
            v.as_str().map(|s| (k.clone(), s.to_owned())).ok_or_else(|| bad(&format!("{key}.{k}"), "must be a string"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_where_karpenters_typed_settings_fail() {
        let reg = NodeRegistration::default();
        assert!(matches!(
            render(&reg, Some("[settings.kubernetes]\nmax-pods = 'many'\n")),
            Err(Error::BadSetting { .. })
        ));
        assert!(matches!(render(&reg, Some("settings = 1\n")), Err(Error::BadSetting { .. })));
        assert!(matches!(render(&reg, Some("[settings\n")), Err(Error::Toml(_))));
        assert!(matches!(settings("[settings.kubernetes\n"), Some(Err(Error::Toml(_)))));
        assert!(settings("#!/bin/bash\n").is_none());
    }

    #[test]
    fn writes_struct_settings_in_field_order() {
        let custom = "[settings.kubernetes.credential-providers.ecr-credential-provider]\nimage-patterns = ['*.ecr.aws']\nenabled = true\nunknown = 1\n";
        let text = render(&NodeRegistration::default(), Some(custom)).unwrap_or_default();
        assert!(
            text.ends_with("[settings.kubernetes.credential-providers.ecr-credential-provider]\nenabled = true\nimage-patterns = ['*.ecr.aws']\n"),
            "{text}"
        );
    }

    #[test]
    fn reads_a_list_of_dns_ips_and_single_taint_strings() {
        let settings: Result<Table, _> =
            "[kubernetes]\ncluster-dns-ip = ['10.0.0.10', '10.0.0.11']\n[kubernetes.node-taints]\nk = 'v:NoSchedule'\n"
                .parse();
        let reg = parse(&settings.unwrap_or_default()).unwrap_or_default();
        assert_eq!(reg.cluster_dns.len(), 2);
        assert_eq!(reg.taints, [Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into() }]);
    }
}

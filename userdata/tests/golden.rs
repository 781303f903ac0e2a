//! Round trips against the exact user data upstream Karpenter writes: the goldens in
//! tests/golden/ were produced by Karpenter v1.14.3's own bootstrap package (`make
//! userdata-golden`) from the inputs in tests/golden/fixtures.json.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;
use userdata::{Cluster, Family, NodeRegistration, Taint, parse, render};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fixture {
    name: String,
    family: String,
    cluster: FixtureCluster,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    taints: Vec<Taint>,
    kubelet: Option<Kubelet>,
    custom_user_data: Option<String>,
    /// Labels the custom user data adds to what Karpenter writes.
    #[serde(default)]
    expect_extra_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureCluster {
    name: String,
    endpoint: String,
    ca_bundle: String,
    cidr: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Kubelet {
    #[serde(rename = "clusterDNS")]
    cluster_dns: Vec<String>,
    max_pods: Option<u32>,
    kube_reserved: BTreeMap<String, String>,
    system_reserved: BTreeMap<String, String>,
    eviction_hard: BTreeMap<String, String>,
}

impl Fixture {
    fn family(&self) -> Family {
        self.family.parse().unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// What Karpenter was given.
    fn registration(&self) -> NodeRegistration {
        let kubelet = self.kubelet.as_ref();
        NodeRegistration {
            cluster: Cluster {
                name: self.cluster.name.clone(),
                api_server_endpoint: self.cluster.endpoint.clone(),
                certificate_authority: self.cluster.ca_bundle.clone(),
                cidr: self.cluster.cidr.clone(),
            },
            labels: self.labels.clone(),
            taints: self.taints.clone(),
            max_pods: kubelet.and_then(|k| k.max_pods),
            kube_reserved: kubelet.map(|k| k.kube_reserved.clone()).unwrap_or_default(),
            system_reserved: kubelet.map(|k| k.system_reserved.clone()).unwrap_or_default(),
            eviction_hard: kubelet.map(|k| k.eviction_hard.clone()).unwrap_or_default(),
            cluster_dns: kubelet.map(|k| k.cluster_dns.clone()).unwrap_or_default(),
        }
    }

    /// What a kubelet reads back from the user data: only AL2023 carries the service CIDR,
    /// Bottlerocket's taints are a table keyed (and so sorted) by taint key.
    fn expected(&self) -> NodeRegistration {
        let mut reg = self.registration();
        reg.labels.extend(self.expect_extra_labels.clone());
        match self.family() {
            Family::Al2023 => {}
            Family::Al2 => reg.cluster.cidr.clear(),
            Family::Bottlerocket => {
                reg.cluster.cidr.clear();
                reg.taints.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        reg
    }

    fn golden(&self) -> String {
        let path = golden_dir().join(format!("{}.txt", self.name));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

fn golden_dir() -> PathBuf {
    // The directory cargo runs this test for, read at run time: a test binary built in another
    // checkout that shares the target directory must not read that checkout's files.
    let dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    dir.join("tests/golden")
}

fn fixtures() -> Vec<Fixture> {
    let text = std::fs::read_to_string(golden_dir().join("fixtures.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_family_has_goldens_and_every_golden_a_fixture() {
    let fixtures = fixtures();
    for family in Family::ALL {
        assert!(fixtures.iter().filter(|f| f.family() == family).count() >= 3, "{family}");
    }
    let names: Vec<String> = fixtures.iter().map(|f| format!("{}.txt", f.name)).collect();
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(file == "fixtures.json" || names.contains(&file), "{file} has no fixture");
    }
}

#[test]
fn renders_what_karpenter_renders_byte_for_byte() {
    for f in fixtures() {
        let ours = render(f.family(), &f.registration(), f.custom_user_data.as_deref());
        assert_eq!(ours.as_deref(), Ok(f.golden().as_str()), "{}", f.name);
    }
}

#[test]
fn parses_karpenters_user_data_into_the_registration() {
    for f in fixtures() {
        let golden = f.golden();
        let expected = Ok((f.family(), f.expected()));
        assert_eq!(parse(&golden), expected, "{}", f.name);
        let as_ec2_stores_it = base64::engine::general_purpose::STANDARD.encode(&golden);
        assert_eq!(parse(&as_ec2_stores_it), expected, "{} (base64)", f.name);
    }
}

#[test]
fn what_is_parsed_renders_back_to_the_same_bytes() {
    for f in fixtures() {
        let golden = f.golden();
        let (family, parsed) = parse(&golden).unwrap();
        // The custom part is merged again on render, so give back what the user gave.
        let mut reg = parsed;
        if f.family() == Family::Bottlerocket || f.name == "al2023-custom-nodeconfig" {
            for key in f.expect_extra_labels.keys() {
                reg.labels.remove(key);
            }
        }
        if f.family() == Family::Bottlerocket {
            reg.taints = f.taints.clone();
        }
        let again = render(family, &reg, f.custom_user_data.as_deref());
        assert_eq!(again.as_deref(), Ok(golden.as_str()), "{}", f.name);
    }
}

//! Family detection and the compatibility API; per-family goldens are in tests/golden.rs.

use super::*;

fn sample() -> NodeRegistration {
    NodeRegistration {
        cluster: Cluster { name: "fake-cluster".into(), cidr: "10.96.0.0/12".into(), ..Default::default() },
        labels: BTreeMap::from([
            ("karpenter.sh/capacity-type".into(), "spot".into()),
            ("karpenter.sh/nodepool".into(), "default".into()),
        ]),
        taints: vec![Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoSchedule".into() }],
        max_pods: Some(29),
        kube_reserved: BTreeMap::from([("cpu".into(), "70m".into())]),
        ..Default::default()
    }
}

#[test]
fn round_trips_through_base64_user_data() {
    let reg = sample();
    assert_eq!(NodeRegistration::from_user_data(&reg.to_base64()), Ok(reg.clone()));
    assert_eq!(NodeRegistration::from_user_data(&reg.to_user_data()), Ok(reg.clone()));
    assert_eq!(reg.to_user_data(), render(Family::Al2023, &reg, None).unwrap_or_default());
}

#[test]
fn every_family_round_trips_and_is_told_apart() {
    let mut reg = sample();
    reg.cluster.cidr.clear(); // only AL2023 carries it
    for family in Family::ALL {
        let text = render_base64(family, &reg, None).unwrap_or_default();
        let mut expected = reg.clone();
        if family == Family::Al2023 {
            expected.cluster.cidr.clear();
        }
        assert_eq!(parse(&text), Ok((family, expected)), "{family}");
    }
}

#[test]
fn names_families_as_karpenter_does() {
    for family in Family::ALL {
        assert_eq!(family.to_string().parse::<Family>(), Ok(family));
    }
    assert_eq!("Windows2022".parse::<Family>(), Err(Error::UnknownFamily("Windows2022".into())));
}

#[test]
fn rejects_what_no_kubelet_would_read() {
    assert_eq!(parse("#!/bin/bash\necho hi"), Err(Error::Unrecognized));
    assert_eq!(parse(""), Err(Error::Unrecognized));
    let only_a_script = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n--//\nContent-Type: text/x-shellscript\n\necho hi\n--//--\n";
    assert_eq!(parse(only_a_script), Err(Error::Unrecognized));
    let bad =
        "kind: NodeConfig\napiVersion: x\nspec:\n  kubelet:\n    flags: [\"--register-with-taints=k=v:Sometimes\"]\n";
    assert_eq!(parse(bad), Err(Error::BadEffect("Sometimes".into())));
    let bad = "kind: NodeConfig\napiVersion: x\nspec:\n  kubelet:\n    flags: [\"--node-labels=novalue\"]\n";
    assert!(matches!(parse(bad), Err(Error::BadFlag { .. })));
    assert!(matches!(parse("[settings.kubernetes]\nmax-pods = -1\n"), Err(Error::BadSetting { .. })));
}

//! The requirement algebra, case by case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use Operator::*;

fn req(op: Operator, vals: &[&str]) -> Requirement {
    Requirement::new(op, vals.iter().copied())
}

#[test]
fn membership() {
    let cases: &[(Requirement, &str, bool)] = &[
        (req(In, &["a", "b"]), "a", true),
        (req(In, &["a", "b"]), "c", false),
        (req(NotIn, &["a"]), "a", false),
        (req(NotIn, &["a"]), "z", true),
        (req(Exists, &[]), "anything", true),
        (req(DoesNotExist, &[]), "x", false),
        (req(Gt, &["4"]), "5", true),
        (req(Gt, &["4"]), "4", false),
        (req(Gt, &["4"]), "five", false),
        (req(Lt, &["4"]), "3", true),
        (req(Lt, &["4"]), "4", false),
        (req(Gt, &["x"]), "1", false),
    ];
    for (r, v, want) in cases {
        assert_eq!(r.has(v), *want, "{r} has {v}");
    }
}

#[test]
fn intersections() {
    // (a, b, expected operator, expected values, member probes)
    let cases: &[(Requirement, Requirement, Operator, &[&str])] = &[
        (req(In, &["a", "b"]), req(In, &["b", "c"]), In, &["b"]),
        (req(In, &["a", "b"]), req(NotIn, &["b"]), In, &["a"]),
        (req(NotIn, &["a"]), req(NotIn, &["b"]), NotIn, &["a", "b"]),
        (req(Exists, &[]), req(In, &["x"]), In, &["x"]),
        (req(In, &["a"]), req(In, &["b"]), DoesNotExist, &[]),
        (req(Gt, &["2"]), req(In, &["1", "3", "x"]), In, &["3"]),
        (req(Gt, &["5"]), req(Lt, &["3"]), DoesNotExist, &[]),
        (req(Gt, &["1"]), req(Lt, &["5"]), Exists, &[]),
        (req(DoesNotExist, &[]), req(Exists, &[]), DoesNotExist, &[]),
    ];
    for (a, b, op, vals) in cases {
        let i = a.intersection(b);
        assert_eq!(i.operator(), *op, "{a} ∩ {b} = {i}");
        let got: Vec<&str> = i.values().iter().map(String::as_str).collect();
        assert_eq!(got, *vals, "{a} ∩ {b}");
        assert_eq!(a.intersects(b), i.operator() != DoesNotExist, "{a} intersects {b}");
        assert_eq!(b.intersection(a), i, "commutative");
    }
    let bounded = req(Gt, &["1"]).intersection(&req(Lt, &["5"]));
    assert!(bounded.has("2") && bounded.has("4") && !bounded.has("5") && !bounded.has("1"));
    assert_eq!(bounded.to_string(), "Exists >=2 <=4");
}

#[test]
fn min_values_take_the_max() {
    let a = req(In, &["a", "b", "c"]).with_min_values(Some(2));
    let b = req(Exists, &[]).with_min_values(Some(3));
    assert_eq!(a.intersection(&b).min_values, Some(3));
    assert_eq!(a.to_string(), "In [a b c] minValues 2");
}

#[test]
fn any_is_deterministic() {
    assert_eq!(req(In, &["b", "a"]).any().as_deref(), Some("a"));
    assert_eq!(req(NotIn, &["0", "1"]).any().as_deref(), Some("2"));
    assert_eq!(req(Gt, &["7"]).any().as_deref(), Some("8"));
    assert_eq!(req(DoesNotExist, &[]).any(), None);
}

fn reqs(items: &[(&str, Operator, &[&str])]) -> Requirements {
    items.iter().map(|(k, op, v)| (k.to_string(), req(*op, v))).collect()
}

#[test]
fn compatibility_table() {
    let zone = labels::ZONE;
    let cases: &[(Requirements, Requirements, bool, bool)] = &[
        // node side, pod side, compatible (well-known allowed), compatible_strict
        (reqs(&[]), reqs(&[(zone, In, &["a"])]), true, false),
        (reqs(&[]), reqs(&[("team", In, &["x"])]), false, false),
        (reqs(&[]), reqs(&[("team", NotIn, &["x"])]), true, true),
        (reqs(&[]), reqs(&[("team", DoesNotExist, &[])]), true, true),
        (reqs(&[("team", In, &["x"])]), reqs(&[("team", In, &["x", "y"])]), true, true),
        (reqs(&[("team", In, &["x"])]), reqs(&[("team", In, &["y"])]), false, false),
        (reqs(&[("team", In, &["x"])]), reqs(&[("team", DoesNotExist, &[])]), false, false),
        (reqs(&[("team", NotIn, &["x"])]), reqs(&[("team", DoesNotExist, &[])]), true, true),
        (reqs(&[("team", DoesNotExist, &[])]), reqs(&[("team", NotIn, &["x"])]), true, true),
        (reqs(&[(zone, In, &["a", "b"])]), reqs(&[(zone, NotIn, &["a", "b"])]), false, false),
        (reqs(&[("cpu", Gt, &["3"])]), reqs(&[("cpu", In, &["4"])]), true, true),
        (reqs(&[("cpu", Lt, &["3"])]), reqs(&[("cpu", In, &["4"])]), false, false),
    ];
    for (node, pod, loose, strict) in cases {
        assert_eq!(node.compatible(pod).is_ok(), *loose, "compatible {node} vs {pod}");
        assert_eq!(node.compatible_strict(pod).is_ok(), *strict, "strict {node} vs {pod}");
    }
}

#[test]
fn error_messages_read_like_karpenter() {
    let node = reqs(&[("karpenter.sh/capacity-type", In, &["spot"])]);
    let pod = reqs(&[("karpenter.sh/capacity-type", In, &["on-demand"])]);
    assert_eq!(
        node.compatible(&pod).unwrap_err(),
        "key karpenter.sh/capacity-type, karpenter.sh/capacity-type In [on-demand] not in karpenter.sh/capacity-type In [spot]"
    );
    let err = reqs(&[]).compatible(&reqs(&[("topology.kubernetes.io/zonee", In, &["a"])])).unwrap_err();
    assert!(err.contains("does not have known values"), "{err}");
}

#[test]
fn labels_and_normalisation() {
    let mut r = Requirements::from_labels(&[("a".to_string(), "1".to_string())].into());
    r.add("failure-domain.beta.kubernetes.io/zone", req(In, &["z1", "z2"]));
    r.add("b", req(In, &["x"]));
    assert!(r.has(labels::ZONE));
    let want: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "x".into())].into();
    assert_eq!(r.labels(), want);
    assert!(!r.add_all(&reqs(&[("a", In, &["1"])])));
    assert!(r.add_all(&reqs(&[(labels::ZONE, In, &["z1"])])));
    assert_eq!(r.get(labels::ZONE).single(), Some("z1"));
    assert_eq!(r.get("undefined").operator(), Exists);
}

#[test]
fn from_node_selector() {
    let nsr = vec![
        NodeSelectorRequirement { key: "x".into(), operator: "Gt".into(), values: Some(vec!["3".into()]) },
        NodeSelectorRequirement { key: "y".into(), operator: "Exists".into(), values: None },
    ];
    let r = Requirements::from_node_selector_requirements(&nsr).unwrap();
    assert!(r.get("x").has("4") && !r.get("x").has("3"));
    assert_eq!(r.get("y").operator(), Exists);
    let bad = vec![NodeSelectorRequirement { key: "x".into(), operator: "Near".into(), values: None }];
    assert!(Requirements::from_node_selector_requirements(&bad).is_err());
}

#[test]
fn add_operator_validates() {
    let mut r = Requirements::new();
    r.add_operator("karpenter.k8s.aws/instance-generation", "Gt", &["5".into()], None).unwrap();
    r.add_operator("karpenter.k8s.aws/instance-category", "In", &["c".into(), "m".into()], Some(2)).unwrap();
    assert!(r.get("karpenter.k8s.aws/instance-generation").has("6"));
    assert_eq!(r.get("karpenter.k8s.aws/instance-category").min_values, Some(2));
    assert!(r.add_operator("x", "Gt", &["five".into()], None).is_err());
    assert!(r.add_operator("x", "Near", &[], None).is_err());
}

#[test]
fn satisfied_by_labels() {
    let labels: BTreeMap<String, String> = [("zone".to_string(), "a".to_string())].into();
    assert!(reqs(&[("zone", In, &["a"]), ("gpu", DoesNotExist, &[])]).satisfied_by_labels(&labels));
    assert!(!reqs(&[("gpu", Exists, &[])]).satisfied_by_labels(&labels));
    assert!(reqs(&[("gpu", NotIn, &["x"])]).satisfied_by_labels(&labels));
}

mod algebra {
    use super::*;
    use proptest::prelude::*;

    const UNIVERSE: [&str; 7] = ["0", "1", "2", "3", "4", "5", "x"];

    fn requirement() -> impl Strategy<Value = Requirement> {
        let values = proptest::sample::subsequence(UNIVERSE.to_vec(), 0..4);
        (0..6usize, values, 0..6i64).prop_map(|(op, values, bound)| match op {
            0 => Requirement::new(In, values),
            1 => Requirement::new(NotIn, values),
            2 => Requirement::exists(),
            3 => Requirement::does_not_exist(),
            4 => Requirement::new(Gt, [bound.to_string()]),
            _ => Requirement::new(Lt, [bound.to_string()]),
        })
    }

    proptest! {
        #[test]
        fn intersection_is_set_intersection(a in requirement(), b in requirement()) {
            let i = a.intersection(&b);
            for v in UNIVERSE {
                prop_assert_eq!(i.has(v), a.has(v) && b.has(v), "{} ∩ {} = {} at {}", a, b, i, v);
            }
            prop_assert_eq!(&i, &b.intersection(&a));
            // A shared member means they intersect.
            if UNIVERSE.iter().any(|v| i.has(v)) {
                prop_assert!(a.intersects(&b));
            }
            // Intersecting again changes nothing.
            prop_assert_eq!(i.intersection(&b), i.clone());
        }
    }
}

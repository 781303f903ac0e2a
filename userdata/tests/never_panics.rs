//! `parse` is fed whatever an instance's user data holds: it answers an error, never panics.

use base64::Engine as _;
use proptest::prelude::*;
use userdata::{Family, NodeRegistration, parse, render};

/// Fragments of every family's syntax, so generated inputs get past the first checks.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("MIME-Version: 1.0\n".to_owned()),
        Just("Content-Type: multipart/mixed; boundary=\"//\"\n".to_owned()),
        Just("Content-Type: application/node.eks.aws\n".to_owned()),
        Just("Content-Type: text/x-shellscript\n".to_owned()),
        Just("--//\n".to_owned()),
        Just("--//--\n".to_owned()),
        Just("\n".to_owned()),
        Just("kind: NodeConfig\n".to_owned()),
        Just("spec:\n  kubelet:\n    flags:\n    - ".to_owned()),
        Just("--node-labels=".to_owned()),
        Just("--register-with-taints=".to_owned()),
        Just("/etc/eks/bootstrap.sh c --kubelet-extra-args '".to_owned()),
        Just("[settings.kubernetes]\n".to_owned()),
        Just("[settings.kubernetes.node-taints]\n".to_owned()),
        Just("max-pods = ".to_owned()),
        Just("k = [':NoSchedule']\n".to_owned()),
        "[ -~]{0,12}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_miss_user_data(parts in proptest::collection::vec(fragment(), 0..12)) {
        let text = parts.concat();
        let _ = parse(&text);
        let _ = parse(&base64::engine::general_purpose::STANDARD.encode(&text));
    }

    #[test]
    fn parse_never_panics_on_any_bytes_as_ec2_stores_them(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&base64::engine::general_purpose::STANDARD.encode(&bytes));
    }

    #[test]
    fn render_never_panics_on_any_custom_user_data(parts in proptest::collection::vec(fragment(), 0..8)) {
        let reg = NodeRegistration::default();
        for family in Family::ALL {
            let _ = render(family, &reg, Some(&parts.concat()));
        }
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    for open in ["[", "{", "- "] {
        let deep = open.repeat(100_000);
        for text in [format!("kind: NodeConfig\nspec: {deep}"), format!("[settings]\nx = {deep}"), deep.clone()] {
            assert!(parse(&text).is_err());
        }
    }
}

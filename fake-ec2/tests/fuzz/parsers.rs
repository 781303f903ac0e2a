//! Parsers that are not behind one service's wire: the world YAML, user data of every family (the
//! userdata crate, as fake-ec2 reads a launch's user data), and EventBridge patterns. Invariant:
//! an error value, never a panic.

use std::path::Path;

use fake_ec2::cloud::Cloud;
use fake_ec2::events::pattern::Pattern;
use fake_ec2::events::{Rule, RuleConfig};
use fake_ec2::world::config::WorldConfig;
use proptest::prelude::*;
use serde_json::{Value, json};
use userdata::{Family, NodeRegistration, Taint};

use crate::fuzz;
use crate::wire::DEFAULT_WORLD;

pub fn world_yaml() {
    fuzz("world yaml", testkit::fuzz::yaml_near(DEFAULT_WORLD.to_owned()), |text| {
        // A world that parses must also build, or be refused with an error.
        if let Ok(cfg) = WorldConfig::parse(&text, "fuzz.yaml") {
            let _ = Cloud::new(cfg, 1, Path::new("."));
        }
        Ok(())
    });
}

/// A registration with junk labels, taints and settings (rendered, then read back).
fn registration() -> impl Strategy<Value = NodeRegistration> {
    let word = prop_oneof!["[a-z0-9./-]{0,12}", "[ -~]{0,8}", any::<String>()];
    (
        prop::collection::btree_map(word.clone(), word.clone(), 0..4),
        prop::collection::vec((word.clone(), prop::option::of(word.clone()), word.clone()), 0..3),
        prop::option::of(any::<u32>()),
        prop::collection::btree_map(word.clone(), word, 0..3),
    )
        .prop_map(|(labels, taints, max_pods, reserved)| NodeRegistration {
            labels,
            taints: taints.into_iter().map(|(key, value, effect)| Taint { key, value, effect }).collect(),
            max_pods,
            kube_reserved: reserved,
            ..NodeRegistration::default()
        })
}

/// Cuts, splices and re-encodings of a rendered document.
#[derive(Debug, Clone)]
enum Mangle {
    None,
    Truncate(usize),
    Splice(usize, String),
    Base64,
}

pub fn user_data() {
    let mangle = prop_oneof![
        Just(Mangle::None),
        any::<usize>().prop_map(Mangle::Truncate),
        (any::<usize>(), "[ -~\n]{0,16}").prop_map(|(a, s)| Mangle::Splice(a, s)),
        Just(Mangle::Base64),
    ];
    let custom = prop::option::of(prop_oneof!["[ -~\n]{0,40}", Just("#!/bin/bash\necho hi\n".to_owned())]);
    let family = prop::sample::select(Family::ALL.to_vec());
    fuzz("user data", (family, registration(), custom, mangle), |(family, reg, custom, mangle)| {
        let Ok(text) = userdata::render(family, &reg, custom.as_deref()) else { return Ok(()) };
        let text = match mangle {
            Mangle::None => text,
            Mangle::Truncate(at) => text.chars().take(at % (text.len() + 1)).collect(),
            Mangle::Splice(at, s) => {
                let mut chars: Vec<char> = text.chars().collect();
                let at = at % (chars.len() + 1);
                chars.splice(at..at, s.chars());
                chars.into_iter().collect()
            }
            Mangle::Base64 => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(text)
            }
        };
        let _ = userdata::parse(&text);
        Ok(())
    });
}

fn pattern() -> BoxedStrategy<Value> {
    let op = prop::sample::select(vec![
        "prefix",
        "suffix",
        "anything-but",
        "numeric",
        "exists",
        "equals-ignore-case",
        "wildcard",
        "cidr",
        "bogus",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec!["aws.ec2", "EC2 Spot Instance Interruption Warning", "<", ">=", "=", "", "x*"])
            .prop_map(|s| Value::String(s.to_owned())),
        "[ -~]{0,8}".prop_map(Value::String),
    ];
    let key = prop_oneof![
        prop::sample::select(vec!["source", "detail-type", "detail", "instance-id", "state", "$or"])
            .prop_map(str::to_owned),
        "[a-z-]{0,8}",
    ];
    leaf.prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            (op.clone(), inner.clone()).prop_map(|(o, v)| json!([{ o: v }])),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

pub fn event_patterns() {
    let events = [
        json!({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
               "detail": {"instance-id": "i-1", "instance-action": "terminate"}}),
        json!({"source": "aws.health", "detail": {"state": 3.5, "list": [1, "a", null]}}),
        json!([]),
    ];
    fuzz("eventbridge patterns", (pattern(), any::<bool>()), |(p, as_string)| {
        if let Ok(compiled) = Pattern::compile(&p) {
            for e in &events {
                let _ = compiled.matches(e);
            }
        }
        // As a rule takes it: the JSON, or a string holding it (`put-rule --event-pattern`).
        let pattern = if as_string { Value::String(p.to_string()) } else { p };
        let _ = Rule::from_config(&RuleConfig { name: "r".into(), pattern, targets: vec![] });
        Ok(())
    });
}

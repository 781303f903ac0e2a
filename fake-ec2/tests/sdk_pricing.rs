//! On-demand prices through the real aws-sdk-pricing client, with Karpenter's filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_pricing::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_pricing::types::{Filter, FilterType};
use std::collections::BTreeMap;

use common::{Server, world, world_with};

fn pricing(s: &Server) -> aws_sdk_pricing::Client {
    let cfg = aws_sdk_pricing::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&s.endpoint)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    aws_sdk_pricing::Client::from_conf(cfg)
}

fn term(field: &str, value: &str) -> Filter {
    Filter::builder().r#type(FilterType::TermMatch).field(field).value(value).build().unwrap()
}

/// Karpenter's on-demand queries, copied from `fetchOnDemandPricing` and `UpdateOnDemandPricing`
/// (aws/karpenter-provider-aws `pkg/providers/pricing/pricing.go`): the common TERM_MATCH filters,
/// then one query per (tenancy, product family).
const KARPENTER_COMMON: [(&str, &str); 6] = [
    ("regionCode", "us-west-2"),
    ("serviceCode", "AmazonEC2"),
    ("preInstalledSw", "NA"),
    ("operatingSystem", "Linux"),
    ("capacitystatus", "Used"),
    ("marketoption", "OnDemand"),
];
const KARPENTER_QUERIES: [[(&str, &str); 2]; 2] = [
    [("tenancy", "Shared"), ("productFamily", "Compute Instance")],
    [("tenancy", "Dedicated"), ("productFamily", "Compute Instance (bare metal)")],
];

/// One of Karpenter's queries through the SDK paginator (MaxResults 100, as Karpenter pages):
/// the on-demand USD price per type, parsed the way Karpenter's `onDemandPage` reads it.
async fn karpenter_query(client: &aws_sdk_pricing::Client, extra: &[(&str, &str)]) -> (BTreeMap<String, f64>, usize) {
    let mut req = client.get_products().service_code("AmazonEC2").max_results(100);
    for (field, value) in KARPENTER_COMMON.iter().chain(extra) {
        req = req.filters(term(field, value));
    }
    let pages: Vec<_> = req.into_paginator().send().collect::<Vec<_>>().await;
    let page_count = pages.len();
    let mut prices = BTreeMap::new();
    for doc in pages.into_iter().flat_map(|p| p.unwrap().price_list().to_vec()) {
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let name = doc["product"]["attributes"]["instanceType"].as_str().unwrap().to_owned();
        for term in doc["terms"]["OnDemand"].as_object().unwrap().values() {
            for dim in term["priceDimensions"].as_object().unwrap().values() {
                let usd: f64 = dim["pricePerUnit"]["USD"].as_str().unwrap().parse().unwrap();
                assert!(prices.insert(name.clone(), usd).is_none(), "{name} twice");
            }
        }
    }
    (prices, page_count)
}

#[tokio::test]
async fn karpenters_two_queries_price_every_catalog_type() {
    let s = Server::start(world_with(1, |cfg| {
        cfg.catalog.on_demand_prices.insert("m5.large".into(), 0.125);
    }))
    .await;
    let client = pricing(&s);
    let (shared, shared_pages) = karpenter_query(&client, &KARPENTER_QUERIES[0]).await;
    let (metal, _) = karpenter_query(&client, &KARPENTER_QUERIES[1]).await;
    // Karpenter discards both answers when either is empty ("no on-demand pricing found").
    assert!(!shared.is_empty() && !metal.is_empty());
    assert!(shared_pages > 1, "the shared query spans pages");
    assert!(metal.keys().all(|n| n.contains(".metal")) && shared.keys().all(|n| !n.contains(".metal")));

    let catalog: BTreeMap<String, f64> = {
        let cloud = s.state.cloud();
        cloud.ec2.catalog.all().iter().map(|t| (t.name.clone(), t.on_demand_price)).collect()
    };
    let mut prices = shared;
    prices.extend(metal);
    assert_eq!(prices, catalog, "every catalog type priced once, metal included");
    assert_eq!(prices["m5.large"], 0.125, "the world's on-demand override reaches GetProducts");
    assert_eq!(prices["m5.metal"], 4.608);
}

#[tokio::test]
async fn other_regions_have_no_products() {
    let s = Server::start(world(1)).await;
    let out = pricing(&s)
        .get_products()
        .service_code("AmazonEC2")
        .filters(term("regionCode", "eu-west-1"))
        .send()
        .await
        .unwrap();
    assert!(out.price_list().is_empty());
}

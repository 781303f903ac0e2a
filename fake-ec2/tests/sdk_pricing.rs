//! On-demand prices through the real aws-sdk-pricing client, with Karpenter's filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_pricing::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_pricing::types::{Filter, FilterType};
use common::{Server, world};

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

#[tokio::test]
async fn get_products_pages_through_every_catalog_price() {
    let s = Server::start(world(1)).await;
    let client = pricing(&s);
    // Karpenter's query (pkg/providers/pricing/pricing.go).
    let pages = client
        .get_products()
        .service_code("AmazonEC2")
        .filters(term("regionCode", "us-west-2"))
        .filters(term("serviceCode", "AmazonEC2"))
        .filters(term("preInstalledSw", "NA"))
        .filters(term("operatingSystem", "Linux"))
        .filters(term("capacitystatus", "Used"))
        .filters(term("marketoption", "OnDemand"))
        .filters(term("tenancy", "Shared"))
        .filters(term("productFamily", "Compute Instance"))
        .max_results(100)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let docs: Vec<serde_json::Value> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().price_list().to_vec())
        .map(|s| serde_json::from_str(&s).unwrap())
        .collect();
    assert_eq!(docs.len(), 163);
    let m5 = docs.iter().find(|d| d["product"]["attributes"]["instanceType"] == "m5.large").unwrap();
    let usd: Vec<f64> = m5["terms"]["OnDemand"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|t| {
            t["priceDimensions"]
                .as_object()
                .unwrap()
                .values()
                .map(|d| d["pricePerUnit"]["USD"].as_str().unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(usd, [0.096]);
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

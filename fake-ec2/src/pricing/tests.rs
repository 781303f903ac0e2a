use std::collections::BTreeMap;

use super::products::{gib, short_price, size_factor, sku};
use super::*;
use crate::world::tests::test_world;

fn call(w: &World, op: &str, body: Value) -> (u16, Value) {
    let (status, text) = handle(w, op, body.to_string().as_bytes());
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The filters Karpenter sends for Linux on-demand prices (`fetchOnDemandPricing`), with the
/// tenancy and product family of one of its two queries.
fn karpenter_query(region: &str, tenancy: &str, family: &str) -> Value {
    let tm = |f: &str, v: &str| json!({ "Type": "TERM_MATCH", "Field": f, "Value": v });
    json!([
        tm("regionCode", region),
        tm("serviceCode", "AmazonEC2"),
        tm("preInstalledSw", "NA"),
        tm("operatingSystem", "Linux"),
        tm("capacitystatus", "Used"),
        tm("marketoption", "OnDemand"),
        tm("tenancy", tenancy),
        tm("productFamily", family),
    ])
}

fn karpenter_filters(region: &str) -> Value {
    karpenter_query(region, "Shared", "Compute Instance")
}

/// Karpenter's parse: `product.attributes.instanceType` and the OnDemand USD price.
fn parse_price(doc: &str) -> Option<(String, f64)> {
    let v: Value = serde_json::from_str(doc).ok()?;
    let name = v.pointer("/product/attributes/instanceType")?.as_str()?.to_owned();
    let terms = v.pointer("/terms/OnDemand")?.as_object()?;
    let term = terms.values().next()?;
    let dim = term.get("priceDimensions")?.as_object()?.values().next()?;
    let usd = dim.pointer("/pricePerUnit/USD")?.as_str()?.parse().ok()?;
    Some((name, usd))
}

/// Pages through one query as Karpenter's paginator does; returns the prices and the page count.
fn all_pages(w: &World, filters: &Value) -> (BTreeMap<String, f64>, usize) {
    let mut prices = BTreeMap::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({ "ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 100 });
        if let (Some(t), Some(o)) = (&token, body.as_object_mut()) {
            o.insert("NextToken".into(), json!(t));
        }
        let (status, v) = call(w, "AWSPriceListService.GetProducts", body);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["FormatVersion"], "aws_v1");
        let list = v["PriceList"].as_array().cloned().unwrap_or_default();
        assert!(list.len() <= 100);
        for doc in &list {
            let (name, usd) = doc.as_str().and_then(parse_price).unwrap_or_default();
            assert!(prices.insert(name, usd).is_none(), "no type twice");
        }
        pages += 1;
        token = v["NextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    (prices, pages)
}

#[test]
fn karpenters_two_queries_price_every_catalog_type_across_pages() {
    let w = test_world(1);
    let (shared, pages) = all_pages(&w, &karpenter_query("us-west-2", "Shared", "Compute Instance"));
    assert!(pages >= 2);
    let (metal, _) = all_pages(&w, &karpenter_query("us-west-2", "Dedicated", "Compute Instance (bare metal)"));
    assert!(!metal.is_empty() && metal.keys().all(|n| n.contains(".metal")), "{metal:?}");
    assert!(shared.keys().all(|n| !n.contains(".metal")));
    let mut prices = shared;
    prices.extend(metal);
    assert_eq!(prices.len(), w.catalog.all().len());
    for t in w.catalog.all() {
        assert_eq!(prices.get(&t.name).copied(), Some(t.on_demand_price), "{}", t.name);
    }
}

#[test]
fn on_demand_overrides_reach_the_price_list() {
    let mut cfg = test_world(1).cfg;
    cfg.catalog.on_demand_prices.insert("m5.metal".into(), 9.5);
    cfg.catalog.on_demand_prices.insert("m5.large".into(), 0.25);
    let w = World::new(cfg, 1, std::path::Path::new("."), 0).unwrap_or_else(|e| unreachable!("{e}"));
    let (shared, _) = all_pages(&w, &karpenter_query("us-west-2", "Shared", "Compute Instance"));
    let (metal, _) = all_pages(&w, &karpenter_query("us-west-2", "Dedicated", "Compute Instance (bare metal)"));
    assert_eq!((shared.get("m5.large"), metal.get("m5.metal")), (Some(&0.25), Some(&9.5)));
}

#[test]
fn product_document_has_the_real_shape() {
    let w = test_world(1);
    let filters = json!([{ "Type": "TERM_MATCH", "Field": "instanceType", "Value": "m5.large" }]);
    let (_, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": filters }));
    let list = v["PriceList"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1);
    let doc: Value = list[0].as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
    let sku = doc.pointer("/product/sku").and_then(Value::as_str).unwrap_or_default().to_owned();
    assert_eq!(sku.len(), 16);
    assert_eq!(doc["serviceCode"], "AmazonEC2");
    assert_eq!(doc.pointer("/product/productFamily"), Some(&json!("Compute Instance")));
    let attrs = &doc["product"]["attributes"];
    assert_eq!(attrs["location"], "US West (Oregon)");
    assert_eq!(attrs["memory"], "8 GiB");
    assert_eq!(attrs["vcpu"], "2");
    assert_eq!(attrs["usagetype"], "USW2-BoxUsage:m5.large");
    assert_eq!(attrs["physicalProcessor"], "Intel Xeon Platinum 8175");
    assert_eq!(attrs["normalizationSizeFactor"], "4");
    let term = &doc["terms"]["OnDemand"][format!("{sku}.JRTCKXETXF")];
    assert_eq!(term["offerTermCode"], "JRTCKXETXF");
    let dim = &term["priceDimensions"][format!("{sku}.JRTCKXETXF.6YS6EN2CT7")];
    assert_eq!(dim["pricePerUnit"]["USD"], "0.0960000000");
    assert_eq!(dim["unit"], "Hrs");
    assert_eq!(dim["description"], "$0.096 per On Demand Linux m5.large Instance Hour");
    // Deterministic: the same request gives the same bytes.
    let again = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": filters }));
    assert_eq!(again.1, v);
}

#[test]
fn metal_gpu_and_storage_products_say_so() {
    let w = test_world(1);
    let doc = |name: &str| {
        let filters = json!([{ "Type": "TERM_MATCH", "Field": "instanceType", "Value": name }]);
        let (_, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": filters }));
        v["PriceList"][0].as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or(Value::Null)
    };
    let metal = doc("m5.metal");
    assert_eq!(metal["product"]["productFamily"], "Compute Instance (bare metal)");
    assert_eq!(metal["product"]["attributes"]["tenancy"], "Dedicated");
    assert_eq!(metal["product"]["attributes"]["usagetype"], "USW2-DedicatedUsage:m5.metal");
    let g5 = doc("g5.48xlarge");
    assert_eq!(g5["product"]["attributes"]["gpu"], "8");
    assert_eq!(g5["product"]["attributes"]["storage"], "2 x 3800 NVMe SSD");
    assert_eq!(g5["product"]["attributes"]["instanceFamily"], "Accelerated computing");
    assert_eq!(doc("is4gen.medium")["product"]["attributes"]["instanceFamily"], "Storage optimized");
}

#[test]
fn filters_exclude_what_the_fake_does_not_sell() {
    let w = test_world(1);
    let mut dedicated = karpenter_filters("us-west-2");
    if let Some(a) = dedicated.as_array_mut() {
        a.push(json!({ "Type": "TERM_MATCH", "Field": "tenancy", "Value": "Dedicated" }));
    }
    let (_, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": dedicated }));
    assert_eq!(v["PriceList"], json!([]));
    let (_, v) =
        call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": karpenter_filters("eu-west-1") }));
    assert_eq!(v["PriceList"], json!([]));
    let (_, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonS3" }));
    assert_eq!(v["PriceList"], json!([]));
    let any = json!([{ "Type": "ANY_OF", "Field": "instanceType", "Value": "m5.large,c5.large" }]);
    let (_, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": any }));
    assert_eq!(v["PriceList"].as_array().map(Vec::len), Some(2));
}

#[test]
fn errors_use_the_json_envelope() {
    let w = test_world(1);
    let (status, v) = call(&w, "AWSPriceListService.ListPriceLists", json!({}));
    assert_eq!((status, v["__type"].as_str()), (400, Some("UnknownOperationException")));
    let bad = json!([{ "Type": "FUZZY", "Field": "instanceType", "Value": "m5" }]);
    let (status, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "Filters": bad }));
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidParameterException")));
    let (status, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "MaxResults": 0 }));
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidParameterException")));
    let (status, v) = call(&w, "GetProducts", json!({ "ServiceCode": "AmazonEC2", "NextToken": "not-hex" }));
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidNextTokenException")));
    let (status, v) = call(&w, "GetProducts", json!({}));
    assert_eq!((status, v["__type"].as_str()), (400, Some("InvalidParameterException")));
    let (status, text) = handle(&w, "GetProducts", b"{not json");
    assert_eq!(status, 400);
    assert!(text.contains("SerializationException"));
}

#[test]
fn describe_services_and_attribute_values() {
    let w = test_world(1);
    let (status, v) = call(&w, "DescribeServices", json!({ "ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1" }));
    assert_eq!(status, 200);
    assert_eq!(v["Services"][0]["ServiceCode"], "AmazonEC2");
    let names = v["Services"][0]["AttributeNames"].as_array().cloned().unwrap_or_default();
    assert!(names.contains(&json!("instanceType")) && names.contains(&json!("regionCode")));
    let (_, v) = call(&w, "GetAttributeValues", json!({ "ServiceCode": "AmazonEC2", "AttributeName": "tenancy" }));
    assert_eq!(v["AttributeValues"], json!([{ "Value": "Dedicated" }, { "Value": "Shared" }]));
    let (_, v) = call(
        &w,
        "GetAttributeValues",
        json!({ "ServiceCode": "AmazonEC2", "AttributeName": "instanceType", "MaxResults": 5 }),
    );
    assert_eq!(v["AttributeValues"].as_array().map(Vec::len), Some(5));
    assert!(v["NextToken"].is_string());
}

#[test]
fn skus_are_stable_and_distinct() {
    assert_eq!(sku("m5.large", "us-west-2"), sku("m5.large", "us-west-2"));
    assert_ne!(sku("m5.large", "us-west-2"), sku("m5.xlarge", "us-west-2"));
    assert_ne!(sku("m5.large", "us-west-2"), sku("m5.large", "us-east-1"));
    assert!(sku("c5.large", "us-west-2").bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    assert_eq!(short_price(0.096), "0.096");
    assert_eq!(short_price(2.04), "2.04");
    assert_eq!(short_price(0.0416), "0.0416");
    assert_eq!(size_factor("2xlarge"), "16");
    assert_eq!(gib(512), "0.5 GiB");
}

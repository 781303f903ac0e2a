//! The AWS Price List Query API (`AWSPriceListService`, AWS JSON 1.1) for EC2 on-demand prices.
//!
//! Karpenter learns on-demand prices from `GetProducts` (TERM_MATCH filters on `regionCode`,
//! `operatingSystem`, `tenancy`, ...) and treats a type without a price as unavailable, so every
//! catalog type gets one product document shaped like the real price list: Linux, shared tenancy,
//! no pre-installed software, capacity status `Used`, one OnDemand term priced from the catalog.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::ec2::catalog::{ebs_perf, region_location};
use crate::world::World;
use crate::world::catalog::InstanceType;
use crate::world::rng::{hash_str, mix};

pub const SERVICE_CODE: &str = "AmazonEC2";
const FORMAT_VERSION: &str = "aws_v1";
/// The OnDemand offer term and hourly rate codes every real EC2 on-demand price uses.
const ON_DEMAND_TERM: &str = "JRTCKXETXF";
const HOURLY_RATE: &str = "6YS6EN2CT7";
/// A fixed publication, so documents are byte-identical across runs.
const PUBLICATION_DATE: &str = "2025-12-01T00:00:00Z";
const VERSION: &str = "20251201000000";
const PRODUCT_FAMILY: &str = "Compute Instance";

/// An error as the JSON 1.1 protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> PricingError {
    PricingError { status: 400, kind: "InvalidParameterException", message: message.into() }
}

/// Answers one Price List request: `operation` is the `X-Amz-Target` (with or without the
/// `AWSPriceListService.` prefix), `body` the JSON request. Returns the HTTP status and JSON body.
pub fn handle(w: &World, operation: &str, body: &[u8]) -> (u16, String) {
    let op = operation.strip_prefix("AWSPriceListService.").unwrap_or(operation);
    let result = match op {
        "GetProducts" => parse_body(body).and_then(|r| get_products(w, &r)),
        "DescribeServices" => parse_body(body).and_then(|r| describe_services(w, &r)),
        "GetAttributeValues" => parse_body(body).and_then(|r| get_attribute_values(w, &r)),
        _ => Err(PricingError {
            status: 400,
            kind: "UnknownOperationException",
            message: format!("Unknown operation {operation}"),
        }),
    };
    match result {
        Ok(v) => (200, v.to_string()),
        Err(e) => (e.status, json!({ "__type": e.kind, "Message": e.message }).to_string()),
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, PricingError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(PricingError {
            status: 400,
            kind: "SerializationException",
            message: "Start of structure or map found where not expected.".into(),
        }),
    }
}

fn opt_str<'a>(req: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, PricingError> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("Input validation failed: {name} must be a string"))),
    }
}

fn max_results(req: &Map<String, Value>, max: u64, default: u64) -> Result<usize, PricingError> {
    match req.get("MaxResults") {
        None | Some(Value::Null) => Ok(default as usize),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=max).contains(&n) => Ok(n as usize),
            _ => Err(invalid(format!("Input validation failed: MaxResults must be between 1 and {max}"))),
        },
    }
}

fn check_format_version(req: &Map<String, Value>) -> Result<(), PricingError> {
    match opt_str(req, "FormatVersion")? {
        None => Ok(()),
        Some(FORMAT_VERSION) => Ok(()),
        Some(v) => Err(invalid(format!("Invalid FormatVersion: {v}"))),
    }
}

/// Pages `items` (already in key order) after the token's key; the token names the last key sent.
fn page<T>(
    items: Vec<T>,
    token: Option<&str>,
    size: usize,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), PricingError> {
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(hex::decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| PricingError {
            status: 400,
            kind: "InvalidNextTokenException",
            message: "The pagination token is invalid. Try again without a pagination token.".into(),
        })?),
    };
    let mut rest: Vec<T> = items.into_iter().filter(|i| after.as_ref().is_none_or(|a| key(i) > *a)).collect();
    let more = rest.len() > size;
    rest.truncate(size);
    let next = if more { rest.last().map(|l| hex::encode(key(l))) } else { None };
    Ok((rest, next))
}

// ---------------------------------------------------------------------------------------------
// Products

/// One price-list product: a catalog type in the world's region.
struct Product {
    sku: String,
    instance_type: String,
    price: f64,
    attributes: BTreeMap<&'static str, String>,
}

impl Product {
    fn field(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("productFamily") {
            return Some(PRODUCT_FAMILY);
        }
        if name.eq_ignore_ascii_case("sku") {
            return Some(&self.sku);
        }
        self.attributes.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The product document, serialised as the string the API puts in `PriceList`.
    fn document(&self) -> String {
        let term_key = format!("{}.{ON_DEMAND_TERM}", self.sku);
        let rate_code = format!("{term_key}.{HOURLY_RATE}");
        let dimension = json!({
            "unit": "Hrs",
            "endRange": "Inf",
            "description": format!("${} per On Demand Linux {} Instance Hour", short_price(self.price), self.instance_type),
            "appliesTo": [],
            "rateCode": rate_code,
            "beginRange": "0",
            "pricePerUnit": { "USD": format!("{:.10}", self.price) },
        });
        let term = json!({
            "priceDimensions": Value::Object(Map::from_iter([(rate_code, dimension)])),
            "sku": self.sku,
            "effectiveDate": PUBLICATION_DATE,
            "offerTermCode": ON_DEMAND_TERM,
            "termAttributes": {},
        });
        let attributes: Map<String, Value> =
            self.attributes.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
        json!({
            "product": { "productFamily": PRODUCT_FAMILY, "attributes": attributes, "sku": self.sku },
            "serviceCode": SERVICE_CODE,
            "terms": { "OnDemand": Value::Object(Map::from_iter([(term_key, term)])) },
            "version": VERSION,
            "publicationDate": PUBLICATION_DATE,
        })
        .to_string()
    }
}

/// `$0.096`, `$2.04`: the price as the description text writes it.
fn short_price(p: f64) -> String {
    let s = format!("{p:.4}");
    let t = s.trim_end_matches('0');
    match t.split_once('.') {
        Some((_, d)) if d.len() >= 2 => t.to_owned(),
        _ => format!("{p:.2}"),
    }
}

/// A 16-character SKU that depends only on the type and region.
fn sku(instance_type: &str, region: &str) -> String {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut h = mix(&[hash_str("sku"), hash_str(instance_type), hash_str(region)]);
    let mut out = String::with_capacity(16);
    for i in 0..16 {
        if i == 8 {
            h = mix(&[h, hash_str(instance_type)]);
        }
        out.push(char::from(ALPHABET[(h % 36) as usize]));
        h /= 36;
    }
    out
}

fn usage_prefix(region: &str) -> String {
    match region {
        "us-east-1" => String::new(),
        "us-east-2" => "USE2-".into(),
        "us-west-1" => "USW1-".into(),
        "us-west-2" => "USW2-".into(),
        "ca-central-1" => "CAN1-".into(),
        "eu-west-1" => "EU-".into(),
        "eu-west-2" => "EUW2-".into(),
        "eu-west-3" => "EUW3-".into(),
        "eu-central-1" => "EUC1-".into(),
        "eu-north-1" => "EUN1-".into(),
        "ap-south-1" => "APS3-".into(),
        "ap-northeast-1" => "APN1-".into(),
        "ap-northeast-2" => "APN2-".into(),
        "ap-southeast-1" => "APS1-".into(),
        "ap-southeast-2" => "APS2-".into(),
        "sa-east-1" => "SAE1-".into(),
        other => format!("{}-", other.to_uppercase()),
    }
}

fn physical_processor(t: &InstanceType) -> &'static str {
    match t.family.as_str() {
        "c5" => "Intel Xeon Platinum 8124M",
        "m5" | "r5" => "Intel Xeon Platinum 8175",
        "c5a" => "AMD EPYC 7R32",
        "m5a" | "r5a" => "AMD EPYC 7571",
        "c6i" | "m6i" | "r6i" => "Intel Xeon 8375C (Ice Lake)",
        "c6a" | "m6a" | "r6a" => "AMD EPYC 7R13 Processor",
        "c7i" | "m7i" | "r7i" => "Intel Xeon Scalable (Sapphire Rapids)",
        "c6g" | "m6g" | "r6g" | "t4g" => "AWS Graviton2 Processor",
        "c7g" | "m7g" | "r7g" => "AWS Graviton3 Processor",
        "t3" => "Intel Skylake E5 2686 v5",
        _ => match t.manufacturer() {
            "AWS" => "AWS Graviton Processor",
            "AMD" => "AMD EPYC Processor",
            _ => "Intel Xeon Family",
        },
    }
}

fn instance_family(t: &InstanceType) -> &'static str {
    match t.category.as_str() {
        "c" => "Compute optimized",
        "r" | "x" | "z" => "Memory optimized",
        "i" | "d" | "h" => "Storage optimized",
        "p" | "g" | "f" | "inf" | "trn" => "Accelerated computing",
        _ => "General purpose",
    }
}

/// EC2's normalization factor: a `large` counts 4 and each doubling doubles it.
fn size_factor(size: &str) -> String {
    let f = match size {
        "nano" => 0.25,
        "micro" => 0.5,
        "small" => 1.0,
        "medium" => 2.0,
        "large" => 4.0,
        "xlarge" => 8.0,
        s => s.strip_suffix("xlarge").and_then(|n| n.parse::<f64>().ok()).map_or(8.0, |n| n * 8.0),
    };
    if f.fract() == 0.0 { format!("{f:.0}") } else { format!("{f}") }
}

fn gib(mib: u64) -> String {
    let g = mib as f64 / 1024.0;
    if g.fract() == 0.0 { format!("{g:.0} GiB") } else { format!("{g} GiB") }
}

fn ghz(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0} GHz") } else { format!("{v} GHz") }
}

fn product(t: &InstanceType, region: &str) -> Product {
    let ebs = ebs_perf(t);
    let intel = t.manufacturer() == "Intel";
    let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_owned();
    let mut a: BTreeMap<&'static str, String> = BTreeMap::new();
    a.insert("availabilityzone", "NA".into());
    a.insert("capacitystatus", "Used".into());
    a.insert("classicnetworkingsupport", "false".into());
    a.insert("clockSpeed", ghz(t.clock_ghz()));
    a.insert("currentGeneration", yes_no(t.current_generation()));
    a.insert(
        "dedicatedEbsThroughput",
        if ebs.baseline_mbps < ebs.max_mbps {
            format!("Up to {} Mbps", ebs.max_mbps)
        } else {
            format!("{} Mbps", ebs.baseline_mbps)
        },
    );
    a.insert("ecu", "NA".into());
    a.insert("enhancedNetworkingSupported", "Yes".into());
    a.insert("gpuMemory", "NA".into());
    a.insert("instanceFamily", instance_family(t).into());
    a.insert("instanceType", t.name.clone());
    a.insert("intelAvx2Available", yes_no(intel));
    a.insert("intelAvxAvailable", yes_no(intel));
    a.insert("intelTurboAvailable", yes_no(intel));
    a.insert("licenseModel", "No License required".into());
    a.insert("location", region_location(region).unwrap_or(region).into());
    a.insert("locationType", "AWS Region".into());
    a.insert("marketoption", "OnDemand".into());
    a.insert("memory", gib(t.memory_mib));
    a.insert("networkPerformance", t.network_performance.clone());
    a.insert("normalizationSizeFactor", size_factor(&t.size));
    a.insert("operatingSystem", "Linux".into());
    a.insert("operation", "RunInstances".into());
    a.insert("physicalProcessor", physical_processor(t).into());
    a.insert("preInstalledSw", "NA".into());
    a.insert("processorArchitecture", "64-bit".into());
    match t.manufacturer() {
        "Intel" if t.burstable() => {
            a.insert("processorFeatures", "Intel AVX; Intel AVX2; Intel Turbo".into());
        }
        "Intel" => {
            a.insert("processorFeatures", "Intel AVX; Intel AVX2; Intel AVX512; Intel Turbo".into());
        }
        "AMD" => {
            a.insert("processorFeatures", "AVX; AVX2; AMD Turbo".into());
        }
        _ => {}
    }
    a.insert("regionCode", region.into());
    a.insert("servicecode", SERVICE_CODE.into());
    a.insert("servicename", "Amazon Elastic Compute Cloud".into());
    a.insert("storage", "EBS only".into());
    a.insert("tenancy", "Shared".into());
    a.insert("usagetype", format!("{}BoxUsage:{}", usage_prefix(region), t.name));
    a.insert("vcpu", t.vcpu.to_string());
    a.insert("vpcnetworkingsupport", "true".into());
    Product { sku: sku(&t.name, region), instance_type: t.name.clone(), price: t.on_demand_price, attributes: a }
}

/// Every product the world prices, in instance-type order.
fn products(w: &World) -> Vec<Product> {
    w.catalog.all().iter().map(|t| product(t, &w.cfg.region)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilterType {
    TermMatch,
    Equals,
    Contains,
    AnyOf,
    NoneOf,
}

struct Filter {
    kind: FilterType,
    field: String,
    value: String,
}

impl Filter {
    fn matches(&self, p: &Product) -> bool {
        let have = p.field(&self.field);
        let eq = |v: &str| have.is_some_and(|h| h.eq_ignore_ascii_case(v.trim()));
        match self.kind {
            FilterType::TermMatch | FilterType::Equals => eq(&self.value),
            FilterType::Contains => have.is_some_and(|h| h.to_lowercase().contains(&self.value.to_lowercase())),
            FilterType::AnyOf => self.value.split(',').any(eq),
            FilterType::NoneOf => !self.value.split(',').any(eq),
        }
    }
}

fn parse_filters(req: &Map<String, Value>) -> Result<Vec<Filter>, PricingError> {
    let list = match req.get("Filters") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("Input validation failed: Filters must be a list")),
    };
    if list.len() > 50 {
        return Err(invalid("Input validation failed: Filters can have at most 50 entries"));
    }
    let mut out = Vec::new();
    for f in list {
        let Value::Object(f) = f else {
            return Err(invalid("Input validation failed: a filter must be a structure"));
        };
        let get = |k: &str| f.get(k).and_then(Value::as_str);
        let (Some(kind), Some(field), Some(value)) = (get("Type"), get("Field"), get("Value")) else {
            return Err(invalid("Input validation failed: each filter needs Type, Field and Value"));
        };
        let kind = match kind {
            "TERM_MATCH" => FilterType::TermMatch,
            "EQUALS" => FilterType::Equals,
            "CONTAINS" => FilterType::Contains,
            "ANY_OF" => FilterType::AnyOf,
            "NONE_OF" => FilterType::NoneOf,
            other => return Err(invalid(format!("Invalid filter type: {other}"))),
        };
        out.push(Filter { kind, field: field.to_owned(), value: value.to_owned() });
    }
    Ok(out)
}

fn get_products(w: &World, req: &Map<String, Value>) -> Result<Value, PricingError> {
    let Some(service) = opt_str(req, "ServiceCode")? else {
        return Err(invalid("Input validation failed: ServiceCode is required"));
    };
    check_format_version(req)?;
    let filters = parse_filters(req)?;
    let size = max_results(req, 100, 100)?;
    let token = opt_str(req, "NextToken")?;
    let mut matching = if service == SERVICE_CODE { products(w) } else { Vec::new() };
    matching.retain(|p| filters.iter().all(|f| f.matches(p)));
    let (items, next) = page(matching, token, size, |p| p.instance_type.clone())?;
    let mut out = json!({
        "FormatVersion": FORMAT_VERSION,
        "PriceList": items.iter().map(Product::document).collect::<Vec<_>>(),
    });
    if let (Some(t), Some(o)) = (next, out.as_object_mut()) {
        o.insert("NextToken".into(), Value::String(t));
    }
    Ok(out)
}

/// Attribute names an EC2 product carries, for DescribeServices.
fn attribute_names(w: &World) -> Vec<String> {
    let sample = w.catalog.all().first().map(|t| product(t, &w.cfg.region));
    sample.map(|p| p.attributes.keys().map(|k| (*k).to_owned()).collect()).unwrap_or_default()
}

fn describe_services(w: &World, req: &Map<String, Value>) -> Result<Value, PricingError> {
    check_format_version(req)?;
    max_results(req, 100, 100)?;
    let service = opt_str(req, "ServiceCode")?;
    let services: Vec<Value> = if service.is_none_or(|s| s == SERVICE_CODE) {
        vec![json!({ "ServiceCode": SERVICE_CODE, "AttributeNames": attribute_names(w) })]
    } else {
        Vec::new()
    };
    Ok(json!({ "Services": services, "FormatVersion": FORMAT_VERSION }))
}

fn get_attribute_values(w: &World, req: &Map<String, Value>) -> Result<Value, PricingError> {
    let (Some(service), Some(name)) = (opt_str(req, "ServiceCode")?, opt_str(req, "AttributeName")?) else {
        return Err(invalid("Input validation failed: ServiceCode and AttributeName are required"));
    };
    let size = max_results(req, 10_000, 10_000)?;
    let token = opt_str(req, "NextToken")?;
    let mut values: Vec<String> = if service == SERVICE_CODE {
        products(w).iter().filter_map(|p| p.field(name).map(str::to_owned)).collect()
    } else {
        Vec::new()
    };
    values.sort();
    values.dedup();
    let (items, next) = page(values, token, size, String::clone)?;
    let mut out = json!({ "AttributeValues": items.iter().map(|v| json!({ "Value": v })).collect::<Vec<_>>() });
    if let (Some(t), Some(o)) = (next, out.as_object_mut()) {
        o.insert("NextToken".into(), Value::String(t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::tests::test_world;

    fn call(w: &World, op: &str, body: Value) -> (u16, Value) {
        let (status, text) = handle(w, op, body.to_string().as_bytes());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The filters Karpenter sends for shared-tenancy Linux on-demand prices.
    fn karpenter_filters(region: &str) -> Value {
        let tm = |f: &str, v: &str| json!({ "Type": "TERM_MATCH", "Field": f, "Value": v });
        json!([
            tm("regionCode", region),
            tm("serviceCode", "AmazonEC2"),
            tm("preInstalledSw", "NA"),
            tm("operatingSystem", "Linux"),
            tm("capacitystatus", "Used"),
            tm("marketoption", "OnDemand"),
            tm("tenancy", "Shared"),
            tm("productFamily", "Compute Instance"),
        ])
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

    #[test]
    fn karpenters_query_prices_every_catalog_type_across_pages() {
        let w = test_world(1);
        let mut prices = BTreeMap::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut body =
                json!({ "ServiceCode": "AmazonEC2", "Filters": karpenter_filters("us-west-2"), "MaxResults": 100 });
            if let (Some(t), Some(o)) = (&token, body.as_object_mut()) {
                o.insert("NextToken".into(), json!(t));
            }
            let (status, v) = call(&w, "AWSPriceListService.GetProducts", body);
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
        assert!(pages >= 2);
        assert_eq!(prices.len(), w.catalog.all().len());
        for t in w.catalog.all() {
            assert_eq!(prices.get(&t.name).copied(), Some(t.on_demand_price), "{}", t.name);
        }
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
        let (status, v) =
            call(&w, "DescribeServices", json!({ "ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1" }));
        assert_eq!(status, 200);
        assert_eq!(v["Services"][0]["ServiceCode"], "AmazonEC2");
        let names = v["Services"][0]["AttributeNames"].as_array().cloned().unwrap_or_default();
        assert!(names.contains(&json!("instanceType")) && names.contains(&json!("regionCode")));
        let (_, v) = call(&w, "GetAttributeValues", json!({ "ServiceCode": "AmazonEC2", "AttributeName": "tenancy" }));
        assert_eq!(v["AttributeValues"], json!([{ "Value": "Shared" }]));
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
}

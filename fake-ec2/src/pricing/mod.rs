//! The AWS Price List Query API (`AWSPriceListService`, AWS JSON 1.1) for EC2 on-demand prices.
//!
//! Karpenter learns on-demand prices from `GetProducts` (TERM_MATCH filters on `regionCode`,
//! `operatingSystem`, `tenancy`, ...) and treats a type without a price as unavailable, so every
//! catalog type gets one product document shaped like the real price list: Linux, no pre-installed
//! software, capacity status `Used`, one OnDemand term priced from the catalog (after the world's
//! `catalog.on_demand_prices`). Virtualised types are `Compute Instance` with `Shared` tenancy;
//! `.metal` types are `Compute Instance (bare metal)` with `Dedicated` tenancy, the two queries
//! Karpenter's pricing controller sends.

//! - [`products`]: the product documents, one per catalog type.

mod products;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use crate::world::World;

use products::{Product, product, products};

pub const SERVICE_CODE: &str = "AmazonEC2";
const FORMAT_VERSION: &str = "aws_v1";

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

/// Every Price List operation this server answers.
pub const ACTIONS: &[&str] = &["GetProducts", "DescribeServices", "GetAttributeValues"];

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

/// Attribute names any EC2 product carries, for DescribeServices.
fn attribute_names(w: &World) -> Vec<String> {
    let names: std::collections::BTreeSet<&'static str> =
        w.catalog.all().iter().flat_map(|t| product(t, &w.cfg.region).attributes.into_keys()).collect();
    names.into_iter().map(str::to_owned).collect()
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

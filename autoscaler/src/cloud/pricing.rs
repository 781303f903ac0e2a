//! On-demand prices from the Price List API and spot prices from the spot price history, as
//! Karpenter loads them (aws/karpenter-provider-aws `pkg/providers/pricing/pricing.go`).

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use aws_sdk_pricing::types::{Filter, FilterType};
use tracing::{debug, warn};

use super::errors::CloudError;
use crate::clock::SharedClock;

#[derive(Debug, Default, Clone)]
struct Tables {
    on_demand: BTreeMap<String, f64>,
    /// (instance type, zone) → the newest price and its time.
    spot: BTreeMap<(String, String), (f64, i64)>,
    /// Whether the spot price history was read once: until then every pool's spot price is its
    /// type's on-demand price, as Karpenter defaults it (`populateInitialSpotPricing`).
    spot_updated: bool,
}

#[derive(Debug)]
pub struct Pricing {
    ec2: aws_sdk_ec2::Client,
    pricing: aws_sdk_pricing::Client,
    region: String,
    clock: SharedClock,
    tables: RwLock<Tables>,
}

impl Pricing {
    pub fn new(ec2: aws_sdk_ec2::Client, pricing: aws_sdk_pricing::Client, region: &str, clock: SharedClock) -> Self {
        Self { ec2, pricing, region: region.to_owned(), clock, tables: RwLock::new(Tables::default()) }
    }

    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn on_demand(&self, instance_type: &str) -> Option<f64> {
        self.read().on_demand.get(instance_type).copied()
    }

    /// None when EC2 published no spot price for the pool: that offering is not available.
    /// Before the history was read once, the type's on-demand price (Karpenter's default): a spot
    /// launch need not wait for DescribeSpotPriceHistory to answer.
    pub fn spot(&self, instance_type: &str, zone: &str) -> Option<f64> {
        let tables = self.read();
        if !tables.spot_updated {
            return tables.on_demand.get(instance_type).copied();
        }
        tables.spot.get(&(instance_type.to_owned(), zone.to_owned())).map(|(p, _)| *p)
    }

    /// Whether any on-demand price is known (without them no offering is).
    pub fn knows_on_demand(&self) -> bool {
        !self.read().on_demand.is_empty()
    }

    /// Both tables, each on its own; a failure leaves that table's previous prices in place.
    pub async fn refresh(&self) -> Result<(), CloudError> {
        let on_demand = self.refresh_on_demand().await;
        let spot = self.refresh_spot().await;
        on_demand.and(spot).map(|_| ())
    }

    /// Karpenter's two GetProducts queries: shared tenancy, and dedicated for bare metal.
    pub async fn refresh_on_demand(&self) -> Result<usize, CloudError> {
        let mut prices = BTreeMap::new();
        for (tenancy, family) in [("Shared", "Compute Instance"), ("Dedicated", "Compute Instance (bare metal)")] {
            let mut req = self.pricing.get_products().service_code("AmazonEC2").max_results(100);
            for (field, value) in [
                ("regionCode", self.region.as_str()),
                ("serviceCode", "AmazonEC2"),
                ("preInstalledSw", "NA"),
                ("operatingSystem", "Linux"),
                ("capacitystatus", "Used"),
                ("marketoption", "OnDemand"),
                ("tenancy", tenancy),
                ("productFamily", family),
            ] {
                let filter = Filter::builder()
                    .r#type(FilterType::TermMatch)
                    .field(field)
                    .value(value)
                    .build()
                    .map_err(|e| CloudError::Invalid(e.to_string()))?;
                req = req.filters(filter);
            }
            let pages =
                req.into_paginator().send().try_collect().await.map_err(|e| CloudError::api("GetProducts", e))?;
            for doc in pages.iter().flat_map(|p| p.price_list()) {
                match parse_price_list_item(doc, self.currency()) {
                    Some((t, price)) => {
                        prices.entry(t).or_insert(price);
                    }
                    None => warn!(item_len = doc.len(), "skipping unparsable price list item"),
                }
            }
        }
        if prices.is_empty() {
            return Err(CloudError::Api {
                operation: "GetProducts",
                code: String::new(),
                message: format!("no on-demand prices for region {}", self.region),
            });
        }
        let n = prices.len();
        self.tables.write().unwrap_or_else(PoisonError::into_inner).on_demand = prices;
        debug!(count = n, region = %self.region, "updated on-demand pricing");
        Ok(n)
    }

    fn currency(&self) -> &'static str {
        if self.region.starts_with("cn-") { "CNY" } else { "USD" }
    }

    /// The newest price per (type, zone) in effect at `now`.
    pub async fn refresh_spot(&self) -> Result<usize, CloudError> {
        let start = aws_sdk_ec2::primitives::DateTime::from_millis(self.clock.utc_now().timestamp_millis());
        let pages = self
            .ec2
            .describe_spot_price_history()
            .product_descriptions("Linux/UNIX")
            .product_descriptions("Linux/UNIX (Amazon VPC)")
            .start_time(start)
            .max_results(2000)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| CloudError::api("DescribeSpotPriceHistory", e))?;
        let mut spot: BTreeMap<(String, String), (f64, i64)> = BTreeMap::new();
        for p in pages.iter().flat_map(|p| p.spot_price_history()) {
            let (Some(t), Some(z), Some(price)) = (p.instance_type(), p.availability_zone(), p.spot_price()) else {
                continue;
            };
            let Ok(price) = price.parse::<f64>() else { continue };
            let at = p.timestamp().map_or(0, |ts| ts.to_millis().unwrap_or(0));
            let entry = spot.entry((t.as_str().to_owned(), z.to_owned())).or_insert((price, at));
            if at > entry.1 {
                *entry = (price, at);
            }
        }
        if spot.is_empty() {
            return Err(CloudError::Api {
                operation: "DescribeSpotPriceHistory",
                code: String::new(),
                message: "no spot pricing found".into(),
            });
        }
        let n = spot.len();
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        tables.spot = spot;
        tables.spot_updated = true;
        drop(tables);
        debug!(count = n, "updated spot pricing");
        Ok(n)
    }
}

/// (instance type, hourly price) from one Price List JSON document; the lowest non-zero price
/// if a product has several dimensions.
pub fn parse_price_list_item(doc: &str, currency: &str) -> Option<(String, f64)> {
    let v: serde_json::Value = serde_json::from_str(doc).ok()?;
    let instance_type = v.pointer("/product/attributes/instanceType")?.as_str()?.to_owned();
    let terms = v.pointer("/terms/OnDemand")?.as_object()?;
    let price = terms
        .values()
        .filter_map(|t| t.get("priceDimensions")?.as_object())
        .flat_map(|dims| dims.values())
        .filter_map(|d| d.get("pricePerUnit")?.get(currency)?.as_str()?.parse::<f64>().ok())
        .filter(|p| *p > 0.0)
        .reduce(f64::min)?;
    Some((instance_type, price))
}

#[cfg(test)]
mod tests {
    use super::parse_price_list_item;

    #[test]
    fn parses_a_price_list_document() {
        let doc = r#"{"product":{"attributes":{"instanceType":"m5.large"}},"terms":{"OnDemand":{"X.JRTCKXETXF":{"priceDimensions":{"X.JRTCKXETXF.6YS6EN2CT7":{"pricePerUnit":{"USD":"0.0960000000"}}}}}}}"#;
        assert_eq!(parse_price_list_item(doc, "USD"), Some(("m5.large".to_owned(), 0.096)));
        assert_eq!(parse_price_list_item("{}", "USD"), None);
    }
}

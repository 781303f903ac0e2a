//! `DescribeSpotPriceHistory`: the pools' price paths over a window, newest first.

use super::super::error::Ec2Result;
use super::super::filters::{self, Filter, Filterable, many, one};
use super::super::pagination::{self, Limits};
use super::super::{Call, Ec2Ctx};
use crate::clock::{self, Millis};

pub(super) const DAY_MS: Millis = 86_400_000;

/// `DescribeSpotPriceHistory`: botocore sets no bounds and Karpenter asks for 2000, which EC2
/// accepts; pages default to 1000 rows.
const SPOT_LIMITS: Limits = Limits { min: 1, max: 10_000, default: Some(1000) };

/// The spot product descriptions the fake prices. Other operating systems have no spot market here.
const LINUX: &str = "Linux/UNIX";
const LINUX_VPC: &str = "Linux/UNIX (Amazon VPC)";

// Spot price history

struct SpotRow<'a> {
    instance_type: &'a str,
    zone: &'a str,
    zone_id: &'a str,
    description: &'static str,
    at: Millis,
    price: f64,
}

impl SpotRow<'_> {
    fn price_text(&self) -> String {
        format!("{:.6}", self.price)
    }

    /// Newest first, then type, zone and description: a key that sorts like the response.
    fn key(&self) -> String {
        format!("{:020}|{}|{}|{}", i64::MAX - self.at, self.instance_type, self.zone, self.description)
    }
}

impl Filterable for SpotRow<'_> {
    fn field(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "availability-zone" => one(self.zone),
            "availability-zone-id" => one(self.zone_id),
            "instance-type" => one(self.instance_type),
            "product-description" => one(self.description),
            "spot-price" => one(self.price_text()),
            // The documented form (`Wed Jan 01 00:00:00 UTC 2026`) and the ISO form the API returns.
            "timestamp" => {
                many([clock::to_datetime(self.at).format("%a %b %d %H:%M:%S UTC %Y").to_string(), clock::iso(self.at)])
            }
            _ => None,
        }
    }
}

/// Filters that depend only on the pool, so whole pools can be skipped before reading history.
const POOL_FILTERS: &[&str] = &["availability-zone", "availability-zone-id", "instance-type"];

pub fn describe_spot_price_history(cx: &mut Ec2Ctx<'_>, call: &Call<'_>) -> Ec2Result<String> {
    let (w, now) = (&*cx.world, cx.now);
    let p = &call.params;
    let types = p.strings("InstanceType")?;
    let asked = p.strings("ProductDescription")?;
    let zone_param = p.str("AvailabilityZone");
    let zone_id_param = p.str("AvailabilityZoneId");
    let start = p.time("StartTime")?;
    let end = p.time("EndTime")?;
    let fs = filters::parse(p)?;
    let sample = SpotRow { instance_type: "", zone: "", zone_id: "", description: LINUX, at: 0, price: 0.0 };
    filters::validate(&fs, &sample)?;
    pagination::page_size(p, SPOT_LIMITS)?;
    call.dry_run(w)?;

    // The window: EndTime defaults to now and never passes it; StartTime defaults to EndTime and
    // reaches back at most `history_days`. Karpenter sends StartTime = its own wall clock, which
    // may be ahead of world time: that still answers with the price in effect now.
    let earliest = now - w.pools.spot_config().history_days.max(0) * DAY_MS;
    let to = end.map_or(now, |t| t.timestamp_millis()).min(now);
    let from = start.map_or(to, |t| t.timestamp_millis()).clamp(earliest.min(to), to);

    let descriptions: Vec<&'static str> = if asked.is_empty() {
        vec![LINUX]
    } else {
        [LINUX, LINUX_VPC].into_iter().filter(|d| asked.contains(d)).collect()
    };
    let pool_fs: Vec<Filter> = fs.iter().filter(|f| POOL_FILTERS.contains(&f.name.as_str())).cloned().collect();

    let mut rows = Vec::new();
    if to >= earliest && !descriptions.is_empty() {
        for t in w.catalog.all().iter().filter(|t| types.is_empty() || types.contains(&t.name.as_str())) {
            for z in &w.cfg.zones {
                if zone_param.is_some_and(|want| want != z.name)
                    || zone_id_param.is_some_and(|want| want != z.id)
                    || !w.catalog.offered_in(&t.name, &z.name)
                {
                    continue;
                }
                let probe = SpotRow { instance_type: &t.name, zone: &z.name, zone_id: &z.id, ..sample };
                if !filters::matches(&pool_fs, &probe) {
                    continue;
                }
                let Some(pool) = w.pool_of(&t.name, &z.name) else {
                    continue;
                };
                for (at, price) in w.pools.spot_history(pool, from, to) {
                    for d in &descriptions {
                        let row = SpotRow {
                            instance_type: &t.name,
                            zone: &z.name,
                            zone_id: &z.id,
                            description: d,
                            at,
                            price,
                        };
                        if filters::matches(&fs, &row) {
                            rows.push(row);
                        }
                    }
                }
            }
        }
    }
    let mut keyed: Vec<(String, SpotRow<'_>)> = rows.into_iter().map(|r| (r.key(), r)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let page = pagination::paginate(keyed, p, SPOT_LIMITS, |(k, _)| k.clone())?;
    let mut x = call.writer();
    x.item_set("spotPriceHistorySet", &page.items, |x, (_, r)| {
        x.elem("instanceType", r.instance_type)
            .elem("productDescription", r.description)
            .elem("spotPrice", r.price_text())
            .elem("timestamp", clock::iso(r.at))
            .elem("availabilityZone", r.zone)
            .elem("availabilityZoneId", r.zone_id);
    });
    // EC2 sends an empty token on the last page of this call.
    x.elem("nextToken", page.next_token.as_deref().unwrap_or_default());
    Ok(call.finish(x))
}

// ---------------------------------------------------------------------------------------------

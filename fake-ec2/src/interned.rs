//! Serde for the few `&'static str` fields that state files carry (EC2 error codes, the names of
//! CreateFleet override fields): a string read back is interned, so each distinct one is leaked
//! once per process however often state is read.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serializer};

/// A `&'static str` field that state files carry.
pub type Static = &'static str;

static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The one `&'static str` for `s`.
pub fn intern(s: &str) -> &'static str {
    let mut set = INTERNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = set.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

pub fn serialize<S: Serializer>(v: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    Ok(intern(&String::deserialize(d)?))
}

/// The same for a list of (`&'static str`, value) pairs.
pub mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[(&'static str, String)], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(&'static str, String)>, D::Error> {
        let raw = Vec::<(String, String)>::deserialize(d)?;
        Ok(raw.into_iter().map(|(k, v)| (super::intern(&k), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_each_string_once() {
        let a = intern("InsufficientInstanceCapacity");
        let b = intern(&String::from("InsufficientInstanceCapacity"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(a, "InsufficientInstanceCapacity");
    }
}

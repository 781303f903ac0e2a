//! Seeded randomness: one independent ChaCha stream per subsystem, and pure hashes for values
//! that must not depend on the order of requests (spot price paths).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mixes words into a 64-bit seed (splitmix64 finalizer); stable across releases.
pub fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for w in words {
        h ^= *w;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

/// Stable 64-bit hash of a string (FNV-1a), for naming streams and pools.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A uniform draw in [0, 1) that depends only on its inputs.
pub fn unit(words: &[u64]) -> f64 {
    (mix(words) >> 11) as f64 / (1u64 << 53) as f64
}

/// The named random streams of a world. Each is seeded from (seed, name), so adding draws to
/// one subsystem never shifts another's.
#[derive(Debug, Clone)]
pub struct Streams {
    pub ids: ChaCha8Rng,
    pub request_ids: ChaCha8Rng,
    pub allocation: ChaCha8Rng,
    pub faults: ChaCha8Rng,
    /// SQS message ids and receipt handles.
    pub sqs: ChaCha8Rng,
    /// EventBridge event ids.
    pub events: ChaCha8Rng,
    /// Which spot instances the market reclaims.
    pub market: ChaCha8Rng,
    /// Which resources an FIS target's selection mode takes.
    pub fis: ChaCha8Rng,
    /// IAM unique ids (`AIPA…`, `AROA…`).
    pub iam: ChaCha8Rng,
}

impl Streams {
    pub fn new(seed: u64) -> Self {
        let s = |name: &str| ChaCha8Rng::seed_from_u64(mix(&[seed, hash_str(name)]));
        Self {
            ids: s("ids"),
            request_ids: s("request-ids"),
            allocation: s("allocation"),
            faults: s("faults"),
            sqs: s("sqs"),
            events: s("events"),
            market: s("market"),
            fis: s("fis"),
            iam: s("iam"),
        }
    }

    /// Each stream's name and position (words drawn), for a state file: with the seed, that is the
    /// whole of the streams.
    pub fn positions(&self) -> std::collections::BTreeMap<String, String> {
        self.named().into_iter().map(|(name, s)| (name.to_owned(), s.get_word_pos().to_string())).collect()
    }

    /// Moves every stream to the position [`Streams::positions`] gave (streams not named stay).
    pub fn set_positions(&mut self, positions: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
        for (name, s) in self.named_mut() {
            if let Some(p) = positions.get(name) {
                s.set_word_pos(p.parse().map_err(|_| format!("rng stream {name}: bad position {p}"))?);
            }
        }
        Ok(())
    }

    fn named(&self) -> [(&'static str, &ChaCha8Rng); 9] {
        [
            ("ids", &self.ids),
            ("request-ids", &self.request_ids),
            ("allocation", &self.allocation),
            ("faults", &self.faults),
            ("sqs", &self.sqs),
            ("events", &self.events),
            ("market", &self.market),
            ("fis", &self.fis),
            ("iam", &self.iam),
        ]
    }

    fn named_mut(&mut self) -> [(&'static str, &mut ChaCha8Rng); 9] {
        [
            ("ids", &mut self.ids),
            ("request-ids", &mut self.request_ids),
            ("allocation", &mut self.allocation),
            ("faults", &mut self.faults),
            ("sqs", &mut self.sqs),
            ("events", &mut self.events),
            ("market", &mut self.market),
            ("fis", &mut self.fis),
            ("iam", &mut self.iam),
        ]
    }

    /// `i-0123456789abcdef0`: EC2's long ids start with a 0 digit.
    pub fn hex_id(&mut self, prefix: &str, len: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(prefix.len() + 1 + len);
        out.push_str(prefix);
        out.push_str("-0");
        for _ in 1..len {
            out.push(HEX[(self.ids.next_u32() % 16) as usize] as char);
        }
        out
    }

    pub fn alnum_id(&mut self, prefix: &str, len: usize) -> String {
        const ALNUM: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = format!("{prefix}-");
        for _ in 0..len {
            out.push(ALNUM[(self.ids.next_u32() % 36) as usize] as char);
        }
        out
    }

    /// An IAM unique id: `prefix` (`AIPA`, `AROA`, …) and 17 upper-case letters and digits, as IAM
    /// writes them, from the `iam` stream.
    pub fn iam_id(&mut self, prefix: &str) -> String {
        const CHARS: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut out = prefix.to_owned();
        for _ in 0..17 {
            out.push(CHARS[(self.iam.next_u32() % 36) as usize] as char);
        }
        out
    }

    pub fn request_id(&mut self) -> String {
        let mut b = [0u8; 16];
        self.request_ids.fill_bytes(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let mut a = Streams::new(7);
        let mut b = Streams::new(7);
        assert_eq!(a.hex_id("i", 17), b.hex_id("i", 17));
        // Drawing request ids must not shift instance ids.
        let _ = a.request_id();
        assert_eq!(a.hex_id("i", 17), b.hex_id("i", 17));
        assert_ne!(Streams::new(8).hex_id("i", 17), Streams::new(7).hex_id("i", 17));
    }

    #[test]
    fn positions_restore_every_stream() -> Result<(), Box<dyn std::error::Error>> {
        let mut a = Streams::new(3);
        let _ = a.hex_id("i", 17);
        let _ = a.request_id();
        let _ = a.iam_id("AIPA");
        let mut b = Streams::new(3);
        b.set_positions(&a.positions())?;
        assert_eq!(a.hex_id("i", 17), b.hex_id("i", 17));
        assert_eq!(a.request_id(), b.request_id());
        assert_eq!(a.iam_id("AROA"), b.iam_id("AROA"));
        Ok(())
    }

    #[test]
    fn unit_is_in_range() {
        for i in 0..1000 {
            let u = unit(&[i]);
            assert!((0.0..1.0).contains(&u));
        }
    }
}

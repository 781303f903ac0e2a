//! Rendering byte and CPU amounts as Kubernetes quantities.

/// The largest binary unit that divides `bytes` exactly (`20Gi`, `674Mi`, `1536Ki`, `7`).
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [("Ti", 1u64 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Whole cores without a suffix, otherwise millicores.
pub fn format_millicores(m: u64) -> String {
    if m.is_multiple_of(1000) { (m / 1000).to_string() } else { format!("{m}m") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_bytes(20 << 30), "20Gi");
        assert_eq!(format_bytes(674 << 20), "674Mi");
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_millicores(1930), "1930m");
        assert_eq!(format_millicores(2000), "2");
    }
}

//! FNV-1a, 64 bits: fingerprints that are stored in the database (input
//! files, vulnerability curves), so they must stay the same across builds,
//! platforms and Rust versions, which `DefaultHasher` does not promise.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET)
    }
}

impl Fnv64 {
    /// The hash of `bytes` alone.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut h = Fnv64::default();
        h.write(bytes);
        h.finish()
    }

    /// Feeds bytes, as if appended to what came before.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.mix(b);
        }
    }

    /// Feeds one field and a separator after it, so ("ab", "c") and
    /// ("a", "bc") differ.
    pub fn write_field(&mut self, bytes: &[u8]) {
        self.write(bytes);
        self.mix(0xff);
    }

    pub fn finish(self) -> u64 {
        self.0
    }

    fn mix(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(PRIME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        let hash = |s: &str| Fnv64::of(s.as_bytes());
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fields_are_separated() {
        let fields = |a: &str, b: &str| {
            let mut h = Fnv64::default();
            h.write_field(a.as_bytes());
            h.write_field(b.as_bytes());
            h.finish()
        };
        assert_ne!(fields("ab", "c"), fields("a", "bc"));
    }
}

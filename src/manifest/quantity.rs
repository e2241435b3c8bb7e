//! Kubernetes resource quantities (`500m`, `2`, `512Mi`, `1Gi`, `1.5Gi`),
//! the subset jobs.yaml accepts for `cpu` and `memory`.
//!
//! Kubernetes' grammar is `<signedNumber><suffix>` with suffix a binary SI
//! (`Ki Mi Gi Ti Pi Ei`), a decimal SI (`n u m "" k M G T P E`) or a decimal
//! exponent (`e3`). jobs.yaml takes unsigned decimal numbers with a binary or
//! decimal SI suffix; the exponent form and signs are rejected (a quantity
//! written `1e3` or `+1` in a deploy manifest is a typo more often than
//! not), so everything accepted here is also a valid Kubernetes quantity.

/// A parsed, positive quantity, kept exactly as nano-units (1e-9) so that
/// `500m` and `0.5` compare equal without floating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: u128,
}

const SUFFIXES: &[(&str, u128)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

impl Quantity {
    /// Parses a quantity; the error says what is wrong in words an operator
    /// can act on.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        let bad = |why: &str| {
            format!(
                "{text:?} is not a Kubernetes quantity ({why}); write e.g. 250m, 1, 512Mi or 1Gi"
            )
        };
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        if number.is_empty() {
            return Err(bad("no number"));
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if frac_part.contains('.') {
            return Err(bad("more than one decimal point"));
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad("no digits"));
        }
        if frac_part.len() > 9 {
            return Err(bad("more than 9 decimal places"));
        }
        // Multiplier in nano-units per unit of the written number, and how
        // many nano-units one unit of the suffix is.
        let scale: u128 = match suffix {
            "" => 1_000_000_000,
            "n" => 1,
            "u" => 1_000,
            "m" => 1_000_000,
            s => match SUFFIXES.iter().find(|(name, _)| *name == s) {
                Some((_, mult)) => mult * 1_000_000_000,
                None => return Err(bad(&format!("unknown suffix {s:?}"))),
            },
        };
        let digits = format!("{int_part}{frac_part:0<9}");
        let fixed: u128 = digits.parse().map_err(|_| bad("the number is too large"))?;
        // fixed = value × 1e9; nanos = value × scale.
        let product = fixed
            .checked_mul(scale)
            .ok_or_else(|| bad("the number is too large"))?;
        if !product.is_multiple_of(1_000_000_000) {
            return Err(bad("finer than one nano-unit"));
        }
        let nanos = product / 1_000_000_000;
        if nanos == 0 {
            return Err(bad("must be greater than zero"));
        }
        Ok(Quantity { nanos })
    }

    /// CPU in millicores, when it is a whole number of them.
    pub fn millis(self) -> Option<u64> {
        self.nanos
            .is_multiple_of(1_000_000)
            .then(|| u64::try_from(self.nanos / 1_000_000).ok())
            .flatten()
    }

    /// Memory in bytes, when it is a whole number of them.
    pub fn bytes(self) -> Option<u64> {
        self.nanos
            .is_multiple_of(1_000_000_000)
            .then(|| u64::try_from(self.nanos / 1_000_000_000).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_spellings_are_equal() {
        let half = Quantity::parse("500m").unwrap();
        assert_eq!(Quantity::parse("0.5").unwrap(), half);
        assert_eq!(Quantity::parse(".5").unwrap(), half);
        assert_eq!(half.millis(), Some(500));
        assert_eq!(Quantity::parse("2").unwrap().millis(), Some(2000));
    }

    #[test]
    fn memory_suffixes() {
        assert_eq!(Quantity::parse("512Mi").unwrap().bytes(), Some(512 << 20));
        assert_eq!(Quantity::parse("1.5Gi").unwrap().bytes(), Some(3 << 29));
        assert_eq!(Quantity::parse("1G").unwrap().bytes(), Some(1_000_000_000));
        assert_eq!(
            Quantity::parse("128974848").unwrap().bytes(),
            Some(128974848)
        );
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for bad in [
            "", "Mi", "1 Gi", "1gi", "1GB", "-1", "+1", "1e3", "1..5", "0", "0Mi", "abc",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

//! Binary encoding of `double precision[]` values for COPY in one pass.
//!
//! tokio-postgres encodes a `Vec<Option<f64>>` element by element through
//! a generic writer (a length placeholder patched after each element); a
//! probability chunk sends millions of elements, and that was as much of
//! the job's CPU as the fits. This writes the same bytes (PostgreSQL's
//! `array_send` format) after reserving them once.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A one-dimensional `double precision[]` (lower bound 1); None is NULL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Float8Array(pub Vec<Option<f64>>);

impl ToSql for Float8Array {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let len = i32::try_from(self.0.len())?;
        let has_null = self.0.iter().any(Option::is_none);
        let size = self
            .0
            .iter()
            .map(|v| if v.is_some() { 12 } else { 4 })
            .sum::<usize>();
        out.reserve(20 + size);
        out.put_i32(1); // dimensions
        out.put_i32(i32::from(has_null));
        out.put_u32(Type::FLOAT8.oid());
        out.put_i32(len);
        out.put_i32(1); // lower bound
        // Elements written into the grown buffer with plain stores (BufMut's
        // put_* check the capacity on every call).
        let start = out.len();
        out.resize(start + size, 0);
        let mut at = start;
        for &v in &self.0 {
            match v {
                Some(x) => {
                    out[at..at + 4].copy_from_slice(&8_i32.to_be_bytes());
                    out[at + 4..at + 12].copy_from_slice(&x.to_be_bytes());
                    at += 12;
                }
                None => {
                    out[at..at + 4].copy_from_slice(&(-1_i32).to_be_bytes());
                    at += 4;
                }
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::FLOAT8_ARRAY
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_same_bytes_as_tokio_postgres() {
        for values in [
            vec![Some(1.5), None, Some(-0.0), Some(f64::MAX)],
            vec![Some(2.0)],
            vec![None, None],
            vec![],
        ] {
            let mut ours = BytesMut::new();
            let mut theirs = BytesMut::new();
            Float8Array(values.clone())
                .to_sql(&Type::FLOAT8_ARRAY, &mut ours)
                .unwrap();
            values.to_sql(&Type::FLOAT8_ARRAY, &mut theirs).unwrap();
            assert_eq!(ours, theirs, "{values:?}");
        }
    }
}

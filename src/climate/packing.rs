//! CF packed data (`scale_factor`, `add_offset`, `_Unsigned`, `valid_range`, fill values in
//! packed units) decoded the way xarray does, so thresholds compare at xarray's precision.
//!
//! xarray picks the decoded dtype from the attributes' types (`_choose_float_dtype`): both
//! `scale_factor` and `add_offset` of one float type → that type (float64 for 32-bit integers);
//! `add_offset` otherwise present → float64; only `scale_factor` → its type. It then computes
//! `data.astype(dtype); data *= scale_factor; data += add_offset` in that dtype. Fill values are
//! compared with the stored (packed) values, after `_Unsigned` reinterpretation. xarray ignores
//! `valid_range`; CF says values outside it are missing, so they are masked here.

use netcdf::AttributeValue;
use netcdf::types::{FloatType, IntType, NcVariableType};

use crate::hazard::{Precision, Sample};

/// How a variable is stored in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Storage {
    F32,
    F64,
    /// Integer of `bits` width; `unsigned` after `_Unsigned = "true"` or an unsigned type.
    Int {
        bits: u32,
        unsigned: bool,
    },
}

/// A scale or offset attribute with its stored float type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Coefficient {
    pub value: f64,
    pub precision: Precision,
}

/// Everything needed to turn stored values into physical values (NaN = missing).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoding {
    pub storage: Storage,
    pub scale: Option<Coefficient>,
    pub offset: Option<Coefficient>,
    /// Fill / missing values in stored units (after `_Unsigned`).
    pub fills: Vec<f64>,
    /// Valid range in stored units (after `_Unsigned`); values outside are missing.
    pub valid: (f64, f64),
    /// Precision of the decoded values (see the module doc).
    pub precision: Precision,
}

impl Decoding {
    /// True when values are read as raw numbers and converted (packed or integer storage).
    pub fn is_packed(&self) -> bool {
        self.scale.is_some() || self.offset.is_some()
    }

    pub fn has_valid_range(&self) -> bool {
        self.valid != (f64::NEG_INFINITY, f64::INFINITY)
    }

    /// Decodes stored values (read as f64, exact for every supported storage type) into `out`.
    pub fn decode_into<T: Sample + FromF64>(&self, raw: &[f64], out: &mut Vec<T>) {
        out.clear();
        out.reserve(raw.len());
        let wrap = match self.storage {
            Storage::Int {
                bits,
                unsigned: true,
            } if bits < 64 => Some((1u64 << bits) as f64),
            _ => None,
        };
        let (lo, hi) = self.valid;
        let scale = self.scale.map(|c| c.value);
        let offset = self.offset.map(|c| c.value);
        for &r in raw {
            let r = match wrap {
                Some(w) if r < 0.0 => r + w,
                _ => r,
            };
            if r.is_nan() || self.fills.contains(&r) || r < lo || r > hi {
                out.push(T::from_f64(f64::NAN));
                continue;
            }
            out.push(T::decode(r, scale, offset));
        }
    }
}

/// Conversion of stored values into a decoded sample type, with the rounding of that type.
pub(crate) trait FromF64: Sized {
    fn from_f64(v: f64) -> Self;
    /// `astype(Self); *= scale; += offset`, each step rounded to `Self`.
    fn decode(raw: f64, scale: Option<f64>, offset: Option<f64>) -> Self;
}

impl FromF64 for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn decode(raw: f64, scale: Option<f64>, offset: Option<f64>) -> Self {
        let mut v = raw as f32;
        if let Some(s) = scale {
            v *= s as f32;
        }
        if let Some(o) = offset {
            v += o as f32;
        }
        v
    }
}

impl FromF64 for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn decode(raw: f64, scale: Option<f64>, offset: Option<f64>) -> Self {
        let mut v = raw;
        if let Some(s) = scale {
            v *= s;
        }
        if let Some(o) = offset {
            v += o;
        }
        v
    }
}

/// Reads the packing attributes of a variable. `attr` returns an attribute's value if present.
/// Errors are messages naming the attribute and what is wrong with it.
pub(crate) fn decoding_for(
    vartype: &NcVariableType,
    mut attr: impl FnMut(&str) -> Result<Option<AttributeValue>, String>,
) -> Result<Decoding, String> {
    let unsigned_attr = match attr("_Unsigned")? {
        None => false,
        Some(AttributeValue::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(format!(
                    "packed data: _Unsigned is \"{other}\" (expected \"true\" or \"false\")"
                ));
            }
        },
        Some(other) => {
            return Err(format!(
                "packed data: _Unsigned is {other:?} (expected the text \"true\" or \"false\")"
            ));
        }
    };
    let storage = match vartype {
        NcVariableType::Float(FloatType::F32) => Storage::F32,
        NcVariableType::Float(FloatType::F64) => Storage::F64,
        NcVariableType::Int(t) => {
            let (bits, unsigned) = match t {
                IntType::I8 => (8, false),
                IntType::U8 => (8, true),
                IntType::I16 => (16, false),
                IntType::U16 => (16, true),
                IntType::I32 => (32, false),
                IntType::U32 => (32, true),
                IntType::I64 | IntType::U64 => {
                    return Err(format!(
                        "unsupported data type {t:?}: 64-bit integers cannot be decoded exactly \
                         (expected float, double, or packed 8/16/32-bit integers)"
                    ));
                }
            };
            Storage::Int {
                bits,
                unsigned: unsigned || unsigned_attr,
            }
        }
        other => {
            return Err(format!(
                "unsupported data type {other:?} (expected float, double, or packed 8/16/32-bit \
                 integers with scale_factor/add_offset)"
            ));
        }
    };
    let mut coefficient = |name: &str| -> Result<Option<Coefficient>, String> {
        let Some(v) = attr(name)? else {
            return Ok(None);
        };
        let (value, precision) = match v {
            AttributeValue::Float(x) => (f64::from(x), Precision::F32),
            AttributeValue::Double(x) => (x, Precision::F64),
            AttributeValue::Floats(x) if x.len() == 1 => (f64::from(x[0]), Precision::F32),
            AttributeValue::Doubles(x) if x.len() == 1 => (x[0], Precision::F64),
            other => {
                return Err(format!(
                    "packed data: {name} is {other:?} (expected one float or double number)"
                ));
            }
        };
        if !value.is_finite() {
            return Err(format!(
                "packed data: {name} is {value} (expected a finite number)"
            ));
        }
        Ok(Some(Coefficient { value, precision }))
    };
    let scale = coefficient("scale_factor")?;
    let offset = coefficient("add_offset")?;
    if let Some(s) = scale
        && s.value == 0.0
    {
        return Err("packed data: scale_factor is 0, every value would decode to the same".into());
    }
    let packed = scale.is_some() || offset.is_some();
    if matches!(storage, Storage::Int { .. }) && !packed {
        return Err(
            "integer data without scale_factor/add_offset: not packed CF data (expected float, \
             double, or packed integers)"
                .into(),
        );
    }
    let raw_value = |x: f64| match storage {
        Storage::Int {
            bits,
            unsigned: true,
        } if x < 0.0 => x + (1u64 << bits) as f64,
        Storage::F32 => f64::from(x as f32),
        _ => x,
    };
    let mut fills = Vec::new();
    for name in ["_FillValue", "missing_value"] {
        if let Some(v) = attr(name)? {
            let numbers = numbers(&v)
                .ok_or_else(|| format!("{name} is {v:?} (expected a number in stored units)"))?;
            for f in numbers {
                let f = raw_value(f);
                if !f.is_nan() && !fills.contains(&f) {
                    fills.push(f);
                }
            }
        }
    }
    let mut valid = (f64::NEG_INFINITY, f64::INFINITY);
    if let Some(v) = attr("valid_range")? {
        match numbers(&v).as_deref() {
            Some(&[lo, hi]) if lo <= hi => valid = (raw_value(lo), raw_value(hi)),
            _ => {
                return Err(format!(
                    "valid_range is {v:?} (expected two numbers, min <= max, in stored units)"
                ));
            }
        }
    }
    for (name, is_min) in [("valid_min", true), ("valid_max", false)] {
        if let Some(v) = attr(name)? {
            let x = match numbers(&v).as_deref() {
                Some(&[x]) if !x.is_nan() => raw_value(x),
                _ => {
                    return Err(format!(
                        "{name} is {v:?} (expected one number in stored units)"
                    ));
                }
            };
            if is_min {
                valid.0 = x;
            } else {
                valid.1 = x;
            }
        }
    }
    if valid.0 > valid.1 {
        return Err(format!(
            "valid_min {} is above valid_max {} (stored units)",
            valid.0, valid.1
        ));
    }
    let precision = match (scale, offset) {
        (Some(s), Some(o)) if s.precision == o.precision => match storage {
            Storage::Int { bits: 32, .. } => Precision::F64,
            _ => s.precision,
        },
        (_, Some(_)) => Precision::F64,
        (Some(s), None) => s.precision,
        (None, None) => match storage {
            Storage::F64 => Precision::F64,
            _ => Precision::F32,
        },
    };
    Ok(Decoding {
        storage,
        scale,
        offset,
        fills,
        valid,
        precision,
    })
}

fn numbers(v: &AttributeValue) -> Option<Vec<f64>> {
    use AttributeValue as A;
    Some(match v.clone() {
        A::Uchar(x) => vec![f64::from(x)],
        A::Uchars(x) => x.into_iter().map(f64::from).collect(),
        A::Schar(x) => vec![f64::from(x)],
        A::Schars(x) => x.into_iter().map(f64::from).collect(),
        A::Ushort(x) => vec![f64::from(x)],
        A::Ushorts(x) => x.into_iter().map(f64::from).collect(),
        A::Short(x) => vec![f64::from(x)],
        A::Shorts(x) => x.into_iter().map(f64::from).collect(),
        A::Uint(x) => vec![f64::from(x)],
        A::Uints(x) => x.into_iter().map(f64::from).collect(),
        A::Int(x) => vec![f64::from(x)],
        A::Ints(x) => x.into_iter().map(f64::from).collect(),
        A::Ulonglong(x) => vec![x as f64],
        A::Ulonglongs(x) => x.into_iter().map(|v| v as f64).collect(),
        A::Longlong(x) => vec![x as f64],
        A::Longlongs(x) => x.into_iter().map(|v| v as f64).collect(),
        A::Float(x) => vec![f64::from(x)],
        A::Floats(x) => x.into_iter().map(f64::from).collect(),
        A::Double(x) => vec![x],
        A::Doubles(x) => x,
        A::Str(_) | A::Strs(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoding(t: NcVariableType, attrs: &[(&str, AttributeValue)]) -> Result<Decoding, String> {
        decoding_for(&t, |n| {
            Ok(attrs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
        })
    }

    #[test]
    fn precision_follows_xarray() {
        use AttributeValue as A;
        let i16t = NcVariableType::Int(IntType::I16);
        let i32t = NcVariableType::Int(IntType::I32);
        let p = |t: NcVariableType, a: &[(&str, A)]| decoding(t, a).unwrap().precision;
        let sf32 = ("scale_factor", A::Float(0.01));
        let sf64 = ("scale_factor", A::Double(0.01));
        let ao32 = ("add_offset", A::Float(273.15));
        let ao64 = ("add_offset", A::Double(273.15));
        assert_eq!(
            p(i16t.clone(), &[sf32.clone(), ao32.clone()]),
            Precision::F32
        );
        assert_eq!(p(i16t.clone(), &[sf64.clone(), ao64]), Precision::F64);
        assert_eq!(p(i16t.clone(), std::slice::from_ref(&sf32)), Precision::F32);
        assert_eq!(p(i16t.clone(), &[sf64, ao32.clone()]), Precision::F64);
        assert_eq!(p(i16t, std::slice::from_ref(&ao32)), Precision::F64);
        assert_eq!(p(i32t.clone(), std::slice::from_ref(&sf32)), Precision::F32);
        assert_eq!(p(i32t, &[sf32.clone(), ao32]), Precision::F64);
        let f64t = NcVariableType::Float(FloatType::F64);
        assert_eq!(p(f64t, &[sf32]), Precision::F32);
    }

    #[test]
    fn decodes_like_numpy() {
        use AttributeValue as A;
        let d = decoding(
            NcVariableType::Int(IntType::I16),
            &[
                ("scale_factor", A::Float(0.01)),
                ("add_offset", A::Float(273.15)),
                ("_FillValue", A::Short(-32767)),
                ("valid_range", A::Shorts(vec![-30000, 30000])),
            ],
        )
        .unwrap();
        let mut out: Vec<f32> = Vec::new();
        d.decode_into(&[1.0, -32767.0, 30001.0, -30000.0], &mut out);
        assert_eq!(out[0], 1f32 * 0.01f32 + 273.15f32);
        assert!(out[1].is_nan() && out[2].is_nan());
        assert_eq!(out[3], -30000f32 * 0.01f32 + 273.15f32);
    }

    #[test]
    fn unsigned_reinterprets_stored_values_and_fills() {
        use AttributeValue as A;
        let d = decoding(
            NcVariableType::Int(IntType::I16),
            &[
                ("_Unsigned", A::Str("true".into())),
                ("scale_factor", A::Double(0.5)),
                ("_FillValue", A::Short(-1)),
            ],
        )
        .unwrap();
        let mut out: Vec<f64> = Vec::new();
        d.decode_into(&[-2.0, -1.0, 3.0], &mut out);
        assert_eq!(out[0], 65534.0 * 0.5);
        assert!(out[1].is_nan());
        assert_eq!(out[2], 1.5);
    }

    #[test]
    fn bad_attributes_are_named() {
        use AttributeValue as A;
        let i16t = NcVariableType::Int(IntType::I16);
        let e = decoding(i16t.clone(), &[("scale_factor", A::Str("0.01".into()))]).unwrap_err();
        assert!(e.contains("scale_factor") && e.contains("packed"), "{e}");
        let e = decoding(i16t.clone(), &[("scale_factor", A::Float(0.0))]).unwrap_err();
        assert!(e.contains("scale_factor is 0"), "{e}");
        let e = decoding(i16t.clone(), &[]).unwrap_err();
        assert!(e.contains("integer data without scale_factor"), "{e}");
        let e = decoding(
            i16t,
            &[
                ("scale_factor", A::Float(1.0)),
                ("valid_range", A::Shorts(vec![5, 1])),
            ],
        )
        .unwrap_err();
        assert!(e.contains("valid_range"), "{e}");
    }
}

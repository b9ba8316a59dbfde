//! `Numeric`: an exact decimal as stored in a NUMERIC column, and its mapping
//! to PostgreSQL `NUMERIC(p, s)` and to SQLite `decimal_text`.
//!
//! sea-orm maps a bare `Decimal` to SQLite `REAL` and reads it back through an
//! `f64`, so `1234567890123.4567` would return as `1234567890123.457`. Money
//! must stay exact on the embedded default too, so every decimal column of the
//! schema uses this type instead:
//!
//! - **writes** bind a `Decimal`: PostgreSQL receives a `NUMERIC`, SQLite a
//!   decimal string (sea-query's SQLite binder renders decimals as text), which
//!   a column declared `decimal_text` (TEXT affinity) keeps byte for byte;
//! - **reads** take a `Decimal` where the driver has one (PostgreSQL) and
//!   otherwise parse the stored text (SQLite), never passing through `f64`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};
use serde::{Deserialize, Serialize};

/// An exact decimal stored in a database column: money amounts, exchange
/// rates and tax rates.
///
/// It serialises as a JSON string (`"19.99"`), never as a float.
///
/// ```
/// use billing_domain::Numeric;
/// use rust_decimal::Decimal;
///
/// let price = Numeric::from(Decimal::new(1999, 2));
/// assert_eq!(serde_json::to_string(&price).unwrap(), "\"19.99\"");
/// assert_eq!(price.get(), Decimal::new(1999, 2));
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Numeric(pub Decimal);

impl Numeric {
    /// Zero.
    pub const ZERO: Self = Self(Decimal::ZERO);

    /// The decimal value.
    #[must_use]
    pub const fn get(self) -> Decimal {
        self.0
    }
}

impl From<Decimal> for Numeric {
    fn from(value: Decimal) -> Self {
        Self(value)
    }
}

impl From<Numeric> for Decimal {
    fn from(value: Numeric) -> Self {
        value.0
    }
}

impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Numeric {
    type Err = rust_decimal::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `from_str_exact` refuses values that would lose digits instead of
        // rounding them away.
        Decimal::from_str_exact(s.trim()).map(Self)
    }
}

impl From<Numeric> for Value {
    fn from(value: Numeric) -> Self {
        Value::Decimal(Some(value.0))
    }
}

impl TryGetable for Numeric {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        match Decimal::try_get_by(res, idx) {
            Ok(value) => Ok(Self(value)),
            Err(TryGetError::Null(column)) => Err(TryGetError::Null(column)),
            // SQLite holds the decimal as text, which the `Decimal` getter
            // (an `f64` read there) refuses as a type mismatch.
            Err(TryGetError::DbErr(decimal_err)) => {
                let text = String::try_get_by(res, idx).map_err(|text_err| match text_err {
                    TryGetError::Null(column) => TryGetError::Null(column),
                    TryGetError::DbErr(_) => TryGetError::DbErr(decimal_err),
                })?;
                text.parse().map_err(|e| {
                    TryGetError::DbErr(DbErr::Type(format!(
                        "column {idx:?} holds {text:?}, which is not an exact decimal: {e}"
                    )))
                })
            }
        }
    }
}

impl ValueType for Numeric {
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "sea-query's Value is foreign and its variants depend on features; only two can hold a decimal"
    )]
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        match v {
            Value::Decimal(Some(d)) => Ok(Self(d)),
            Value::String(Some(s)) => s.parse().map_err(|_| ValueTypeErr),
            _ => Err(ValueTypeErr),
        }
    }

    fn type_name() -> String {
        "Numeric".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::Decimal
    }

    fn column_type() -> ColumnType {
        ColumnType::Decimal(Some((19, 4)))
    }
}

impl Nullable for Numeric {
    fn null() -> Value {
        Value::Decimal(None)
    }
}

impl sea_orm::IntoActiveValue<Numeric> for Numeric {
    fn into_active_value(self) -> sea_orm::ActiveValue<Numeric> {
        sea_orm::ActiveValue::Set(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_and_refuses_lossy_text() {
        let n: Numeric = "1234567890123.4567".parse().unwrap();
        assert_eq!(n.to_string(), "1234567890123.4567");
        assert!("1.2.3".parse::<Numeric>().is_err());
        assert!("".parse::<Numeric>().is_err());
    }

    #[test]
    fn value_round_trip() {
        let n = Numeric(Decimal::new(12_345, 3));
        let v: Value = n.into();
        assert_eq!(<Numeric as ValueType>::try_from(v).unwrap(), n);
        assert_eq!(
            <Numeric as ValueType>::try_from(Value::String(Some("12.345".into()))).unwrap(),
            n
        );
    }

    #[test]
    fn serialises_as_string() {
        let n = Numeric(Decimal::new(1050, 2));
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"10.50\"");
        let back: Numeric = serde_json::from_str("\"10.50\"").unwrap();
        assert_eq!(back, n);
    }
}

//! Strict scalars for the raw mirror. YAML lets a number be written as text (`"1"`) and a
//! boolean as `"no"`; serde's typed entry points accept both, so a quoted typo would be read
//! as something else. Every integer and boolean of the format goes through these visitors,
//! which look at what the YAML value *is* (`deserialize_any`) and refuse anything else with a
//! serde `invalid_type`/`invalid_value` error that `topology::describe` words for the user.
//! Ranges are not checked here but in `validate.rs`, where every problem is collected.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// A whole number written as a YAML integer (not text, not a float, not a boolean).
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: TryFrom<u64>> Visitor<'_> for V<T> {
            type Value = Whole<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(WHOLE)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Whole<T>, E> {
                T::try_from(v)
                    .map(Whole)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &TOO_LARGE))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Whole<T>, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &NOT_NEGATIVE)),
                }
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Whole<T>, E> {
                Err(E::invalid_value(Unexpected::Other("a number"), &TOO_LARGE))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Whole<T>, E> {
                match u128::try_from(v) {
                    Ok(u) => self.visit_u128(u),
                    Err(_) => Err(E::invalid_value(
                        Unexpected::Other("a number"),
                        &NOT_NEGATIVE,
                    )),
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `true` or `false` written as a YAML boolean (not the text `"no"`).
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(FLAG)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a whole number is called in messages (`describe` recognises these words).
pub const WHOLE: &str = "a whole number";
pub const FLAG: &str = "true or false";
const TOO_LARGE: &str = "a whole number up to 4294967295";
const NOT_NEGATIVE: &str = "a whole number, not negative";

// `deserialize_with` adapters for the raw mirror's field types.

pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Whole::<u32>::deserialize(d).map(|w| w.0)
}

pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Option::<Whole<u32>>::deserialize(d).map(|o| o.map(|w| w.0))
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Option::<Flag>::deserialize(d).map(|o| o.map(|f| f.0))
}

pub fn opt_u32_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u32>>, D::Error> {
    Option::<Vec<Whole<u32>>>::deserialize(d)
        .map(|o| o.map(|v| v.into_iter().map(|w| w.0).collect()))
}

//! Canonical JSON written straight from a `Serialize` value.
//!
//! The journal stores each payload as compact JSON with object keys sorted
//! by their UTF-8 bytes (see [`crate::event`]). [`to_canonical_json`]
//! writes that form without building a `serde_json::Value` first: each
//! object's members are written into a scratch buffer as they come, then
//! copied out in key order. Numbers, strings and escaping are serde_json's
//! own. Event payloads, JSON values ([`crate::event::canonical_json`]) and
//! the desired-state digests of a spec are all written this way; the unit
//! tests and a property test over every event type hold it to a form built
//! by hand from a `serde_json::Value`.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::Error;

/// `value` as canonical JSON.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut out = Vec::with_capacity(256);
    value.serialize(Canon { out: &mut out })?;
    // Only serde_json's output and whole UTF-8 keys were written.
    String::from_utf8(out).map_err(|e| ser::Error::custom(e.to_string()))
}

/// Writes one value to `out`.
struct Canon<'a> {
    out: &'a mut Vec<u8>,
}

impl Canon<'_> {
    fn plain<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, value)
    }
}

/// An object being written: its members in arrival order, each a key and
/// the range of its value's text in `values`.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Wraps the object as `{"variant":{…}}` (struct variants).
    variant: Option<&'static str>,
    members: Vec<(Cow<'static, str>, usize, usize)>,
    values: Vec<u8>,
    pending: Option<String>,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>, variant: Option<&'static str>, len: usize) -> Self {
        Self {
            out,
            variant,
            members: Vec::with_capacity(len),
            values: Vec::with_capacity(len * 24),
            pending: None,
        }
    }

    fn member<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Error> {
        let start = self.values.len();
        value.serialize(Canon {
            out: &mut self.values,
        })?;
        self.members.push((key, start, self.values.len()));
        Ok(())
    }

    fn finish(mut self) -> Result<(), Error> {
        // A later member with the same key replaces the earlier one, as in
        // a `serde_json::Map`: the stable sort keeps arrival order among
        // equal keys, and only the last of each run is written.
        self.members.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(variant) = self.variant {
            self.out.push(b'{');
            serde_json::to_writer(&mut *self.out, variant)?;
            self.out.push(b':');
        }
        self.out.push(b'{');
        let mut first = true;
        for (i, (key, start, end)) in self.members.iter().enumerate() {
            if self.members.get(i + 1).is_some_and(|next| &next.0 == key) {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *self.out, key.as_ref())?;
            self.out.push(b':');
            self.out.extend_from_slice(&self.values[*start..*end]);
        }
        self.out.push(b'}');
        if self.variant.is_some() {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// An array being written.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    /// Wraps the array as `{"variant":[…]}` (tuple variants).
    variant: bool,
    first: bool,
}

impl<'a> Array<'a> {
    fn new(out: &'a mut Vec<u8>, variant: Option<&'static str>) -> Result<Self, Error> {
        if let Some(variant) = variant {
            out.push(b'{');
            serde_json::to_writer(&mut *out, variant)?;
            out.push(b':');
        }
        out.push(b'[');
        Ok(Self {
            out,
            variant: variant.is_some(),
            first: true,
        })
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Canon { out: self.out })
    }

    fn finish(self) -> Result<(), Error> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// The methods of a serializer for booleans, integers and characters, each
/// giving `$body` for its value `$v`.
macro_rules! scalars {
    ($ok:ty, |$self:ident, $v:ident| $body:expr) => {
        scalars!(@each $ok, $self, $v, $body,
            serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
            serialize_i32: i32, serialize_i64: i64, serialize_i128: i128,
            serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
            serialize_u64: u64, serialize_u128: u128, serialize_char: char);
    };
    (@each $ok:ty, $self:ident, $v:ident, $body:expr, $($name:ident: $t:ty),*) => {
        $( fn $name($self, $v: $t) -> Result<$ok, Error> { $body } )*
    };
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    scalars!((), |self, v| self.plain(&v));

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // Through a `Value`, as the reference form is: non-finite numbers
        // become null there.
        self.plain(&serde_json::Value::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.plain(&serde_json::Value::from(v))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.plain(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.plain(v)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.plain(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        serde_json::to_writer(&mut *self.out, variant)?;
        self.out.push(b':');
        value.serialize(Canon { out: self.out })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, Error> {
        Array::new(self.out, None)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Array<'a>, Error> {
        Array::new(self.out, None)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Array<'a>, Error> {
        Array::new(self.out, None)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Array<'a>, Error> {
        Array::new(self.out, Some(variant))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, None, len.unwrap_or(4)))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, None, len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Object<'a>, Error> {
        Ok(Object::new(self.out, Some(variant), len))
    }
}

/// The four ways serde writes an array, each element by element.
macro_rules! array {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Array<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

array!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.pending = Some(key.serialize(KeyText)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .pending
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("map value without a key"))?;
        self.member(Cow::Owned(key), value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// The two ways serde writes a struct, field by field.
macro_rules! object {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Object<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.member(Cow::Borrowed(key), value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

object!(SerializeStruct, SerializeStructVariant);

/// A map key as the text serde_json gives it: strings as they are, numbers
/// and booleans in decimal and as `true`/`false`; anything else is an error
/// there too.
struct KeyText;

fn key_error() -> Error {
    <Error as ser::Error>::custom("key must be a string")
}

impl ser::Serializer for KeyText {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    scalars!(String, |self, v| Ok(v.to_string()));

    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde::Serialize;

    use super::to_canonical_json;
    use crate::event::canonical_json_by_hand;

    /// The reference: through a `Value`, then sorted by hand.
    fn reference<T: Serialize>(v: &T) -> String {
        canonical_json_by_hand(&serde_json::to_value(v).unwrap())
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        Newtype(u8),
        Tuple(u8, String),
        Struct { zeta: bool, alpha: Option<u8> },
    }

    #[derive(Serialize)]
    struct Inner {
        z: String,
        a: Vec<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        m: Option<i64>,
    }

    #[derive(Serialize)]
    struct Outer {
        zulu: Inner,
        alpha: HashMap<String, Inner>,
        mike: BTreeMap<u16, String>,
        bravo: Option<Kind>,
        kinds: Vec<Kind>,
        unit: (),
        tuple: (u8, &'static str),
        bytes: Vec<u8>,
        float: f64,
        nan: f64,
        text: String,
        #[serde(rename = "Élan")]
        elan: char,
        #[serde(rename = "_")]
        underscore: bool,
    }

    fn outer(text: String, keys: Vec<String>) -> Outer {
        Outer {
            zulu: Inner {
                z: text.clone(),
                a: vec![3, 1, 2],
                m: None,
            },
            alpha: keys
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        k,
                        Inner {
                            z: i.to_string(),
                            a: vec![],
                            m: Some(-(i as i64)),
                        },
                    )
                })
                .collect(),
            mike: [(10, "ten".to_owned()), (9, "nine".to_owned())].into(),
            bravo: Some(Kind::Struct {
                zeta: true,
                alpha: None,
            }),
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(7),
                Kind::Tuple(1, "x\"y".to_owned()),
            ],
            unit: (),
            tuple: (1, "t"),
            bytes: vec![0, 255],
            float: 1.5e-7,
            nan: f64::NAN,
            text,
            elan: 'é',
            underscore: false,
        }
    }

    #[test]
    fn every_shape_serde_can_give_matches_the_reference() {
        let v = outer(
            "quote \" backslash \\ newline \n control \u{1} emoji 🦀".to_owned(),
            vec!["b".into(), "a".into(), "é".into(), "Z".into(), "".into()],
        );
        let text = to_canonical_json(&v).unwrap();
        assert_eq!(text, reference(&v));
        // And it is sorted: a key that sorts first comes first.
        assert!(text.starts_with("{\"_\":false,"), "{text}");
    }

    #[test]
    fn a_map_key_that_is_not_a_string_or_number_is_refused_as_serde_json_refuses_it() {
        let m: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(to_canonical_json(&m).is_err());
        assert!(serde_json::to_value(&m).is_err());
    }

    proptest! {
        #[test]
        fn any_text_and_keys_match_the_reference(
            text in any::<String>(),
            keys in proptest::collection::vec(any::<String>(), 0..8),
        ) {
            let v = outer(text, keys);
            prop_assert_eq!(to_canonical_json(&v).unwrap(), reference(&v));
        }
    }
}

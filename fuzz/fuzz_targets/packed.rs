//! Packed collection values (the bytes a record carries for a hash, list, set or sorted
//! set): what `types::valid` accepts must decode, and a decoded value must encode to
//! bytes that are valid and decode to the same value.
//!
//! Input: byte 0 picks the type; the rest is the packed bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use terrace::store::Kind;
use terrace::store::types;

fuzz_target!(|data: &[u8]| {
    let Some((&tag, packed)) = data.split_first() else {
        return;
    };
    let Some(kind) = Kind::from_tag(tag % 5) else {
        return;
    };
    let valid = types::valid(kind, packed);
    let decoded = types::decode(kind, packed);
    if !valid {
        return;
    }
    let Some(value) = decoded else {
        panic!("valid {} bytes do not decode", kind.name());
    };
    let mut out = Vec::new();
    assert!(types::encode(&value, &mut out), "a collection encodes");
    assert!(
        types::valid(kind, &out),
        "an encoded {} is not valid",
        kind.name()
    );
    assert_eq!(
        types::decode(kind, &out).as_ref(),
        Some(&value),
        "round trip"
    );
});

//! Smoke test: the generated tables compile and answer for core.
mod common;
#[path = "../../src/fields.rs"]
#[allow(dead_code)]
mod fields;
#[path = "../../src/generated/mod.rs"]
#[allow(dead_code)]
mod generated;
use generated::*;

#[test]
fn core_names() {
    assert_eq!(request_name(0, 1), Some("CreateWindow"));
    assert_eq!(request_has_reply(0, 16), Some(true));
    assert_eq!(
        ext_by_xname("RENDER").map(|i| EXTENSIONS[i].header),
        Some("render")
    );
    let _ = common::ext("xproto");
}

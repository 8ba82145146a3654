//! Fuzz the `.gws` session-file decoder: arbitrary bytes flow into `from_bytes` and
//! `header_from_bytes`, which must return an error or a session, never panic or allocate
//! without bound. A decoded session must re-encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = winsession::header_from_bytes(data);
    if let Ok(s) = winsession::from_bytes(data) {
        let bytes = winsession::to_bytes(&s).expect("a decoded session encodes");
        let again = winsession::from_bytes(&bytes).expect("a re-encoded session decodes");
        assert_eq!(again, s);
        let _ = winsession::to_json(&s);
    }
});

//! cargo-fuzz target for the GUIEVICT wire decoders: arbitrary bytes flow into the request
//! decoder (server side) and the reply decoders (client side) in both byte orders; nothing may
//! panic, and whatever decodes must survive an encode/decode round trip unchanged.
#![no_main]

use guievict_ext_proto as proto;
use libfuzzer_sys::fuzz_target;
use proto::ByteOrder;

fuzz_target!(|data: &[u8]| {
    for order in [ByteOrder::Lsb, ByteOrder::Msb] {
        let _ = proto::decode_request(data, order);
        if let Ok(v) = proto::decode_query_version_reply(data, order) {
            let again = proto::encode_query_version_reply(&v, order);
            assert_eq!(proto::decode_query_version_reply(&again, order), Ok(v));
        }
        if let Ok(ev) = proto::decode_client_notify(data, 64, order) {
            let again = proto::encode_client_notify(64, &ev, order);
            assert_eq!(proto::decode_client_notify(&again, 64, order), Ok(ev));
        }
        if let Ok(rep) = proto::decode_get_resources_reply(data, order) {
            let again = proto::encode_get_resources_reply(&rep, order);
            assert_eq!(proto::decode_get_resources_reply(&again, order), Ok(rep));
        }
        if let Ok(rep) = proto::decode_get_active_grabs_reply(data, order) {
            let again = proto::encode_get_active_grabs_reply(&rep, order);
            assert_eq!(proto::decode_get_active_grabs_reply(&again, order), Ok(rep));
        }
    }
});

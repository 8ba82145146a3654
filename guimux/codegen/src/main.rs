//! guimux-codegen: reads `/usr/share/xcb/*.xml` (xcb-proto) and writes guimux's generated
//! protocol tables. XML in, Rust source out.
fn main() {}

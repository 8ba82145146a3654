//! Rust emission: the protocol model flows in, one Rust source file per xcb-proto module flows
//! out — the walker functions [`crate::walker`] writes for each message with a server-specific
//! field, and the module's dispatch tables (request, reply, request info, event, XGE event,
//! error kind), whose arms call a walker, return `Ok(())` for messages without such a field,
//! or say `Unsupported`. Per-module coverage counts flow out beside the source.

use crate::analysis::Analysis;
use crate::model::{Item, Module, TypeDef, TypeRef};
use crate::walker::{walker, MsgKind, Unsup};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Coverage counters for one module.
#[derive(Default, Debug, Clone)]
pub struct Coverage {
    pub requests: (usize, usize),
    pub replies: (usize, usize),
    pub events: (usize, usize),
    /// (message, reason) for each Unsupported message.
    pub unsupported: Vec<(String, String)>,
}

/// One dispatch arm.
enum Arm {
    Ok,
    Call(String),
    Unsupported,
}

fn arm_text(a: &Arm, what: &str) -> String {
    match a {
        Arm::Ok => "Ok(())".to_string(),
        Arm::Call(f) => format!("{f}(m, o, rw, {what:?})"),
        Arm::Unsupported => format!("Err(WalkError::Unsupported {{ what: {what:?} }})"),
    }
}

fn fn_header(name: &str) -> String {
    format!(
        "fn {name}(m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter, w: &'static str) -> Result<(), WalkError> {{\n"
    )
}

/// The walker functions of one module, written as its messages are visited, and the messages
/// that could not be walked (in visiting order).
struct Walkers<'a, 'p> {
    an: &'a Analysis<'p>,
    m: &'a Module,
    fns: String,
    unsupported: Vec<(String, String)>,
}

impl Walkers<'_, '_> {
    /// Write the walker `fn_name` for message `name` (if it needs one) and count it in
    /// `counter` (supported, unsupported); the arm that dispatches to it.
    fn gen(
        &mut self,
        name: &str,
        kind: MsgKind,
        items: &[Item],
        counter: &mut (usize, usize),
        fn_name: &str,
    ) -> Arm {
        match walker(self.an, self.m, name, kind, items) {
            Ok(None) => {
                counter.0 += 1;
                Arm::Ok
            }
            Ok(Some(body)) => {
                counter.0 += 1;
                self.fns.push_str(&fn_header(fn_name));
                self.fns.push_str(&body);
                self.fns.push_str("}\n\n");
                Arm::Call(fn_name.to_string())
            }
            Err(Unsup(why)) => {
                counter.1 += 1;
                self.unsupported.push((name.to_string(), why));
                Arm::Unsupported
            }
        }
    }
}

/// The dispatch arms of one module: (code, arm text); events also carry their name.
#[derive(Default)]
struct Arms {
    request: Vec<(u8, String)>,
    reply: Vec<(u8, String)>,
    info: Vec<(u8, String)>,
    event: Vec<(u16, String, String)>,
    generic_event: Vec<(u16, String)>,
}

/// Emit the whole Rust file for a module.
pub fn module_file(an: &Analysis, m: &Module, header_line: &str) -> (String, Coverage) {
    let mut w = Walkers {
        an,
        m,
        fns: String::new(),
        unsupported: Vec::new(),
    };
    let mut cov = Coverage::default();
    let mut arms = Arms::default();
    request_arms(&mut w, &mut cov, &mut arms);
    event_arms(&mut w, &mut cov, &mut arms);
    cov.unsupported = w.unsupported;

    let h = &m.header;
    let mut s = String::new();
    s.push_str(header_line);
    let _ = writeln!(s, "//! Walkers for xcb-proto module `{h}`.\n");
    if !w.fns.is_empty() {
        s.push_str("use super::rt::*;\n");
    }
    if w.fns.contains("special::") {
        s.push_str("use super::special;\n");
    }
    s.push_str("use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};\n\n");
    s.push_str(&w.fns);
    request_dispatch(&mut s, h, &arms);
    event_dispatch(&mut s, h, &arms);
    error_dispatch(&mut s, m);
    (s, cov)
}

/// Phase 1: a walker (or none) for each request and its reply; their dispatch arms and the
/// request-info arms (name, whether a reply follows).
fn request_arms(w: &mut Walkers, cov: &mut Coverage, arms: &mut Arms) {
    let m = w.m;
    let h = &m.header;
    let is_ext = h != "xproto";
    for r in &m.requests {
        let kind = if is_ext {
            MsgKind::ExtRequest
        } else {
            MsgKind::CoreRequest
        };
        let what = format!("{h}:{}", r.name);
        let a = w.gen(
            &r.name,
            kind,
            &r.items,
            &mut cov.requests,
            &format!("rq_{}", r.name),
        );
        arms.request.push((r.opcode, arm_text(&a, &what)));
        arms.info.push((
            r.opcode,
            format!("Some(({:?}, {}))", r.name, r.reply.is_some()),
        ));
        if let Some(rep) = &r.reply {
            let name = format!("{}Reply", r.name);
            let what = format!("{h}:{name}");
            let a = w.gen(
                &name,
                MsgKind::Reply,
                rep,
                &mut cov.replies,
                &format!("rp_{}", r.name),
            );
            arms.reply.push((r.opcode, arm_text(&a, &what)));
        }
    }
}

/// Phase 2: a walker (or none) for each event; copies share the walker of their original.
/// Their dispatch arms, XGE events apart.
fn event_arms(w: &mut Walkers, cov: &mut Coverage, arms: &mut Arms) {
    let m = w.m;
    let h = &m.header;
    let mut ev_fn: HashMap<String, Arm> = HashMap::new();
    for e in &m.events {
        if h == "present" && e.name == "Generic" && !e.xge {
            continue;
        }
        let base = e.copy_of.clone().unwrap_or_else(|| e.name.clone());
        let what = format!("{h}:{}", e.name);
        let kind = if e.xge {
            MsgKind::GenericEvent
        } else {
            MsgKind::Event { seq: !e.no_seq }
        };
        let a = match ev_fn.get(&base) {
            Some(Arm::Ok) => {
                cov.events.0 += 1;
                Arm::Ok
            }
            Some(Arm::Call(f)) => {
                cov.events.0 += 1;
                Arm::Call(f.clone())
            }
            Some(Arm::Unsupported) => {
                cov.events.1 += 1;
                w.unsupported
                    .push((e.name.clone(), format!("copy of {base}")));
                Arm::Unsupported
            }
            None => {
                let a = w.gen(
                    &e.name,
                    kind,
                    &e.items,
                    &mut cov.events,
                    &format!("ev_{}", e.name),
                );
                let copy = match &a {
                    Arm::Ok => Arm::Ok,
                    Arm::Call(f) => Arm::Call(f.clone()),
                    Arm::Unsupported => Arm::Unsupported,
                };
                ev_fn.insert(e.name.clone(), copy);
                a
            }
        };
        if e.xge {
            arms.generic_event.push((e.number, arm_text(&a, &what)));
        } else {
            arms.event
                .push((e.number, e.name.clone(), arm_text(&a, &what)));
        }
    }
}

/// The request, reply and request-info dispatch functions.
fn request_dispatch(s: &mut String, h: &str, arms: &Arms) {
    let _ = writeln!(s, "pub(super) fn request(op: u8, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match op {{");
    for (op, a) in &arms.request {
        let _ = writeln!(s, "        {op} => {a},");
    }
    let _ = writeln!(s, "        _ => Err(WalkError::Unknown {{ family: \"request\", ext: {h:?}, code: op }}),\n    }}\n}}\n");
    let _ = writeln!(s, "pub(super) fn reply(op: u8, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match op {{");
    for (op, a) in &arms.reply {
        let _ = writeln!(s, "        {op} => {a},");
    }
    let _ = writeln!(s, "        _ => Err(WalkError::Unknown {{ family: \"reply\", ext: {h:?}, code: op }}),\n    }}\n}}\n");
    let _ = writeln!(
        s,
        "pub(super) fn request_info(op: u8) -> Option<(&'static str, bool)> {{\n    match op {{"
    );
    for (op, a) in &arms.info {
        let _ = writeln!(s, "        {op} => {a},");
    }
    let _ = writeln!(s, "        _ => None,\n    }}\n}}\n");
}

/// The event and XGE event dispatch functions.
fn event_dispatch(s: &mut String, h: &str, arms: &Arms) {
    let _ = writeln!(s, "pub(super) fn event(code: u8, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match code {{");
    if h == "xkb" {
        // XKB allocates one event code; byte 1 (xkbType) selects the event, and xcb-proto's
        // event numbers are these xkbType values.
        let _ = writeln!(s, "        0 => match m.get(1).copied() {{");
        for (n, _, a) in &arms.event {
            let _ = writeln!(s, "            Some({n}) => {a},");
        }
        let _ = writeln!(s, "            _ => Err(WalkError::Unknown {{ family: \"event\", ext: {h:?}, code }}),\n        }},");
    } else {
        for (n, _, a) in &arms.event {
            let _ = writeln!(s, "        {n} => {a},");
        }
    }
    let _ = writeln!(s, "        _ => Err(WalkError::Unknown {{ family: \"event\", ext: {h:?}, code }}),\n    }}\n}}\n");
    let _ = writeln!(s, "pub(super) fn generic_event(evtype: u16, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match evtype {{");
    for (n, a) in &arms.generic_event {
        let _ = writeln!(s, "        {n} => {a},");
    }
    let _ = writeln!(
        s,
        "        _ => Err(WalkError::Unsupported {{ what: \"{h}:GenericEvent\" }}),\n    }}\n}}\n"
    );
}

/// The error-kind function: which errors carry a server-specific value, and of what kind.
fn error_dispatch(s: &mut String, m: &Module) {
    let h = &m.header;
    let _ = writeln!(
        s,
        "pub(super) fn error_kind(code: u8) -> Option<Kind> {{\n    match code {{"
    );
    let mut err_arms = Vec::new();
    for (num, name) in &m.errors {
        if *num < 0 {
            continue;
        }
        let base = name.strip_prefix("Bad").unwrap_or(name).to_uppercase();
        let k = if h == "xproto" && base == "ATOM" {
            Some("Kind::Atom".to_string())
        } else {
            let t = TypeRef {
                module: h.clone(),
                name: base.clone(),
            };
            match m.types.get(&base) {
                Some(TypeDef::Prim { kind: Some(k), .. }) => {
                    let _ = t;
                    Some(k.rust())
                }
                _ => None,
            }
        };
        if let Some(k) = k {
            err_arms.push((*num, k));
        }
    }
    err_arms.sort();
    for (n, k) in err_arms {
        let _ = writeln!(s, "        {n} => Some({k}),");
    }
    let _ = writeln!(s, "        _ => None,\n    }}\n}}");
}

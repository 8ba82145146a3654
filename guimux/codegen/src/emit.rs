//! Rust emission: the protocol model flows in, one Rust source file per xcb-proto module flows
//! out. Each message whose layout contains a server-specific field becomes one walker function
//! that moves a byte cursor `p` through the message and calls the rewriter for each such field;
//! messages without one dispatch straight to `Ok(())`.
//!
//! Layouts are emitted as straight-line code. Structs are inlined (so `<paramref>` and sumof
//! references resolve to plain local variables); lists become loops; switches become `if`s.
//! Whenever the rest of a layout holds nothing server-specific, emission stops: the walker never
//! needs to understand the tail of a message it would not change.

use crate::model::{Case, Expr, Item, Module, Protocol, TypeDef, TypeRef};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// Why a message cannot be walked by generated code.
#[derive(Debug, Clone)]
pub struct Unsup(pub String);

type R<T> = Result<T, Unsup>;

fn unsup<T>(why: impl Into<String>) -> R<T> {
    Err(Unsup(why.into()))
}

/// Hand-written knowledge the XML cannot express.
pub mod special {
    /// A list that a hand-written walker in `special.rs` handles: returns the call expression.
    pub fn list_walker(module: &str, msg: &str, list: &str) -> Option<&'static str> {
        match (module, msg, list) {
            ("render", "CompositeGlyphs8", "glyphcmds") => {
                Some("special::glyph_items(m, p, 1, o, rw, w)?")
            }
            ("render", "CompositeGlyphs16", "glyphcmds") => {
                Some("special::glyph_items(m, p, 2, o, rw, w)?")
            }
            ("render", "CompositeGlyphs32", "glyphcmds") => {
                Some("special::glyph_items(m, p, 4, o, rw, w)?")
            }
            _ => None,
        }
    }

    /// A union whose member is selected by a field that precedes it: (discriminator field,
    /// member index for each discriminator value).
    pub fn union_discriminator(
        module: &str,
        union: &str,
    ) -> Option<(&'static str, &'static [(u32, usize)])> {
        match (module, union) {
            // RandR Notify: subCode selects the member, in xcb-proto's member order
            // (CrtcChange, OutputChange, OutputProperty, ProviderChange, ProviderProperty,
            // ResourceChange, Lease), which is the order of the Notify enum.
            ("randr", "NotifyData") => Some((
                "subCode",
                &[(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)],
            )),
            // XKB key actions: the first byte (SAType) selects the member; members are in
            // SAType order (NoAction = 0 … DeviceValuator = 20). "@0" = byte 0 of the union.
            ("xkb", "Action") => Some((
                "@0",
                &[
                    (0, 0),
                    (1, 1),
                    (2, 2),
                    (3, 3),
                    (4, 4),
                    (5, 5),
                    (6, 6),
                    (7, 7),
                    (8, 8),
                    (9, 9),
                    (10, 10),
                    (11, 11),
                    (12, 12),
                    (13, 13),
                    (14, 14),
                    (15, 15),
                    (16, 16),
                    (17, 17),
                    (18, 18),
                    (19, 19),
                    (20, 20),
                ],
            )),
            // XKB key behaviors: the first byte (BehaviorType) selects the member
            // (Default 0 … Overlay2 4, Permament* 0x81 … 0x84; member 0 is "common").
            ("xkb", "Behavior") => Some((
                "@0",
                &[
                    (0, 1),
                    (1, 2),
                    (2, 3),
                    (3, 4),
                    (4, 5),
                    (129, 6),
                    (130, 7),
                    (131, 8),
                    (132, 9),
                ],
            )),
            _ => None,
        }
    }
}

/// Per-protocol analysis caches.
pub struct Analysis<'p> {
    pub proto: &'p Protocol,
    interesting: RefCell<HashMap<TypeRef, bool>>,
}

impl<'p> Analysis<'p> {
    pub fn new(proto: &'p Protocol) -> Self {
        Analysis {
            proto,
            interesting: RefCell::new(HashMap::new()),
        }
    }

    pub fn type_interesting(&self, t: &TypeRef) -> bool {
        if let Some(v) = self.interesting.borrow().get(t) {
            return *v;
        }
        // Guard against recursive types.
        self.interesting.borrow_mut().insert(t.clone(), false);
        let v = match self.proto.lookup(t) {
            Some(TypeDef::Prim { kind, .. }) => kind.is_some(),
            Some(TypeDef::Struct { items, .. }) => {
                items.iter().any(|i| self.item_interesting(i, "", ""))
            }
            Some(TypeDef::Union { members }) => {
                members.iter().any(|i| self.item_interesting(i, "", ""))
            }
            Some(TypeDef::EventStruct) => true,
            Some(TypeDef::Alias(_)) | None => false,
        };
        self.interesting.borrow_mut().insert(t.clone(), v);
        v
    }

    pub fn item_interesting(&self, it: &Item, module: &str, msg: &str) -> bool {
        match it {
            Item::Pad(_) | Item::Align(_) => false,
            Item::Field { ty, .. } => self.type_interesting(ty),
            Item::List { ty, name, .. } => {
                special::list_walker(module, msg, name).is_some() || self.type_interesting(ty)
            }
            Item::Switch { cases, .. } => cases.iter().any(|c| {
                c.items
                    .iter()
                    .any(|i| self.item_interesting(i, module, msg))
            }),
        }
    }

    pub fn fixed_size(&self, t: &TypeRef) -> Option<usize> {
        match self.proto.lookup(t)? {
            TypeDef::Prim { size, .. } => Some(size),
            TypeDef::Struct { items, length } => {
                if length.is_some() {
                    return None;
                }
                let mut s = 0;
                for i in &items {
                    s += self.item_fixed(i)?;
                }
                Some(s)
            }
            TypeDef::Union { members } => {
                let mut s = 0;
                for i in &members {
                    s = s.max(self.item_fixed(i)?);
                }
                Some(s)
            }
            TypeDef::EventStruct => Some(32),
            TypeDef::Alias(_) => None,
        }
    }

    fn item_fixed(&self, it: &Item) -> Option<usize> {
        match it {
            Item::Pad(n) => Some(*n),
            Item::Align(_) | Item::Switch { .. } => None,
            Item::Field { ty, .. } => self.fixed_size(ty),
            Item::List {
                ty,
                len: Some(Expr::Value(n)),
                ..
            } => Some(self.fixed_size(ty)? * (*n as usize)),
            Item::List { .. } => None,
        }
    }

    /// Offset and size of scalar field `f` in fixed-size struct `t`.
    fn field_offset(&self, t: &TypeRef, f: &str) -> Option<(usize, usize)> {
        let TypeDef::Struct { items, .. } = self.proto.lookup(t)? else {
            return None;
        };
        let mut off = 0;
        for i in &items {
            if let Item::Field { name, ty } = i {
                if name == f {
                    return Some((off, self.fixed_size(ty)?));
                }
            }
            off += self.item_fixed(i)?;
        }
        None
    }

    /// Names referenced by expressions anywhere in these items (including inlined types).
    fn collect_refs(&self, items: &[Item], out: &mut HashSet<String>, seen: &mut HashSet<TypeRef>) {
        fn expr_refs(e: &Expr, out: &mut HashSet<String>) {
            match e {
                Expr::Field(n) => {
                    out.insert(n.clone());
                }
                Expr::Sumof(l, inner) => {
                    out.insert(format!("list:{l}"));
                    if let Some(i) = inner {
                        expr_refs(i, out);
                    }
                }
                Expr::Op(_, a, b) => {
                    expr_refs(a, out);
                    expr_refs(b, out);
                }
                Expr::Unop(_, a) | Expr::Popcount(a) => expr_refs(a, out),
                Expr::Value(_) | Expr::ListElement => {}
            }
        }
        for it in items {
            match it {
                Item::Field { ty, .. } | Item::List { ty, len: None, .. } => {
                    self.collect_type(ty, out, seen)
                }
                Item::List {
                    ty, len: Some(e), ..
                } => {
                    expr_refs(e, out);
                    self.collect_type(ty, out, seen);
                }
                Item::Switch { expr, cases, .. } => {
                    expr_refs(expr, out);
                    for c in cases {
                        for e in &c.exprs {
                            expr_refs(e, out);
                        }
                        self.collect_refs(&c.items, out, seen);
                    }
                }
                Item::Pad(_) | Item::Align(_) => {}
            }
        }
        // Union discriminators are references too.
        for it in items {
            if let Item::Field { ty, .. } = it {
                if let Some((d, _)) = special::union_discriminator(&ty.module, &ty.name) {
                    out.insert(d.to_string());
                }
            }
        }
    }

    fn collect_type(&self, t: &TypeRef, out: &mut HashSet<String>, seen: &mut HashSet<TypeRef>) {
        if !seen.insert(t.clone()) {
            return;
        }
        match self.proto.lookup(t) {
            Some(TypeDef::Struct { items, length }) => {
                if let Some(l) = length {
                    self.collect_refs(
                        &[Item::List {
                            name: String::new(),
                            ty: TypeRef {
                                module: "xproto".into(),
                                name: "CARD8".into(),
                            },
                            len: Some(l),
                        }],
                        out,
                        seen,
                    );
                }
                self.collect_refs(&items, out, seen)
            }
            Some(TypeDef::Union { members }) => self.collect_refs(&members, out, seen),
            _ => {}
        }
    }
}

/// Where emission stands after a sequence of items.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Flow {
    Continue,
    Stopped,
}

struct ListVar {
    off: String,
    count: String,
    ty: TypeRef,
}

/// Emitter for one message body.
struct Body<'a, 'p> {
    an: &'a Analysis<'p>,
    module: &'a str,
    msg: &'a str,
    out: String,
    indent: usize,
    /// Rust block depth below the function body.
    depth: usize,
    scopes: Vec<HashMap<String, String>>,
    lists: Vec<HashMap<String, ListVar>>,
    refs: HashSet<String>,
    pend: usize,
    counter: usize,
    /// Inside a sumof: (element type, element value variable, element offset expression).
    sum_ctx: Option<(TypeRef, String, String)>,
}

impl Body<'_, '_> {
    fn line(&mut self, s: &str) {
        for _ in 0..self.indent + 1 {
            self.out.push_str("    ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    fn pos(&self) -> String {
        if self.pend == 0 {
            "p".to_string()
        } else {
            format!("p + {}", self.pend)
        }
    }

    fn flush(&mut self) {
        if self.pend != 0 {
            let s = format!("p += {};", self.pend);
            self.line(&s);
            self.pend = 0;
        }
    }

    fn lookup_var(&self, n: &str) -> Option<String> {
        self.scopes.iter().rev().find_map(|s| s.get(n).cloned())
    }

    fn expr(&mut self, e: &Expr) -> R<String> {
        Ok(match e {
            Expr::Field(n) => {
                if let Some((ty, _, eoff)) = self.sum_ctx.clone() {
                    if let Some((fo, fs)) = self.an.field_offset(&ty, n) {
                        return Ok(format!("rd(m, {eoff} + {fo}, {fs}, o, w)?"));
                    }
                }
                match self.lookup_var(n) {
                    Some(v) => v,
                    None => return unsup(format!("reference to field {n} not in scope")),
                }
            }
            Expr::Value(v) => format!("{}u32", *v as u32),
            Expr::Op(op, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                match op.as_str() {
                    "+" => format!("({a}).wrapping_add({b})"),
                    "-" => format!("({a}).wrapping_sub({b})"),
                    "*" => format!("({a}).wrapping_mul({b})"),
                    "/" => format!("div({a}, {b}, w)?"),
                    "&" => format!("({a} & {b})"),
                    "|" => format!("({a} | {b})"),
                    "<<" => format!("({a}).wrapping_shl({b})"),
                    ">>" => format!("({a}).wrapping_shr({b})"),
                    o => return unsup(format!("operator {o}")),
                }
            }
            Expr::Unop(op, a) => {
                let a = self.expr(a)?;
                match op.as_str() {
                    "~" => format!("(!{a})"),
                    o => return unsup(format!("unary operator {o}")),
                }
            }
            Expr::Popcount(a) => format!("({}).count_ones()", self.expr(a)?),
            Expr::ListElement => match &self.sum_ctx {
                Some((_, v, _)) => v.clone(),
                None => return unsup("listelement-ref outside sumof"),
            },
            Expr::Sumof(l, inner) => {
                let lv = self.lists.iter().rev().find_map(|s| {
                    s.get(l)
                        .map(|v| (v.off.clone(), v.count.clone(), v.ty.clone()))
                });
                let Some((off, count, ty)) = lv else {
                    return unsup(format!("sumof list {l} not in scope"));
                };
                let Some(stride) = self.an.fixed_size(&ty) else {
                    return unsup(format!("sumof over variable-size elements of {l}"));
                };
                let i = self.fresh("i");
                let t = self.fresh("t");
                let ev = self.fresh("e");
                let eoff = format!("{off} + {i} * {stride}");
                let elem_read = if matches!(self.an.proto.lookup(&ty), Some(TypeDef::Prim { .. })) {
                    format!("let {ev} = rd(m, {eoff}, {stride}, o, w)?; ")
                } else {
                    format!("let {ev} = 0u32; ")
                };
                let saved = self.sum_ctx.replace((ty, ev.clone(), eoff));
                let body = match inner {
                    Some(x) => self.expr(x),
                    None => Ok(ev.clone()),
                };
                self.sum_ctx = saved;
                let body = body?;
                format!(
                    "{{ let mut {t} = 0u32; for {i} in 0..{count} {{ {elem_read}{t} = {t}.wrapping_add({body}); }} {t} }}"
                )
            }
        })
    }

    /// Emit a sequence; `tail` says whether anything after it (in enclosing layouts) matters.
    fn items(&mut self, items: &[Item], tail: bool) -> R<Flow> {
        for (i, it) in items.iter().enumerate() {
            let after = tail
                || items[i + 1..]
                    .iter()
                    .any(|x| self.an.item_interesting(x, self.module, self.msg));
            let int = self.an.item_interesting(it, self.module, self.msg);
            if !int && !after && !self.item_binds(it) {
                if self.depth > 0 {
                    self.line("return Ok(());");
                }
                return Ok(Flow::Stopped);
            }
            if self.item(it, after)? == Flow::Stopped {
                return Ok(Flow::Stopped);
            }
        }
        Ok(Flow::Continue)
    }

    /// Whether the item binds a name later expressions need (only matters when nothing
    /// interesting follows, i.e. never in practice; kept for safety).
    fn item_binds(&self, _it: &Item) -> bool {
        false
    }

    fn item(&mut self, it: &Item, after: bool) -> R<Flow> {
        match it {
            Item::Pad(n) => self.pend += n,
            Item::Align(a) => {
                self.flush();
                self.line(&format!("p = align(p, {a});"));
            }
            Item::Field { name, ty } => return self.field(name, ty, after),
            Item::List { name, ty, len } => return self.list(name, ty, len.as_ref(), after),
            Item::Switch { expr, cases, .. } => return self.switch(expr, cases, after),
        }
        Ok(Flow::Continue)
    }

    fn field(&mut self, name: &str, ty: &TypeRef, after: bool) -> R<Flow> {
        let Some(def) = self.an.proto.lookup(ty) else {
            return unsup(format!("unknown type {}:{}", ty.module, ty.name));
        };
        match def {
            TypeDef::Prim { size, kind } => {
                if self.refs.contains(name) {
                    if size > 4 {
                        return unsup(format!("{size}-byte field {name} used in an expression"));
                    }
                    let v = self.fresh("v");
                    let pos = self.pos();
                    self.line(&format!("let {v} = rd(m, {pos}, {size}, o, w)?;"));
                    self.scopes
                        .last_mut()
                        .map(|s| s.insert(name.to_string(), v));
                }
                if let Some(k) = kind {
                    let pos = self.pos();
                    self.line(&format!("vis(m, {pos}, {size}, {}, o, rw, w)?;", k.rust()));
                }
                self.pend += size;
            }
            TypeDef::Struct { items, length } => {
                self.scopes.push(HashMap::new());
                self.lists.push(HashMap::new());
                let start = if length.is_some() {
                    self.flush();
                    let s = self.fresh("s");
                    self.line(&format!("let {s} = p;"));
                    Some(s)
                } else {
                    None
                };
                let flow = self.items(&items, after || length.is_some())?;
                if let (Some(s), Some(l), Flow::Continue) = (start, length, flow) {
                    let l = self.expr(&l)?;
                    self.pend = 0;
                    self.line(&format!("p = {s}.saturating_add(({l}) as usize);"));
                }
                self.scopes.pop();
                self.lists.pop();
                return Ok(flow);
            }
            TypeDef::Union { members } => {
                if !self.an.type_interesting(ty) {
                    match self.an.fixed_size(ty) {
                        Some(s) => self.pend += s,
                        None => return unsup(format!("variable-size union {}", ty.name)),
                    }
                    return Ok(Flow::Continue);
                }
                let Some((disc, map)) = special::union_discriminator(&ty.module, &ty.name) else {
                    return unsup(format!(
                        "union {} has server-specific members but no known discriminator",
                        ty.name
                    ));
                };
                let Some(size) = self.an.fixed_size(ty) else {
                    return unsup(format!("variable-size union {}", ty.name));
                };
                self.flush();
                let d = if disc == "@0" {
                    let d = self.fresh("d");
                    self.line(&format!("let {d} = rd(m, p, 1, o, w)?;"));
                    d
                } else {
                    match self.lookup_var(disc) {
                        Some(d) => d,
                        None => return unsup(format!("union discriminator {disc} not in scope")),
                    }
                };
                let s = self.fresh("s");
                self.line(&format!("let {s} = p;"));
                self.line(&format!("match {d} {{"));
                for (val, idx) in map {
                    let Some(member) = members.get(*idx) else {
                        return unsup(format!("union {} member {idx} missing", ty.name));
                    };
                    self.line(&format!("    {val} => {{"));
                    self.indent += 2;
                    self.depth += 1;
                    self.scopes.push(HashMap::new());
                    self.lists.push(HashMap::new());
                    self.item(member, true)?;
                    self.scopes.pop();
                    self.lists.pop();
                    self.pend = 0;
                    self.depth -= 1;
                    self.indent -= 2;
                    self.line("    }");
                }
                self.line("    _ => {}");
                self.line("}");
                self.line(&format!("p = {s} + {size};"));
                self.pend = 0;
            }
            TypeDef::EventStruct => {
                return unsup(format!("embedded event struct {}", ty.name));
            }
            TypeDef::Alias(_) => return unsup("unresolved alias"),
        }
        Ok(Flow::Continue)
    }

    fn list(&mut self, name: &str, ty: &TypeRef, len: Option<&Expr>, after: bool) -> R<Flow> {
        if let Some(call) = special::list_walker(self.module, self.msg, name) {
            self.flush();
            self.line(&format!("{call};"));
            return Ok(Flow::Stopped);
        }
        let Some(def) = self.an.proto.lookup(ty) else {
            return unsup(format!("unknown type {}:{}", ty.module, ty.name));
        };
        let fixed = self.an.fixed_size(ty);
        let int = self.an.type_interesting(ty);
        if fixed == Some(0) && !int {
            // File descriptors travel as ancillary data.
            return Ok(Flow::Continue);
        }
        let summed = self.refs.contains(&format!("list:{name}"));
        // Constant-length lists of fixed-size, uninteresting elements: just advance.
        if let (Some(Expr::Value(n)), Some(s), false, false) = (len, fixed, int, summed) {
            self.pend += *n as usize * s;
            return Ok(Flow::Continue);
        }
        let count = match len {
            Some(e) => self.expr(e)?,
            None => match fixed {
                Some(s) if s > 0 => {
                    self.flush();
                    format!("(m.len().saturating_sub(p) / {s}) as u32")
                }
                _ => {
                    return unsup(format!(
                        "list {name} without length of variable-size elements"
                    ))
                }
            },
        };
        self.flush();
        let n = self.fresh("n");
        let min = fixed.unwrap_or(1).max(1);
        self.line(&format!("let {n} = cnt(m, p, {count}, {min}, w)?;"));
        if summed {
            let off = self.fresh("l");
            self.line(&format!("let {off} = p;"));
            self.lists.last_mut().map(|l| {
                l.insert(
                    name.to_string(),
                    ListVar {
                        off,
                        count: n.clone(),
                        ty: ty.clone(),
                    },
                )
            });
        }
        if !int {
            if let Some(s) = fixed {
                self.line(&format!("p = p.saturating_add({n} * {s});"));
                return Ok(Flow::Continue);
            }
        }
        if let TypeDef::Prim {
            size,
            kind: Some(k),
        } = &def
        {
            self.line(&format!("for _ in 0..{n} {{"));
            self.line(&format!("    vis(m, p, {size}, {}, o, rw, w)?;", k.rust()));
            self.line(&format!("    p += {size};"));
            self.line("}");
            return Ok(Flow::Continue);
        }
        let _ = after;
        self.line(&format!("for _ in 0..{n} {{"));
        self.indent += 1;
        self.depth += 1;
        let saved = self.pend;
        self.pend = 0;
        let flow = self.field("", ty, true)?;
        debug_assert!(flow == Flow::Continue);
        self.flush();
        self.pend = saved;
        self.depth -= 1;
        self.indent -= 1;
        self.line("}");
        Ok(Flow::Continue)
    }

    fn switch(&mut self, expr: &Expr, cases: &[Case], after: bool) -> R<Flow> {
        self.flush();
        let e = self.expr(expr)?;
        let sw = self.fresh("sw");
        self.line(&format!("let {sw} = {e};"));
        for c in cases {
            let mut conds = Vec::new();
            for x in &c.exprs {
                let v = self.expr(x)?;
                conds.push(if c.bit {
                    format!("{sw} & {v} != 0")
                } else {
                    format!("{sw} == {v}")
                });
            }
            if conds.is_empty() {
                return unsup("switch case without a selector");
            }
            self.line(&format!("if {} {{", conds.join(" || ")));
            self.indent += 1;
            self.depth += 1;
            self.scopes.push(HashMap::new());
            self.lists.push(HashMap::new());
            // Later cases may still match, so the tail always matters here.
            let _ = after;
            let flow = self.items(&c.items, true)?;
            if flow == Flow::Continue {
                self.flush();
            }
            self.pend = 0;
            self.scopes.pop();
            self.lists.pop();
            self.depth -= 1;
            self.indent -= 1;
            self.line("}");
        }
        Ok(Flow::Continue)
    }
}

/// The kind of message being emitted, which fixes where its XML fields start.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MsgKind {
    CoreRequest,
    ExtRequest,
    Reply,
    Event { seq: bool },
    GenericEvent,
}

/// Emit a walker function body for `items`; Ok(None) when the message has no server-specific
/// field (dispatch returns Ok directly).
pub fn walker(
    an: &Analysis,
    module: &Module,
    msg: &str,
    kind: MsgKind,
    items: &[Item],
) -> R<Option<String>> {
    if !items
        .iter()
        .any(|i| an.item_interesting(i, &module.header, msg))
    {
        return Ok(None);
    }
    let mut refs = HashSet::new();
    an.collect_refs(items, &mut refs, &mut HashSet::new());
    let mut b = Body {
        an,
        module: &module.header,
        msg,
        out: String::new(),
        indent: 0,
        depth: 0,
        scopes: vec![HashMap::new()],
        lists: vec![HashMap::new()],
        refs,
        pend: 0,
        counter: 0,
        sum_ctx: None,
    };
    let first_byte = |b: &mut Body, rest_start: &str| -> R<Flow> {
        let Some(first) = items.first() else {
            return Ok(Flow::Stopped);
        };
        let size = match first {
            Item::Pad(n) => Some(*n),
            Item::Field { ty, .. } => an.fixed_size(ty),
            _ => None,
        };
        if size != Some(1) {
            return unsup("first field is not one byte");
        }
        b.line("let mut p: usize = 1;");
        let rest_int = items[1..]
            .iter()
            .any(|i| an.item_interesting(i, &module.header, msg));
        if b.items(&items[..1], rest_int)? == Flow::Stopped {
            return Ok(Flow::Stopped);
        }
        b.pend = 0;
        b.line(&format!("p = {rest_start};"));
        b.items(&items[1..], false)
    };
    match kind {
        MsgKind::CoreRequest => {
            b.line("let s = big(m, o, w)?;");
            first_byte(&mut b, "4 + s")?;
        }
        MsgKind::ExtRequest => {
            b.line("let s = big(m, o, w)?;");
            b.line("let mut p: usize = 4 + s;");
            b.items(items, false)?;
        }
        MsgKind::Reply => {
            first_byte(&mut b, "8")?;
        }
        MsgKind::Event { seq: true } => {
            first_byte(&mut b, "4")?;
        }
        MsgKind::Event { seq: false } => {
            b.line("let mut p: usize = 1;");
            b.items(items, false)?;
        }
        MsgKind::GenericEvent => {
            b.line("let mut p: usize = 10;");
            b.items(items, false)?;
        }
    }
    b.line("Ok(())");
    Ok(Some(b.out))
}

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

/// Emit the whole Rust file for a module.
pub fn module_file(an: &Analysis, m: &Module, header_line: &str) -> (String, Coverage) {
    let h = &m.header;
    let is_ext = h != "xproto";
    let mut cov = Coverage::default();
    let mut fns = String::new();
    let gen = |name: &str,
               kind: MsgKind,
               items: &[Item],
               counter: &mut (usize, usize),
               unsup_list: &mut Vec<(String, String)>,
               fns: &mut String,
               fn_name: &str|
     -> Arm {
        match walker(an, m, name, kind, items) {
            Ok(None) => {
                counter.0 += 1;
                Arm::Ok
            }
            Ok(Some(body)) => {
                counter.0 += 1;
                fns.push_str(&fn_header(fn_name));
                fns.push_str(&body);
                fns.push_str("}\n\n");
                Arm::Call(fn_name.to_string())
            }
            Err(Unsup(why)) => {
                counter.1 += 1;
                unsup_list.push((name.to_string(), why));
                Arm::Unsupported
            }
        }
    };
    let mut req_arms = Vec::new();
    let mut rep_arms = Vec::new();
    let mut info_arms = Vec::new();
    for r in &m.requests {
        let kind = if is_ext {
            MsgKind::ExtRequest
        } else {
            MsgKind::CoreRequest
        };
        let what = format!("{h}:{}", r.name);
        let a = gen(
            &r.name,
            kind,
            &r.items,
            &mut cov.requests,
            &mut cov.unsupported,
            &mut fns,
            &format!("rq_{}", r.name),
        );
        req_arms.push((r.opcode, arm_text(&a, &what)));
        info_arms.push((
            r.opcode,
            format!("Some(({:?}, {}))", r.name, r.reply.is_some()),
        ));
        if let Some(rep) = &r.reply {
            let name = format!("{}Reply", r.name);
            let what = format!("{h}:{name}");
            let a = gen(
                &name,
                MsgKind::Reply,
                rep,
                &mut cov.replies,
                &mut cov.unsupported,
                &mut fns,
                &format!("rp_{}", r.name),
            );
            rep_arms.push((r.opcode, arm_text(&a, &what)));
        }
    }
    // Events. Copies share the walker of their original.
    let mut ev_fn: HashMap<String, Arm> = HashMap::new();
    let mut ev_arms: Vec<(u16, String, String)> = Vec::new(); // (number, name, arm)
    let mut ge_arms: Vec<(u16, String)> = Vec::new();
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
                cov.unsupported
                    .push((e.name.clone(), format!("copy of {base}")));
                Arm::Unsupported
            }
            None => {
                let a = gen(
                    &e.name,
                    kind,
                    &e.items,
                    &mut cov.events,
                    &mut cov.unsupported,
                    &mut fns,
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
            ge_arms.push((e.number, arm_text(&a, &what)));
        } else {
            ev_arms.push((e.number, e.name.clone(), arm_text(&a, &what)));
        }
    }

    let mut s = String::new();
    s.push_str(header_line);
    let _ = writeln!(s, "//! Walkers for xcb-proto module `{h}`.\n");
    if !fns.is_empty() {
        s.push_str("use super::rt::*;\n");
    }
    if fns.contains("special::") {
        s.push_str("use super::special;\n");
    }
    s.push_str("use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};\n\n");
    s.push_str(&fns);

    // request dispatch
    let _ = writeln!(s, "pub(super) fn request(op: u8, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match op {{");
    for (op, a) in &req_arms {
        let _ = writeln!(s, "        {op} => {a},");
    }
    let _ = writeln!(s, "        _ => Err(WalkError::Unknown {{ family: \"request\", ext: {h:?}, code: op }}),\n    }}\n}}\n");
    let _ = writeln!(s, "pub(super) fn reply(op: u8, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match op {{");
    for (op, a) in &rep_arms {
        let _ = writeln!(s, "        {op} => {a},");
    }
    let _ = writeln!(s, "        _ => Err(WalkError::Unknown {{ family: \"reply\", ext: {h:?}, code: op }}),\n    }}\n}}\n");
    let _ = writeln!(
        s,
        "pub(super) fn request_info(op: u8) -> Option<(&'static str, bool)> {{\n    match op {{"
    );
    for (op, a) in &info_arms {
        let _ = writeln!(s, "        {op} => {a},");
    }
    let _ = writeln!(s, "        _ => None,\n    }}\n}}\n");

    // events
    let _ = writeln!(s, "pub(super) fn event(code: u8, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match code {{");
    if h == "xkb" {
        // XKB allocates one event code; byte 1 (xkbType) selects the event, and xcb-proto's
        // event numbers are these xkbType values.
        let _ = writeln!(s, "        0 => match m.get(1).copied() {{");
        for (n, _, a) in &ev_arms {
            let _ = writeln!(s, "            Some({n}) => {a},");
        }
        let _ = writeln!(s, "            _ => Err(WalkError::Unknown {{ family: \"event\", ext: {h:?}, code }}),\n        }},");
    } else {
        for (n, _, a) in &ev_arms {
            let _ = writeln!(s, "        {n} => {a},");
        }
    }
    let _ = writeln!(s, "        _ => Err(WalkError::Unknown {{ family: \"event\", ext: {h:?}, code }}),\n    }}\n}}\n");
    let _ = writeln!(s, "pub(super) fn generic_event(evtype: u16, m: &mut [u8], o: ByteOrder, rw: &mut dyn Rewriter) -> Result<(), WalkError> {{\n    match evtype {{");
    for (n, a) in &ge_arms {
        let _ = writeln!(s, "        {n} => {a},");
    }
    let _ = writeln!(
        s,
        "        _ => Err(WalkError::Unsupported {{ what: \"{h}:GenericEvent\" }}),\n    }}\n}}\n"
    );

    // errors
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
    let _ = is_ext;
    (s, cov)
}

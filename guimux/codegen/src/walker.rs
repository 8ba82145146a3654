//! One message's layout flows in, the body of its walker function flows out: straight-line
//! Rust that moves a byte cursor `p` through the message and calls the rewriter for each
//! server-specific field. Structs are inlined (so `<paramref>` and sumof references resolve to
//! plain local variables); lists become loops; switches become `if`s; unions with a known
//! discriminator become a `match`. Whenever the rest of a layout holds nothing server-specific,
//! emission stops: the walker never needs to understand the tail of a message it would not
//! change. A layout the generator cannot walk gives [`Unsup`] with the reason.

use crate::analysis::{special, Analysis};
use crate::model::{Case, Expr, Item, Module, TypeDef, TypeRef};
use std::collections::{HashMap, HashSet};

/// Why a message cannot be walked by generated code.
#[derive(Debug, Clone)]
pub struct Unsup(pub String);

type R<T> = Result<T, Unsup>;

fn unsup<T>(why: impl Into<String>) -> R<T> {
    Err(Unsup(why.into()))
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

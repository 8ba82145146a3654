//! What the generator needs to know about the protocol model before it writes a line: types
//! and layout items flow in, answers flow out — does this hold a server-specific field (an ID,
//! atom, …: "interesting"), how big is it when its size is fixed, at which offset does a field
//! of a fixed struct sit, and which names do later expressions refer to (those fields must be
//! read into variables). [`special`] adds the hand-written knowledge the XML cannot express.
//! The answers are cached per protocol in [`Analysis`].

use crate::model::{Expr, Item, Protocol, TypeDef, TypeRef};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

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
    pub fn field_offset(&self, t: &TypeRef, f: &str) -> Option<(usize, usize)> {
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
    pub fn collect_refs(
        &self,
        items: &[Item],
        out: &mut HashSet<String>,
        seen: &mut HashSet<TypeRef>,
    ) {
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

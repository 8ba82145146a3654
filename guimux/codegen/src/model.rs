//! The protocol model: xcb-proto XML files flow in, a small intermediate representation of
//! every module's types, requests, replies, events and errors flows out. Only what the walkers
//! need is kept (wire layout and the meaning of each field); documentation elements are dropped.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// An integer expression from the XML (`<fieldref>`, `<op>`, `<sumof>`, …).
#[derive(Clone, Debug)]
pub enum Expr {
    /// `<fieldref>` or `<paramref>`: a field earlier in this or an enclosing layout.
    Field(String),
    /// `<value>` or a resolved `<enumref>`.
    Value(u64),
    /// `<op op="…">`.
    Op(String, Box<Expr>, Box<Expr>),
    /// `<unop op="~">`.
    Unop(String, Box<Expr>),
    /// `<popcount>`.
    Popcount(Box<Expr>),
    /// `<sumof ref="list">` with an optional per-element expression.
    Sumof(String, Option<Box<Expr>>),
    /// `<listelement-ref/>` inside a `<sumof>`.
    ListElement,
}

/// One case of a `<switch>`.
#[derive(Clone, Debug)]
pub struct Case {
    /// `<bitcase>` (mask test) rather than `<case>` (equality).
    pub bit: bool,
    /// The values this case matches (OR-ed).
    pub exprs: Vec<Expr>,
    /// Its fields.
    pub items: Vec<Item>,
}

/// One element of a layout.
#[derive(Clone, Debug)]
pub enum Item {
    /// `<pad bytes="n"/>`.
    Pad(usize),
    /// `<pad align="n"/>`.
    Align(usize),
    /// `<field>` or `<exprfield>`.
    Field { name: String, ty: TypeRef },
    /// `<list>`; `len == None` means "the rest of the message".
    List {
        name: String,
        ty: TypeRef,
        len: Option<Expr>,
    },
    /// `<switch>`.
    Switch { expr: Expr, cases: Vec<Case> },
}

/// A resolved reference to a type: (module header, type name).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeRef {
    pub module: String,
    pub name: String,
}

/// What a server-specific scalar means (mirrors `guimux::fields::Kind`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindSpec {
    Xid(String),
    Atom,
    Visual,
    Keycode,
    Timestamp,
    Device,
    DeviceMore,
}

impl KindSpec {
    /// Rust expression constructing the matching `Kind`.
    pub fn rust(&self) -> String {
        match self {
            KindSpec::Xid(n) => format!("Kind::Xid({n:?})"),
            KindSpec::Atom => "Kind::Atom".into(),
            KindSpec::Visual => "Kind::Visual".into(),
            KindSpec::Keycode => "Kind::Keycode".into(),
            KindSpec::Timestamp => "Kind::Timestamp".into(),
            KindSpec::Device => "Kind::Device".into(),
            KindSpec::DeviceMore => "Kind::DeviceMore".into(),
        }
    }
}

/// A type definition.
#[derive(Clone, Debug)]
pub enum TypeDef {
    /// A scalar of `size` bytes, possibly server-specific.
    Prim { size: usize, kind: Option<KindSpec> },
    /// `<struct>`; `length` is the optional `<length>` expression giving its byte size.
    Struct {
        items: Vec<Item>,
        length: Option<Expr>,
    },
    /// `<union>`: members overlay each other.
    Union { members: Vec<Item> },
    /// `<eventstruct>`: a 32-byte event of a set of extensions.
    EventStruct,
    /// `<typedef>` still to be resolved.
    Alias(TypeRef),
}

/// A request with its optional reply.
#[derive(Clone, Debug)]
pub struct Request {
    pub name: String,
    pub opcode: u8,
    pub items: Vec<Item>,
    pub reply: Option<Vec<Item>>,
}

/// An event (or eventcopy, already expanded).
#[derive(Clone, Debug)]
pub struct Event {
    pub name: String,
    pub number: u16,
    pub xge: bool,
    pub no_seq: bool,
    pub items: Vec<Item>,
    /// For an `<eventcopy>`: the event whose layout it shares.
    pub copy_of: Option<String>,
}

/// One xcb-proto module (one XML file).
#[derive(Debug)]
pub struct Module {
    pub header: String,
    pub xname: Option<String>,
    pub imports: Vec<String>,
    pub types: HashMap<String, TypeDef>,
    pub enums: HashMap<String, HashMap<String, u64>>,
    pub requests: Vec<Request>,
    pub events: Vec<Event>,
    /// (number, name) of each error (copies included).
    pub errors: Vec<(i32, String)>,
}

/// All modules, keyed by header.
#[derive(Debug, Default)]
pub struct Protocol {
    pub modules: BTreeMap<String, Module>,
}

fn attr<'a>(n: roxmltree::Node<'a, 'a>, a: &str) -> Result<&'a str> {
    n.attribute(a)
        .ok_or_else(|| anyhow!("<{}> without attribute {a}", n.tag_name().name()))
}

fn elems<'a>(n: roxmltree::Node<'a, 'a>) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> {
    n.children().filter(|c| c.is_element())
}

/// Core types with a meaning, by (module, name).
fn special_kind(module: &str, name: &str) -> Option<KindSpec> {
    match (module, name) {
        ("xproto", "ATOM") => Some(KindSpec::Atom),
        ("xproto", "VISUALID") => Some(KindSpec::Visual),
        ("xproto", "TIMESTAMP") => Some(KindSpec::Timestamp),
        ("xproto", "KEYCODE") | ("xproto", "KEYCODE32") | ("xinput", "KeyCode") => {
            Some(KindSpec::Keycode)
        }
        ("xinput", "DeviceId") | ("xinput", DEVICE8) | ("xkb", "DeviceSpec") => {
            Some(KindSpec::Device)
        }
        ("xinput", DEVICE8_MORE) => Some(KindSpec::DeviceMore),
        _ => None,
    }
}

/// Wire size of a type named by [`special_kind`].
fn special_size(name: &str) -> usize {
    match name {
        "KEYCODE" | "KeyCode" | DEVICE8 | DEVICE8_MORE => 1,
        "DeviceId" | "DeviceSpec" => 2,
        _ => 4,
    }
}

/// Synthetic type of the one-byte device IDs of XInput 1.x and XKEYBOARD (xcb-proto declares
/// them as plain CARD8/BYTE fields); see [`device8_field`].
const DEVICE8: &str = "guimux_DeviceId8";
/// Like [`DEVICE8`] for event fields whose bit 7 is the "more events follow" flag
/// (`altmask="MoreEventsMask"`): only the low 7 bits are a device ID.
const DEVICE8_MORE: &str = "guimux_DeviceId8More";

/// The synthetic type of a one-byte field that holds an input device ID, by module and field
/// name. XInput 1.x: the addressed device of requests, replies and events (`device_id`) and the
/// devices of XI1 passive grabs (`grabbed_device`, `modifier_device`, whose 255 UseXKeyboard is
/// no device and maps to itself). XKEYBOARD: the device a reply or event is about (`deviceID`,
/// NewKeyboardNotify's `oldDeviceID`, GetKbdByName's per-part IDs) and the XI device of
/// DeviceBtn/DeviceValuator key actions (`device`). (XKB's 16-bit `DeviceSpec` is a typedef,
/// see [`special_kind`]; its values XkbUseCoreKbd = 0x100 etc. are no device IDs and pass
/// unchanged.)
fn device8_field(header: &str, field: roxmltree::Node) -> Option<&'static str> {
    let name = field.attribute("name")?;
    let ty = field.attribute("type")?;
    if !matches!(ty, "CARD8" | "BYTE") {
        return None;
    }
    let device = match header {
        "xinput" => matches!(name, "device_id" | "grabbed_device" | "modifier_device"),
        "xkb" => matches!(
            name,
            "deviceID"
                | "oldDeviceID"
                | "compatDeviceID"
                | "geometryDeviceID"
                | "indicatorDeviceID"
                | "keyDeviceID"
                | "typeDeviceID"
                | "device"
        ),
        _ => false,
    };
    if !device {
        return None;
    }
    Some(if field.attribute("altmask") == Some("MoreEventsMask") {
        DEVICE8_MORE
    } else {
        DEVICE8
    })
}

fn xid_name(module: &str, name: &str) -> String {
    if module == "xproto" {
        name.to_string()
    } else {
        format!("{module}:{name}")
    }
}

struct Parser<'m> {
    header: String,
    enums: &'m HashMap<String, HashMap<String, u64>>,
}

impl Parser<'_> {
    fn tref(&self, name: &str) -> TypeRef {
        // Resolution against imports happens later; remember the textual name here.
        match name.split_once(':') {
            Some((m, n)) => TypeRef {
                module: m.to_string(),
                name: n.to_string(),
            },
            None => TypeRef {
                module: String::new(),
                name: name.to_string(),
            },
        }
    }

    fn expr(&self, n: roxmltree::Node) -> Result<Expr> {
        Ok(match n.tag_name().name() {
            "fieldref" | "paramref" => Expr::Field(n.text().unwrap_or("").trim().to_string()),
            "value" => {
                let t = n.text().unwrap_or("").trim();
                let v = if let Some(h) = t.strip_prefix("0x") {
                    u64::from_str_radix(h, 16)?
                } else {
                    t.parse::<i64>().with_context(|| format!("value {t:?}"))? as u64
                };
                Expr::Value(v)
            }
            "enumref" => {
                let e = attr(n, "ref")?;
                let item = n.text().unwrap_or("").trim();
                let v = self
                    .enums
                    .get(e.rsplit(':').next().unwrap_or(e))
                    .and_then(|m| m.get(item))
                    .ok_or_else(|| anyhow!("{}: unknown enumref {e}.{item}", self.header))?;
                Expr::Value(*v)
            }
            "op" => {
                let mut it = elems(n);
                let a = it.next().ok_or_else(|| anyhow!("op without operands"))?;
                let b = it.next().ok_or_else(|| anyhow!("op with one operand"))?;
                Expr::Op(
                    attr(n, "op")?.to_string(),
                    Box::new(self.expr(a)?),
                    Box::new(self.expr(b)?),
                )
            }
            "unop" => {
                let a = elems(n)
                    .next()
                    .ok_or_else(|| anyhow!("unop without operand"))?;
                Expr::Unop(attr(n, "op")?.to_string(), Box::new(self.expr(a)?))
            }
            "popcount" => {
                let a = elems(n).next().ok_or_else(|| anyhow!("empty popcount"))?;
                Expr::Popcount(Box::new(self.expr(a)?))
            }
            "sumof" => {
                let inner = match elems(n).next() {
                    Some(c) => Some(Box::new(self.expr(c)?)),
                    None => None,
                };
                Expr::Sumof(attr(n, "ref")?.to_string(), inner)
            }
            "listelement-ref" => Expr::ListElement,
            t => bail!("{}: unsupported expression <{t}>", self.header),
        })
    }

    fn items(&self, n: roxmltree::Node) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for c in elems(n) {
            match c.tag_name().name() {
                "pad" => {
                    if let Some(b) = c.attribute("bytes") {
                        out.push(Item::Pad(b.parse()?));
                    } else {
                        out.push(Item::Align(attr(c, "align")?.parse()?));
                    }
                }
                "field" | "exprfield" => out.push(Item::Field {
                    name: attr(c, "name")?.to_string(),
                    ty: match device8_field(&self.header, c) {
                        Some(t) => TypeRef {
                            module: "xinput".into(),
                            name: t.into(),
                        },
                        None => self.tref(attr(c, "type")?),
                    },
                }),
                "list" => {
                    let len = match elems(c).next() {
                        Some(e) => Some(self.expr(e)?),
                        None => None,
                    };
                    out.push(Item::List {
                        name: attr(c, "name")?.to_string(),
                        ty: self.tref(attr(c, "type")?),
                        len,
                    })
                }
                "switch" => {
                    let mut expr = None;
                    let mut cases = Vec::new();
                    for s in elems(c) {
                        match s.tag_name().name() {
                            "bitcase" | "case" => {
                                let mut exprs = Vec::new();
                                for e in elems(s) {
                                    if matches!(
                                        e.tag_name().name(),
                                        "enumref" | "value" | "op" | "fieldref"
                                    ) {
                                        exprs.push(self.expr(e)?);
                                    }
                                }
                                cases.push(Case {
                                    bit: s.tag_name().name() == "bitcase",
                                    exprs,
                                    items: self.items(s)?,
                                });
                            }
                            "required_start_align" | "doc" => {}
                            _ if expr.is_none() => expr = Some(self.expr(s)?),
                            t => bail!("{}: unexpected <{t}> in switch", self.header),
                        }
                    }
                    out.push(Item::Switch {
                        expr: expr.ok_or_else(|| anyhow!("switch without expression"))?,
                        cases,
                    });
                }
                // Not on the wire, or documentation, or case selectors handled by the caller.
                "fd"
                | "doc"
                | "required_start_align"
                | "reply"
                | "length"
                | "enumref"
                | "value"
                | "op"
                | "fieldref"
                | "valueparam" => {}
                t => bail!("{}: unsupported layout element <{t}>", self.header),
            }
        }
        Ok(out)
    }
}

impl Protocol {
    /// Read every `*.xml` in `dir`.
    pub fn load(dir: &Path) -> Result<Protocol> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .collect();
        paths.sort();
        let mut proto = Protocol::default();
        let mut texts = Vec::new();
        for p in paths {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            texts.push((p, text));
        }
        // Pass 1: every module's enums (enumrefs may name an imported module's enum).
        let mut all_enums: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for (p, text) in &texts {
            let doc = roxmltree::Document::parse(text)
                .with_context(|| format!("parsing {}", p.display()))?;
            let vals = parse_enums(doc.root_element())?;
            for (k, v) in vals {
                all_enums.entry(k).or_insert(v);
            }
        }
        for (p, text) in &texts {
            let doc = roxmltree::Document::parse(text)
                .with_context(|| format!("parsing {}", p.display()))?;
            let m = parse_module(doc.root_element(), &all_enums)
                .with_context(|| format!("in {}", p.display()))?;
            proto.modules.insert(m.header.clone(), m);
        }
        proto.resolve()?;
        Ok(proto)
    }

    /// Qualify every type reference with the module that defines it.
    fn resolve(&mut self) -> Result<()> {
        let defined: HashMap<String, Vec<String>> = self
            .modules
            .iter()
            .map(|(h, m)| (h.clone(), m.types.keys().cloned().collect()))
            .collect();
        let imports: HashMap<String, Vec<String>> = self
            .modules
            .keys()
            .map(|h| {
                // Transitive imports, own module first.
                let mut all = vec![h.clone()];
                let mut i = 0;
                while i < all.len() {
                    if let Some(mm) = self.modules.get(&all[i]) {
                        for imp in &mm.imports {
                            if !all.contains(imp) {
                                all.push(imp.clone());
                            }
                        }
                    }
                    i += 1;
                }
                (h.clone(), all)
            })
            .collect();
        let find = |home: &str, t: &mut TypeRef| -> Result<()> {
            if !t.module.is_empty() {
                return Ok(());
            }
            for m in &imports[home] {
                if defined.get(m).is_some_and(|d| d.contains(&t.name)) {
                    t.module = m.clone();
                    return Ok(());
                }
            }
            bail!("{home}: unknown type {}", t.name)
        };
        fn fix_items(
            home: &str,
            items: &mut [Item],
            find: &dyn Fn(&str, &mut TypeRef) -> Result<()>,
        ) -> Result<()> {
            for it in items {
                match it {
                    Item::Field { ty, .. } | Item::List { ty, .. } => find(home, ty)?,
                    Item::Switch { cases, .. } => {
                        for c in cases {
                            fix_items(home, &mut c.items, find)?
                        }
                    }
                    Item::Pad(_) | Item::Align(_) => {}
                }
            }
            Ok(())
        }
        for (h, m) in self.modules.iter_mut() {
            for t in m.types.values_mut() {
                match t {
                    TypeDef::Struct { items, .. } => fix_items(h, items, &find)?,
                    TypeDef::Union { members } => fix_items(h, members, &find)?,
                    TypeDef::Alias(r) => find(h, r)?,
                    TypeDef::Prim { .. } | TypeDef::EventStruct => {}
                }
            }
            for r in m.requests.iter_mut() {
                fix_items(h, &mut r.items, &find)?;
                if let Some(rep) = r.reply.as_mut() {
                    fix_items(h, rep, &find)?;
                }
            }
            for e in m.events.iter_mut() {
                fix_items(h, &mut e.items, &find)?;
            }
        }
        Ok(())
    }

    /// The definition of `t`, following typedefs; a typedef of a server-specific name keeps it.
    pub fn lookup(&self, t: &TypeRef) -> Option<TypeDef> {
        if let Some(k) = special_kind(&t.module, &t.name) {
            return Some(TypeDef::Prim {
                size: special_size(&t.name),
                kind: Some(k),
            });
        }
        let d = self.modules.get(&t.module)?.types.get(&t.name)?;
        match d {
            TypeDef::Alias(r) => self.lookup(r),
            d => Some(d.clone()),
        }
    }
}

/// In XInput 1.x events the server sets bit 7 of the device byte whenever more events follow,
/// also in events xcb-proto does not mark with `altmask` (DeviceValuator): every one-byte
/// device ID of an xinput event keeps that bit. (Device IDs of XI1 events are below 128.)
fn more_events_devices(header: &str, mut items: Vec<Item>) -> Vec<Item> {
    if header == "xinput" {
        for it in &mut items {
            if let Item::Field { ty, .. } = it {
                if ty.module == "xinput" && ty.name == DEVICE8 {
                    ty.name = DEVICE8_MORE.to_string();
                }
            }
        }
    }
    items
}

fn prim_size(name: &str) -> Option<usize> {
    Some(match name {
        "CARD8" | "INT8" | "BYTE" | "BOOL" | "char" | "void" => 1,
        "CARD16" | "INT16" => 2,
        "CARD32" | "INT32" | "float" => 4,
        "CARD64" | "INT64" | "double" => 8,
        _ => return None,
    })
}

type EnumMaps = HashMap<String, HashMap<String, u64>>;

fn parse_enums(root: roxmltree::Node) -> Result<EnumMaps> {
    let mut all = HashMap::new();
    for c in elems(root).filter(|c| c.tag_name().name() == "enum") {
        let mut vals = HashMap::new();
        let mut next = 0u64;
        for it in elems(c).filter(|i| i.tag_name().name() == "item") {
            let name = attr(it, "name")?.to_string();
            let mut v = next;
            for e in elems(it) {
                let t = e.text().unwrap_or("").trim();
                match e.tag_name().name() {
                    "value" => {
                        v = if let Some(h) = t.strip_prefix("0x") {
                            u64::from_str_radix(h, 16)?
                        } else {
                            t.parse::<i64>()? as u64
                        }
                    }
                    "bit" => {
                        let b: u32 = t.parse()?;
                        v = 1u64 << b;
                    }
                    _ => {}
                }
            }
            next = v + 1;
            vals.insert(name, v);
        }
        all.insert(attr(c, "name")?.to_string(), vals);
    }
    Ok(all)
}

fn parse_module(
    root: roxmltree::Node,
    all_enums: &HashMap<String, HashMap<String, u64>>,
) -> Result<Module> {
    let header = attr(root, "header")?.to_string();
    let mut m = Module {
        header: header.clone(),
        xname: root.attribute("extension-xname").map(str::to_string),
        imports: Vec::new(),
        types: HashMap::new(),
        enums: HashMap::new(),
        requests: Vec::new(),
        events: Vec::new(),
        errors: Vec::new(),
    };
    if header == "xproto" {
        for p in [
            "CARD8", "INT8", "BYTE", "BOOL", "char", "void", "CARD16", "INT16", "CARD32", "INT32",
            "float", "CARD64", "INT64", "double", "fd",
        ] {
            // `fd` travels as ancillary data, not in the byte stream: size 0.
            let size = prim_size(p).unwrap_or(0);
            m.types
                .insert(p.to_string(), TypeDef::Prim { size, kind: None });
        }
    } else {
        // Primitive names are visible everywhere.
        m.imports.push("xproto".to_string());
    }
    m.enums = parse_enums(root)?;
    // Own enums win over imported ones of the same name.
    let mut enums = all_enums.clone();
    for (k, v) in &m.enums {
        enums.insert(k.clone(), v.clone());
    }
    let p = Parser {
        header: header.clone(),
        enums: &enums,
    };
    let mut event_defs: HashMap<String, Event> = HashMap::new();
    for c in elems(root) {
        let tag = c.tag_name().name();
        match tag {
            "import" => m.imports.push(c.text().unwrap_or("").trim().to_string()),
            "xidtype" | "xidunion" => {
                let n = attr(c, "name")?;
                let kind = special_kind(&header, n).unwrap_or(KindSpec::Xid(xid_name(&header, n)));
                m.types.insert(
                    n.to_string(),
                    TypeDef::Prim {
                        size: 4,
                        kind: Some(kind),
                    },
                );
            }
            "typedef" => {
                let new = attr(c, "newname")?.to_string();
                if let Some(k) = special_kind(&header, &new) {
                    m.types.insert(
                        new.clone(),
                        TypeDef::Prim {
                            size: special_size(&new),
                            kind: Some(k),
                        },
                    );
                } else {
                    m.types
                        .insert(new, TypeDef::Alias(p.tref(attr(c, "oldname")?)));
                }
            }
            "struct" => {
                let mut length = None;
                for e in elems(c).filter(|e| e.tag_name().name() == "length") {
                    if let Some(x) = elems(e).next() {
                        length = Some(p.expr(x)?);
                    }
                }
                m.types.insert(
                    attr(c, "name")?.to_string(),
                    TypeDef::Struct {
                        items: p.items(c)?,
                        length,
                    },
                );
            }
            "union" => {
                m.types.insert(
                    attr(c, "name")?.to_string(),
                    TypeDef::Union {
                        members: p.items(c)?,
                    },
                );
            }
            "eventstruct" => {
                m.types
                    .insert(attr(c, "name")?.to_string(), TypeDef::EventStruct);
            }
            "request" => {
                let reply = match elems(c).find(|e| e.tag_name().name() == "reply") {
                    Some(r) => Some(p.items(r)?),
                    None => None,
                };
                m.requests.push(Request {
                    name: attr(c, "name")?.to_string(),
                    opcode: attr(c, "opcode")?.parse()?,
                    items: p.items(c)?,
                    reply,
                });
            }
            "event" => {
                let e = Event {
                    name: attr(c, "name")?.to_string(),
                    number: attr(c, "number")?.parse()?,
                    xge: c.attribute("xge") == Some("true"),
                    no_seq: c.attribute("no-sequence-number") == Some("true"),
                    items: more_events_devices(&header, p.items(c)?),
                    copy_of: None,
                };
                event_defs.insert(e.name.clone(), e.clone());
                m.events.push(e);
            }
            "eventcopy" => {
                let r = attr(c, "ref")?;
                let base = event_defs
                    .get(r)
                    .ok_or_else(|| anyhow!("eventcopy of unknown {r}"))?;
                let mut e = base.clone();
                e.name = attr(c, "name")?.to_string();
                e.number = attr(c, "number")?.parse()?;
                e.copy_of = Some(r.to_string());
                m.events.push(e);
            }
            "error" | "errorcopy" => {
                m.errors
                    .push((attr(c, "number")?.parse()?, attr(c, "name")?.to_string()));
            }
            "enum" => {}
            _ => {}
        }
    }
    Ok(m)
}

//! Translation maps for one server connection. App-view values flow in and server values flow
//! out (and back): resource IDs (the app's own range, server-owned IDs, other clients' IDs),
//! atoms (by name), and extension opcodes / first event / first error. Every map is a bijection
//! so that no value the app sees can stand for two server values.

use std::collections::HashMap;

/// Highest predefined atom (XA_WM_TRANSIENT_FOR = 68); those are equal on every server.
pub const LAST_PREDEFINED_ATOM: u32 = 68;

/// A bijection between app-view and server values, with aliasing for server values whose
/// natural app-view value is already taken.
#[derive(Clone, Debug, Default)]
pub struct Bijection {
    to_server: HashMap<u32, u32>,
    to_app: HashMap<u32, u32>,
}

impl Bijection {
    /// Record app ↔ server. Replaces any earlier pairing of either side.
    pub fn insert(&mut self, app: u32, server: u32) {
        if let Some(old_s) = self.to_server.insert(app, server) {
            self.to_app.remove(&old_s);
        }
        if let Some(old_a) = self.to_app.insert(server, app) {
            if old_a != app {
                self.to_server.remove(&old_a);
            }
        }
    }
    /// Server value for an app-view value.
    pub fn server(&self, app: u32) -> Option<u32> {
        self.to_server.get(&app).copied()
    }
    /// App-view value for a server value.
    pub fn app(&self, server: u32) -> Option<u32> {
        self.to_app.get(&server).copied()
    }
    /// Every (app, server) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.to_server.iter().map(|(a, s)| (*a, *s))
    }
    /// Whether an app-view value is taken.
    pub fn app_taken(&self, app: u32) -> bool {
        self.to_server.contains_key(&app)
    }
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.to_server.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.to_server.is_empty()
    }
}

/// Resource ID translation for one server.
#[derive(Clone, Debug)]
pub struct XidMap {
    /// The app's own ID range (from the setup it holds): base and mask.
    pub app_base: u32,
    /// Mask of the app's range.
    pub app_mask: u32,
    /// guimux's range on this server.
    pub server_base: u32,
    /// Mask of guimux's range on this server.
    pub server_mask: u32,
    map: Bijection,
    /// Next free offset (within the server mask) for IDs guimux allocates itself; starts in the
    /// upper half so it never meets IDs allocated by an internal client (which starts at 0).
    next_offset: u32,
    /// Next alias for foreign server IDs that collide with an app-view ID.
    next_alias: u32,
    /// App-view IDs whose every use guimux wants to know about (see [`XidMap::take_hits`]).
    watched: std::collections::HashSet<u32>,
    /// Watched IDs met by [`XidMap::to_server`] since the last [`XidMap::take_hits`].
    hits: Vec<u32>,
}

impl XidMap {
    /// A map between an app whose IDs are `app_base|..app_mask` and a server connection whose
    /// range is `server_base|..server_mask`.
    pub fn new(app_base: u32, app_mask: u32, server_base: u32, server_mask: u32) -> Self {
        let step = server_mask & server_mask.wrapping_neg();
        Self {
            app_base,
            app_mask,
            server_base,
            server_mask,
            map: Bijection::default(),
            next_offset: (server_mask / 2 + 1) & !(step.max(1) - 1),
            // Aliases live in a range no client can own: client index bits all ones.
            next_alias: 0x1fff_0000,
            watched: Default::default(),
            hits: Vec::new(),
        }
    }

    /// Report every later use of the app-view ID `id` in requests (see [`XidMap::take_hits`]).
    pub fn watch(&mut self, id: u32) {
        self.watched.insert(id);
    }

    /// Stop reporting uses of `id`.
    pub fn unwatch(&mut self, id: u32) {
        self.watched.remove(&id);
    }

    /// Whether any ID is watched (nothing to take otherwise).
    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    /// Watched IDs translated since the last call, in order.
    pub fn take_hits(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.hits)
    }

    /// Whether `id` lies in the app's own range.
    pub fn is_app_own(&self, id: u32) -> bool {
        id & !self.app_mask == self.app_base && self.app_base != 0
    }

    /// Whether `id` lies in guimux's range on the server.
    pub fn is_server_own(&self, id: u32) -> bool {
        id & !self.server_mask == self.server_base && self.server_base != 0
    }

    /// Pair an app-view ID with a server ID (from regeneration or setup).
    pub fn insert(&mut self, app: u32, server: u32) {
        self.map.insert(app, server);
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every (app, server) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.map.pairs()
    }

    /// Server ID for an app-view ID, without allocating.
    pub fn lookup(&self, app: u32) -> Option<u32> {
        self.map.server(app)
    }

    /// App → server. Unknown IDs of the app's own range get a fresh server ID (the app is
    /// creating a resource); other unknown IDs pass unchanged.
    pub fn to_server(&mut self, id: u32) -> u32 {
        if id <= 1 {
            return id; // None / PointerRoot / CopyFromParent
        }
        if !self.watched.is_empty() && self.watched.contains(&id) {
            self.hits.push(id);
        }
        if let Some(s) = self.map.server(id) {
            return s;
        }
        if self.is_app_own(id) {
            let step = (self.server_mask & self.server_mask.wrapping_neg()).max(1);
            loop {
                let candidate = self.server_base | (self.next_offset & self.server_mask);
                self.next_offset = self.next_offset.wrapping_add(step);
                if self.map.app(candidate).is_none() {
                    self.map.insert(id, candidate);
                    return candidate;
                }
            }
        }
        id
    }

    /// Server → app. Unknown IDs (other clients' resources) keep their value unless that value
    /// already means something else to the app, in which case they get an alias.
    pub fn to_app(&mut self, id: u32) -> u32 {
        if id <= 1 {
            return id;
        }
        if let Some(a) = self.map.app(id) {
            return a;
        }
        let app = if self.map.app_taken(id) || self.is_app_own(id) {
            loop {
                let a = self.next_alias;
                self.next_alias = self.next_alias.wrapping_add(1);
                if !self.map.app_taken(a) {
                    break a;
                }
            }
        } else {
            id
        };
        self.map.insert(app, id);
        app
    }
}

/// Atom translation for one server.
#[derive(Clone, Debug, Default)]
pub struct AtomMap {
    map: Bijection,
    next_alias: u32,
}

impl AtomMap {
    /// Empty map (predefined atoms are always identity).
    pub fn new() -> Self {
        Self {
            map: Bijection::default(),
            next_alias: 0x0f00_0000,
        }
    }
    /// Pair an app-view atom with a server atom (both naming the same string).
    pub fn insert(&mut self, app: u32, server: u32) {
        self.map.insert(app, server);
    }
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Every (app, server) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.map.pairs()
    }
    /// App → server; unknown atoms pass unchanged (and are logged by the caller).
    pub fn to_server(&self, atom: u32) -> Option<u32> {
        if atom <= LAST_PREDEFINED_ATOM {
            return Some(atom);
        }
        self.map.server(atom)
    }
    /// Server → app; an atom the app has never seen keeps its value unless taken.
    pub fn to_app(&mut self, atom: u32) -> u32 {
        if atom <= LAST_PREDEFINED_ATOM {
            return atom;
        }
        if let Some(a) = self.map.app(atom) {
            return a;
        }
        let app = if self.map.app_taken(atom) {
            loop {
                let a = self.next_alias;
                self.next_alias += 1;
                if !self.map.app_taken(a) {
                    break a;
                }
            }
        } else {
            atom
        };
        self.map.insert(app, atom);
        app
    }
}

/// XInput device ID translation for one server. The app learned device IDs on the server it
/// started on (XIQueryDevice, events); another server may number the same devices otherwise.
/// 0 (AllDevices) and 1 (AllMasterDevices) are the same everywhere. An empty map is the
/// identity and costs nothing: the common case of servers that number their devices alike.
#[derive(Clone, Debug, Default)]
pub struct DeviceMap {
    map: Bijection,
    /// App-view IDs of devices the app knows that have no counterpart on this server: never
    /// handed out for another device.
    reserved: std::collections::HashSet<u32>,
    /// Whether translation can change anything (some pair differs, or IDs are reserved).
    active: bool,
    /// Next alias to try (counting down) for a server device whose ID already means another
    /// device to the app.
    next_alias: u32,
}

/// Highest alias tried first: aliases stay within the 7 bits XInput 1.x events can carry.
const DEVICE_ALIAS_TOP: u32 = 127;

impl DeviceMap {
    /// The map from a server's device IDs (`pairs`: old → new, as matched by regeneration) when
    /// the old server's devices were `known`: those without a pair get no alias. Without any
    /// pair the mapping is unknown and the map stays the identity.
    pub fn between(
        pairs: impl IntoIterator<Item = (u32, u32)>,
        known: impl IntoIterator<Item = u32>,
    ) -> Self {
        let mut m = DeviceMap::default();
        for (a, s) in pairs {
            m.insert(a, s);
        }
        if !m.map.is_empty() {
            for k in known {
                if k > 1 && !m.map.app_taken(k) {
                    m.reserve(k);
                }
            }
        }
        m
    }

    /// This map (app → old server) followed by `next` (old server → new server): app → new
    /// server. Devices of the old server that the app never saw get their IDs on first sight.
    pub fn then(&self, next: &DeviceMap) -> DeviceMap {
        if !self.active {
            return next.clone();
        }
        if !next.active {
            return self.clone();
        }
        let mut m = DeviceMap::default();
        for (old, new) in next.map.pairs() {
            if let Some(app) = self.app_of(old) {
                m.insert(app, new);
            }
        }
        let gone = self
            .reserved
            .iter()
            .copied()
            .chain(next.reserved.iter().filter_map(|&old| self.app_of(old)));
        for app in gone.collect::<Vec<_>>() {
            if !m.map.app_taken(app) {
                m.reserve(app);
            }
        }
        // The app-view IDs of old-server devices the new server lacks (pairs of `self` whose
        // old ID `next` does not know) stay out of use too.
        for (app, old) in self.map.pairs() {
            if next.map.server(old).is_none() && !m.map.app_taken(app) {
                m.reserve(app);
            }
        }
        m
    }

    /// Pair an app-view device ID with this server's.
    pub fn insert(&mut self, app: u32, server: u32) {
        self.map.insert(app, server);
        self.reserved.remove(&app);
        self.active |= app != server;
    }

    /// Keep the app-view ID `app` out of use (the app knows it; this server has no such device).
    pub fn reserve(&mut self, app: u32) {
        self.reserved.insert(app);
        self.active = true;
    }

    /// Whether translation can change anything.
    pub fn is_identity(&self) -> bool {
        !self.active
    }

    /// Every (app, server) pair.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.map.pairs()
    }

    /// The app-view ID the server ID `server` has or would get without an alias (None: it
    /// would need an alias, so the app cannot have seen it).
    pub fn app_of(&self, server: u32) -> Option<u32> {
        if server <= 1 || !self.active {
            return Some(server);
        }
        match self.map.app(server) {
            Some(a) => Some(a),
            None if self.map.app_taken(server) || self.reserved.contains(&server) => None,
            None => Some(server),
        }
    }

    /// App → server. IDs the map does not know pass unchanged.
    pub fn to_server(&self, app: u32) -> u32 {
        if app <= 1 || !self.active {
            return app;
        }
        self.map.server(app).unwrap_or(app)
    }

    /// Server → app. A device the app has not seen keeps its ID unless that ID already means
    /// another device to the app; then it gets an alias.
    pub fn to_app(&mut self, server: u32) -> u32 {
        if server <= 1 || !self.active {
            return server;
        }
        if let Some(a) = self.map.app(server) {
            return a;
        }
        let free = |m: &Self, a: u32| !m.map.app_taken(a) && !m.reserved.contains(&a);
        let app = if free(self, server) {
            server
        } else {
            if self.next_alias < 2 {
                self.next_alias = DEVICE_ALIAS_TOP;
            }
            let mut a = self.next_alias;
            while a >= 2 && !free(self, a) {
                a -= 1;
            }
            if a < 2 {
                // Over a hundred devices: look above the XInput 1.x range.
                a = 0xffff;
                while a > DEVICE_ALIAS_TOP && !free(self, a) {
                    a -= 1;
                }
            }
            self.next_alias = a.saturating_sub(1);
            a
        };
        self.map.insert(app, server);
        app
    }
}

/// Where one extension lives on one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtPlace {
    /// Major opcode.
    pub major: u8,
    /// First event code (0 if none).
    pub first_event: u8,
    /// First error code (0 if none).
    pub first_error: u8,
}

/// Extension placement as the app knows it and as the server has it, keyed by X name.
#[derive(Clone, Debug, Default)]
pub struct ExtMap {
    /// X name → (index into generated EXTENSIONS (None if unknown to the tables), app-view place,
    /// server place (None if the server lacks it)).
    pub entries: Vec<ExtEntry>,
}

/// One extension's placement on both sides.
#[derive(Clone, Debug)]
pub struct ExtEntry {
    /// Name as in QueryExtension.
    pub name: String,
    /// Index into the generated tables.
    pub table: Option<usize>,
    /// Where the app believes it is.
    pub app: Option<ExtPlace>,
    /// Where it is on this server.
    pub server: Option<ExtPlace>,
}

impl ExtMap {
    /// Entry for an app-view major opcode.
    pub fn by_app_major(&self, major: u8) -> Option<&ExtEntry> {
        self.entries
            .iter()
            .find(|e| e.app.is_some_and(|p| p.major == major))
    }
    /// Entry for a server major opcode.
    pub fn by_server_major(&self, major: u8) -> Option<&ExtEntry> {
        self.entries
            .iter()
            .find(|e| e.server.is_some_and(|p| p.major == major))
    }
    /// Entry whose server event range contains `code` (code without the send-event bit);
    /// returns the entry and the relative event number.
    pub fn by_server_event(
        &self,
        code: u8,
        num_events: impl Fn(&ExtEntry) -> u8,
    ) -> Option<(&ExtEntry, u8)> {
        self.entries.iter().find_map(|e| {
            let p = e.server?;
            let n = num_events(e);
            (p.first_event != 0 && code >= p.first_event && code < p.first_event.saturating_add(n))
                .then(|| (e, code - p.first_event))
        })
    }
    /// Entry whose server error range contains `code`.
    pub fn by_server_error(
        &self,
        code: u8,
        num_errors: impl Fn(&ExtEntry) -> u8,
    ) -> Option<(&ExtEntry, u8)> {
        self.entries.iter().find_map(|e| {
            let p = e.server?;
            let n = num_errors(e);
            (p.first_error != 0 && code >= p.first_error && code < p.first_error.saturating_add(n))
                .then(|| (e, code - p.first_error))
        })
    }
    /// Entry by name.
    pub fn by_name(&self, name: &str) -> Option<&ExtEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids_allocate_and_round_trip() {
        let mut m = XidMap::new(0x0060_0000, 0x1f_ffff, 0x0080_0000, 0x1f_ffff);
        let s = m.to_server(0x0060_0001);
        assert!(m.is_server_own(s));
        assert_eq!(m.to_server(0x0060_0001), s);
        assert_eq!(m.to_app(s), 0x0060_0001);
        let s2 = m.to_server(0x0060_0002);
        assert_ne!(s, s2);
        assert_eq!(m.to_server(0), 0);
    }

    #[test]
    fn foreign_ids_alias_on_collision() {
        let mut m = XidMap::new(0x0060_0000, 0x1f_ffff, 0x0080_0000, 0x1f_ffff);
        m.insert(0x1e7, 0x2e7); // old root -> new root
                                // A foreign server window whose value equals the app-view old root must be aliased.
        let a = m.to_app(0x1e7);
        assert_ne!(a, 0x1e7);
        assert_eq!(m.to_server(a), 0x1e7);
        // A non-colliding foreign id stays.
        assert_eq!(m.to_app(0x0040_0005), 0x0040_0005);
        assert_eq!(m.to_server(0x0040_0005), 0x0040_0005);
    }

    #[test]
    fn atoms() {
        let mut a = AtomMap::new();
        a.insert(300, 310);
        assert_eq!(a.to_server(39), Some(39));
        assert_eq!(a.to_server(300), Some(310));
        assert_eq!(a.to_app(310), 300);
        // Server atom 300 means something else than app atom 300 → alias.
        let x = a.to_app(300);
        assert_ne!(x, 300);
        assert_eq!(a.to_server(x), Some(300));
    }

    #[test]
    fn devices_identity_unless_they_differ() {
        let mut d = DeviceMap::between([(0, 0), (1, 1), (2, 2), (3, 3)], [2, 3]);
        assert!(d.is_identity());
        assert_eq!(d.to_app(17), 17);
        let empty = DeviceMap::between([], [2, 3, 8]);
        assert!(empty.is_identity(), "no pairs: mapping unknown, identity");
    }

    #[test]
    fn devices_map_both_ways_and_alias_newcomers() {
        // Old server: 8 = "Second pointer", 9 = "OnlyA pointer" (absent on the new server).
        // New server: "Second pointer" is 12; 8 and 9 are other devices there.
        let mut d = DeviceMap::between([(0, 0), (1, 1), (2, 2), (8, 12)], [2, 8, 9]);
        assert!(!d.is_identity());
        assert_eq!(d.to_server(8), 12);
        assert_eq!(d.to_server(1), 1);
        assert_eq!(d.to_app(12), 8);
        assert_eq!(d.to_app(0), 0);
        let a8 = d.to_app(8);
        let a9 = d.to_app(9);
        assert!(![0, 1, 2, 8, 9, a8].contains(&a9) && ![0, 1, 2, 8, 9].contains(&a8));
        assert_eq!(d.to_server(a8), 8);
        assert_eq!(d.to_server(a9), 9);
        assert_eq!(d.to_app(20), 20, "an unknown, unclaimed ID keeps its value");
    }

    proptest::proptest! {
        /// Whatever the matched pairs and the devices the server shows, server → app is
        /// injective and app → server inverts it; IDs 0 and 1 never change.
        #[test]
        fn devices_stay_a_bijection(
            pairs in proptest::collection::hash_map(2u32..40, 2u32..40, 0..12),
            known in proptest::collection::vec(2u32..40, 0..12),
            seen in proptest::collection::vec(0u32..60, 0..40),
        ) {
            // A bijective start: drop pairs whose server side repeats.
            let mut used = std::collections::HashSet::new();
            let pairs: Vec<(u32, u32)> = pairs.into_iter().filter(|(_, s)| used.insert(*s)).collect();
            let mut d = DeviceMap::between(pairs.iter().copied().chain([(0, 0), (1, 1)]), known);
            let mut back: HashMap<u32, u32> = HashMap::new();
            for s in seen {
                let a = d.to_app(s);
                if s <= 1 {
                    proptest::prop_assert_eq!(a, s);
                }
                proptest::prop_assert_eq!(d.to_server(a), s);
                if let Some(prev) = back.insert(a, s) {
                    proptest::prop_assert_eq!(prev, s, "app ID {} stands for two devices", a);
                }
            }
            for (a, s) in pairs {
                proptest::prop_assert_eq!(d.to_server(a), s);
            }
        }
    }

    #[test]
    fn devices_compose_across_moves() {
        // app → B: app 8 is B 12; B's 30 was seen by the app as alias 127.
        let mut ab = DeviceMap::between([(2, 2), (8, 12)], [2, 8]);
        assert_eq!(ab.to_app(8), 127);
        // B → C: B 12 is C 5, B 8 is C 8, B 2 is C 2.
        let bc = DeviceMap::between([(2, 2), (12, 5), (8, 8)], [2, 8, 12]);
        let ac = ab.then(&bc);
        assert_eq!(ac.to_server(8), 5);
        assert_eq!(ac.to_server(127), 8);
        assert_eq!(ac.to_server(2), 2);
        // Identity first leg: the second leg alone.
        let id = DeviceMap::default();
        assert_eq!(id.then(&bc).to_server(12), 5);
    }
}

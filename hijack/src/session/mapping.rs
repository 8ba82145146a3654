//! The map algebra of an attach, pure (no I/O): from the app's view, the new server's setup,
//! what regeneration recreated there and the answers to the attach's questions ([`Answers`]),
//! build the [`Maps`] from the capture server's values to the new server's ([`build_maps`]);
//! after a move, [`compose`] the previous maps (app → capture server) with those into app →
//! new server. guimux then translates the app's requests and replies with the result.

use super::view::AppView;
use guimux::maps::{AtomMap, DeviceMap, ExtEntry, ExtMap, ExtPlace, XidMap};
use guimux::Maps;
use std::collections::HashMap;
use x11rb::protocol::xproto::{Setup, VisualClass};

/// app → old server (`prev`) followed by old server → new server (`next`): app → new server.
/// Old-server values with no counterpart on the new server (other clients' windows there) are
/// dropped; the app's own range and the new connection's range come from the two ends.
pub(super) fn compose(prev: &Maps, next: &Maps) -> Maps {
    let mut xids = XidMap::new(
        prev.xids.app_base,
        prev.xids.app_mask,
        next.xids.server_base,
        next.xids.server_mask,
    );
    for (app, old) in prev.xids.pairs() {
        if let Some(new) = next.xids.lookup(old) {
            xids.insert(app, new);
        }
    }
    let mut atoms = AtomMap::new();
    for (app, old) in prev.atoms.pairs() {
        if let Some(new) = next.atoms.to_server(old) {
            atoms.insert(app, new);
        }
    }
    let visuals = prev
        .visuals
        .iter()
        .filter_map(|(app, old)| next.visuals.get(old).map(|new| (*app, *new)))
        .collect();
    let mut exts = ExtMap::default();
    for e in &prev.exts.entries {
        exts.entries.push(ExtEntry {
            name: e.name.clone(),
            table: e.table,
            app: e.app,
            server: next.exts.by_name(&e.name).and_then(|n| n.server),
        });
    }
    let named = next
        .named
        .iter()
        .filter_map(|(name, (_, new))| {
            let app = prev.named.get(name).map(|(a, _)| *a)?;
            Some((name.clone(), (app, *new)))
        })
        .collect();
    Maps {
        xids,
        atoms,
        visuals,
        exts,
        named,
        devices: prev.devices.then(&next.devices),
    }
}

/// What an attach's questions to the new server (`Asked`, sent before the regeneration)
/// learnt.
pub(super) struct Answers {
    /// App atom → server atom, in the order of the view's atoms.
    pub(super) atoms: Vec<(u32, u32)>,
    /// Extension name → its placement on the new server (`None`: absent).
    pub(super) places: HashMap<String, Option<ExtPlace>>,
    /// First keycode, keysyms per keycode, keysyms.
    pub(super) keymap: (u8, u8, Vec<u32>),
}

/// Build the translation maps from the capture server's values to a new server, with a warning
/// for each visual and extension that has no counterpart there.
pub(super) fn build_maps(
    view: &AppView,
    setup: &Setup,
    regen: &winsession::Regenerated,
    xi_known: &[winsession::XiDevice],
    answers: &Answers,
) -> (Maps, Vec<String>) {
    let mut warnings = Vec::new();
    let mut xids = XidMap::new(
        view.setup.resource_id_base,
        view.setup.resource_id_mask,
        setup.resource_id_base,
        setup.resource_id_mask,
    );
    // Server-owned IDs the app holds from its setup.
    // Visuals: first as regeneration mapped them (the windows and colormaps it recreated have
    // those visuals, and a live request pairing a visual with such a colormap must name the
    // same one), as long as the map stays one-to-one (replies are translated back).
    let mut visuals: HashMap<u32, u32> = HashMap::new();
    let mut by_regen: Vec<(u32, u32)> = regen
        .visual_map
        .iter()
        .filter(|(a, _)| **a != 0)
        .map(|(a, s)| (*a, *s))
        .collect();
    by_regen.sort_unstable();
    for (app, server) in by_regen {
        if !visuals.values().any(|v| *v == server) {
            visuals.insert(app, server);
        }
    }
    for (old, new) in view.setup.roots.iter().zip(&setup.roots) {
        xids.insert(old.root, new.root);
        xids.insert(old.default_colormap, new.default_colormap);
        if !visuals.values().any(|v| *v == new.root_visual) {
            visuals.entry(old.root_visual).or_insert(new.root_visual);
        }
        // Other visuals: by class, depth and masks.
        for od in &old.allowed_depths {
            for ov in &od.visuals {
                if visuals.contains_key(&ov.visual_id) {
                    continue;
                }
                let m = setup
                    .roots
                    .iter()
                    .flat_map(|r| &r.allowed_depths)
                    .find_map(|nd| {
                        (nd.depth == od.depth)
                            .then(|| {
                                nd.visuals.iter().find(|nv| {
                                    nv.class == ov.class
                                        && nv.red_mask == ov.red_mask
                                        && nv.green_mask == ov.green_mask
                                        && nv.blue_mask == ov.blue_mask
                                        && !visuals.values().any(|v| *v == nv.visual_id)
                                })
                            })
                            .flatten()
                    });
                if let Some(nv) = m {
                    visuals.insert(ov.visual_id, nv.visual_id);
                } else if ov.class == VisualClass::TRUE_COLOR && od.depth == old.root_depth {
                    warnings.push(format!("visual {:#x} has no counterpart", ov.visual_id));
                }
            }
        }
    }
    for (old, new) in &regen.xid_map {
        xids.insert(*old, *new);
    }
    // Atoms: every name the app may hold, interned (see `Asked`).
    let mut atoms = AtomMap::new();
    let mut named = HashMap::new();
    for (&(app, server), (_, name)) in answers.atoms.iter().zip(&view.atoms) {
        atoms.insert(app, server);
        if matches!(name.as_str(), "WM_STATE" | "_NET_WM_PING")
            || guimux::translate::CLIENT_MESSAGE_DATA
                .iter()
                .any(|(n, _)| *n == name.as_str())
        {
            named.insert(name.clone(), (app, server));
        }
    }
    for (old, new) in &regen.atom_map {
        atoms.insert(*old, *new);
    }
    // Extensions.
    let mut exts = ExtMap::default();
    for (name, app) in &view.exts {
        let server = answers.places.get(name).copied().flatten();
        // GUIEVICT is guievict's own (its internal clients ask it, the app never does);
        // MIT-SHM is converted by guimux (see `shm_conversion`).
        if server.is_none()
            && name != guimux::shmconv::EXTENSION
            && name != guievict_ext_proto::EXTENSION_NAME
        {
            warnings.push(format!(
                "extension {name} is missing on the new server: requests for it will fail with BadImplementation"
            ));
        }
        exts.entries.push(ExtEntry {
            name: name.clone(),
            table: guimux::tables::ext_by_xname(name),
            app: Some(*app),
            server,
        });
    }
    (
        Maps {
            xids,
            atoms,
            visuals,
            exts,
            named,
            // XInput device IDs as regeneration matched them (by use and name); the capture
            // server's devices without a counterpart keep their IDs out of use.
            devices: DeviceMap::between(
                regen
                    .xi_device_map
                    .iter()
                    .map(|(o, n)| (u32::from(*o), u32::from(*n))),
                xi_known.iter().map(|d| u32::from(d.id)),
            ),
        },
        warnings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use x11rb::protocol::xproto::{Depth, Screen, Visualtype};

    /// Maps with the given ID and atom pairs (app → server) and ranges.
    fn maps(
        app: (u32, u32),
        server: (u32, u32),
        xids: &[(u32, u32)],
        atoms: &[(u32, u32)],
        visuals: &[(u32, u32)],
    ) -> Maps {
        let mut x = XidMap::new(app.0, app.1, server.0, server.1);
        for &(a, s) in xids {
            x.insert(a, s);
        }
        let mut at = AtomMap::new();
        for &(a, s) in atoms {
            at.insert(a, s);
        }
        Maps {
            xids: x,
            atoms: at,
            visuals: visuals.iter().copied().collect(),
            exts: ExtMap::default(),
            named: HashMap::new(),
            devices: Default::default(),
        }
    }

    /// Distinct values (a bijection's halves).
    fn distinct(n: usize, base: u32) -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::hash_set(base..base + 0x1_0000, n)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
    }

    proptest! {
        /// A→B then B→C composed is A→C: every app value whose B value has a C counterpart maps
        /// to exactly that, the others are dropped, and the ranges come from the two ends.
        #[test]
        fn composition_of_two_moves_is_the_move_from_first_to_last(
            a in distinct(24, 0x0020_0000),
            b in distinct(24, 0x0040_0000),
            c in distinct(24, 0x0060_0000),
            atoms_a in distinct(16, 100),
            atoms_b in distinct(16, 300),
            atoms_c in distinct(16, 500),
            keep in proptest::collection::vec(any::<bool>(), 24),
        ) {
            let prev_x: Vec<(u32, u32)> = a.iter().copied().zip(b.iter().copied()).collect();
            // B → C knows only some of B's values (others' windows there, freed resources).
            let next_x: Vec<(u32, u32)> = b
                .iter()
                .copied()
                .zip(c.iter().copied())
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(p, _)| p)
                .collect();
            let prev_a: Vec<(u32, u32)> =
                atoms_a.iter().copied().zip(atoms_b.iter().copied()).collect();
            let next_a: Vec<(u32, u32)> = atoms_b
                .iter()
                .copied()
                .zip(atoms_c.iter().copied())
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(p, _)| p)
                .collect();
            let prev = maps(
                (0x0020_0000, 0x1f_ffff),
                (0x0040_0000, 0x1f_ffff),
                &prev_x,
                &prev_a,
                &[(0x21, 0x41), (0x22, 0x42)],
            );
            let next = maps(
                (0x0040_0000, 0x1f_ffff),
                (0x0060_0000, 0x1f_ffff),
                &next_x,
                &next_a,
                &[(0x41, 0x61)],
            );
            let m = compose(&prev, &next);
            prop_assert_eq!(m.xids.app_base, 0x0020_0000);
            prop_assert_eq!(m.xids.server_base, 0x0060_0000);
            for (i, &(app, old)) in prev_x.iter().enumerate() {
                let want = next_x.iter().find(|(b, _)| *b == old).map(|(_, c)| *c);
                prop_assert_eq!(m.xids.lookup(app), want, "xid #{}", i);
            }
            prop_assert_eq!(m.xids.len(), next_x.len());
            for &(app, old) in &prev_a {
                let want = next_a.iter().find(|(b, _)| *b == old).map(|(_, c)| *c);
                prop_assert_eq!(m.atoms.to_server(app), want);
            }
            prop_assert_eq!(m.visuals.get(&0x21), Some(&0x61));
            prop_assert_eq!(m.visuals.get(&0x22), None);
            // Composing once more with the identity of C changes nothing.
            let ident: Vec<(u32, u32)> = c.iter().map(|&v| (v, v)).collect();
            let ident_a: Vec<(u32, u32)> = atoms_c.iter().map(|&v| (v, v)).collect();
            let id = maps(
                (0x0060_0000, 0x1f_ffff),
                (0x0060_0000, 0x1f_ffff),
                &ident,
                &ident_a,
                &[(0x61, 0x61)],
            );
            let again = compose(&m, &id);
            let mut p1: Vec<(u32, u32)> = m.xids.pairs().collect();
            let mut p2: Vec<(u32, u32)> = again.xids.pairs().collect();
            p1.sort_unstable();
            p2.sort_unstable();
            prop_assert_eq!(p1, p2);
        }
    }

    const RGB: (u32, u32, u32) = (0xff_0000, 0xff00, 0xff);
    const APP_BASE: u32 = 0x0020_0000;
    const NEW_BASE: u32 = 0x0060_0000;

    fn visual(id: u32, class: VisualClass, masks: (u32, u32, u32)) -> Visualtype {
        Visualtype {
            visual_id: id,
            class,
            red_mask: masks.0,
            green_mask: masks.1,
            blue_mask: masks.2,
            ..Default::default()
        }
    }

    /// A one-screen setup: ID range from `base`, root window, default colormap, root visual
    /// (depth 24) and the visuals by depth.
    fn setup(base: u32, root: u32, cmap: u32, root_visual: u32, depths: Vec<Depth>) -> Setup {
        Setup {
            resource_id_base: base,
            resource_id_mask: 0x1f_ffff,
            roots: vec![Screen {
                root,
                default_colormap: cmap,
                root_visual,
                root_depth: 24,
                allowed_depths: depths,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn view(setup: Setup) -> AppView {
        AppView {
            setup,
            atoms: Vec::new(),
            exts: Vec::new(),
            keymap: (8, 1, Vec::new()),
        }
    }

    fn answers() -> Answers {
        Answers {
            atoms: Vec::new(),
            places: HashMap::new(),
            keymap: (8, 1, Vec::new()),
        }
    }

    fn place(major: u8) -> ExtPlace {
        ExtPlace {
            major,
            first_event: 0,
            first_error: 0,
        }
    }

    /// The plain case: the root window and default colormap of each screen, the IDs
    /// regeneration recreated, and the two ID ranges at the ends.
    #[test]
    fn build_maps_pairs_roots_colormaps_and_regenerated_ids() {
        let old = setup(APP_BASE, 0x100, 0x20, 0x21, Vec::new());
        let new = setup(NEW_BASE, 0x200, 0x40, 0x41, Vec::new());
        let regen = winsession::Regenerated {
            xid_map: [(APP_BASE + 1, NEW_BASE + 1), (APP_BASE + 7, NEW_BASE + 2)].into(),
            ..Default::default()
        };
        let (m, warnings) = build_maps(&view(old), &new, &regen, &[], &answers());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((m.xids.app_base, m.xids.server_base), (APP_BASE, NEW_BASE));
        assert_eq!(m.xids.lookup(0x100), Some(0x200));
        assert_eq!(m.xids.lookup(0x20), Some(0x40));
        assert_eq!(m.xids.lookup(APP_BASE + 1), Some(NEW_BASE + 1));
        assert_eq!(m.xids.lookup(APP_BASE + 7), Some(NEW_BASE + 2));
        assert_eq!(m.xids.lookup(APP_BASE + 3), None);
        // Without visuals listed, the root visual still maps to the root visual.
        assert_eq!(m.visuals.get(&0x21), Some(&0x41));
    }

    /// Visuals: regeneration's pairs first (one-to-one, 0 skipped), then the root visual,
    /// then the others by depth, class and masks; a TrueColor visual of the root depth without
    /// a counterpart is warned about, one of another depth is not.
    #[test]
    fn build_maps_matches_visuals_one_to_one() {
        let tc = VisualClass::TRUE_COLOR;
        let dc = VisualClass::DIRECT_COLOR;
        let old = setup(
            APP_BASE,
            0x100,
            0x20,
            0x21,
            vec![
                Depth {
                    depth: 24,
                    visuals: vec![
                        visual(0x21, tc, RGB),
                        visual(0x22, tc, RGB),
                        visual(0x23, dc, RGB),
                        visual(0x24, tc, (0xff, 0xff00, 0xff_0000)),
                    ],
                },
                Depth {
                    depth: 32,
                    visuals: vec![visual(0x25, tc, RGB)],
                },
            ],
        );
        let new = setup(
            NEW_BASE,
            0x200,
            0x40,
            0x41,
            vec![Depth {
                depth: 24,
                visuals: vec![
                    visual(0x41, tc, RGB),
                    visual(0x42, tc, RGB),
                    visual(0x43, dc, RGB),
                ],
            }],
        );
        let regen = winsession::Regenerated {
            // 0x26 asks for the server visual 0x22 has already: dropped (replies are
            // translated back, the map must stay one-to-one); visual 0 is no visual.
            visual_map: [(0x22, 0x42), (0x26, 0x42), (0, 0x43)].into(),
            ..Default::default()
        };
        let (m, warnings) = build_maps(&view(old), &new, &regen, &[], &answers());
        assert_eq!(m.visuals.get(&0x22), Some(&0x42));
        assert_eq!(m.visuals.get(&0x26), None);
        assert_eq!(m.visuals.get(&0), None);
        assert_eq!(m.visuals.get(&0x21), Some(&0x41));
        assert_eq!(m.visuals.get(&0x23), Some(&0x43));
        assert_eq!(m.visuals.get(&0x24), None);
        assert_eq!(m.visuals.get(&0x25), None);
        assert_eq!(m.visuals.len(), 3);
        assert_eq!(warnings, vec!["visual 0x24 has no counterpart".to_string()]);
    }

    /// Atoms: the view's names paired with the new server's answers, plus regeneration's;
    /// only the names guimux treats specially are kept by name.
    #[test]
    fn build_maps_pairs_atoms_and_names_the_special_ones() {
        let mut v = view(setup(APP_BASE, 0x100, 0x20, 0x21, Vec::new()));
        v.atoms = vec![
            (300, "WM_STATE".into()),
            (301, "_NET_WM_PING".into()),
            (302, "WM_PROTOCOLS".into()),
            (303, "SOMETHING_ELSE".into()),
        ];
        let mut a = answers();
        a.atoms = vec![(300, 500), (301, 501), (302, 502), (303, 503)];
        let regen = winsession::Regenerated {
            atom_map: [(310, 510)].into(),
            ..Default::default()
        };
        let new = setup(NEW_BASE, 0x200, 0x40, 0x41, Vec::new());
        let (m, _) = build_maps(&v, &new, &regen, &[], &a);
        for (app, server) in [(300, 500), (301, 501), (302, 502), (303, 503), (310, 510)] {
            assert_eq!(m.atoms.to_server(app), Some(server), "atom {app}");
        }
        let mut named: Vec<(&str, (u32, u32))> =
            m.named.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        named.sort_unstable();
        assert_eq!(
            named,
            vec![
                ("WM_PROTOCOLS", (302, 502)),
                ("WM_STATE", (300, 500)),
                ("_NET_WM_PING", (301, 501)),
            ]
        );
    }

    /// Extensions: each the app knows gets the new server's placement; a missing one is
    /// warned about unless guimux converts it (MIT-SHM) or it is guievict's own (GUIEVICT).
    #[test]
    fn build_maps_places_extensions_and_names_the_missing() {
        let mut v = view(setup(APP_BASE, 0x100, 0x20, 0x21, Vec::new()));
        v.exts = vec![
            ("RENDER".into(), place(130)),
            (guimux::shmconv::EXTENSION.into(), place(131)),
            (guievict_ext_proto::EXTENSION_NAME.into(), place(132)),
            ("XFIXES".into(), place(133)),
        ];
        let mut a = answers();
        a.places.insert("RENDER".into(), Some(place(140)));
        a.places.insert(guimux::shmconv::EXTENSION.into(), None);
        let new = setup(NEW_BASE, 0x200, 0x40, 0x41, Vec::new());
        let (m, warnings) = build_maps(&v, &new, &Default::default(), &[], &a);
        let render = m.exts.by_name("RENDER").unwrap();
        assert_eq!(render.app, Some(place(130)));
        assert_eq!(render.server, Some(place(140)));
        assert_eq!(render.table, guimux::tables::ext_by_xname("RENDER"));
        assert!(render.table.is_some());
        let xfixes = m.exts.by_name("XFIXES").unwrap();
        assert_eq!((xfixes.app, xfixes.server), (Some(place(133)), None));
        assert_eq!(m.exts.entries.len(), 4);
        assert_eq!(
            warnings,
            vec![
                "extension XFIXES is missing on the new server: requests for it will fail with \
                 BadImplementation"
                    .to_string()
            ]
        );
    }

    /// XInput devices: regeneration's pairs; a known device without a counterpart keeps its
    /// ID out of use; without any pair the map is the identity.
    #[test]
    fn build_maps_maps_devices_and_reserves_the_unmatched() {
        let v = view(setup(APP_BASE, 0x100, 0x20, 0x21, Vec::new()));
        let new = setup(NEW_BASE, 0x200, 0x40, 0x41, Vec::new());
        let known: Vec<winsession::XiDevice> = [2, 3, 6, 7]
            .into_iter()
            .map(|id| winsession::XiDevice {
                id,
                use_: 3,
                name: format!("device {id}"),
            })
            .collect();
        let regen = winsession::Regenerated {
            xi_device_map: [(2, 2), (3, 3), (6, 9)].into(),
            ..Default::default()
        };
        let (mut m, _) = build_maps(&v, &new, &regen, &known, &answers());
        assert_eq!(m.devices.to_server(6), 9);
        assert_eq!(m.devices.to_server(2), 2);
        // The new server's device 7 is not the app's device 7 (which has no counterpart).
        assert_ne!(m.devices.to_app(7), 7);
        let (m, _) = build_maps(&v, &new, &Default::default(), &known, &answers());
        assert_eq!(m.devices.to_server(6), 6);
    }

    /// Composition of the parts other than IDs and atoms: extensions keep the app's
    /// placement and take the new server's by name; names kept by both ends compose, the
    /// others drop; an identity device map composes to the next one.
    #[test]
    fn compose_extensions_names_and_devices() {
        let entry = |name: &str, app: Option<u8>, server: Option<u8>| ExtEntry {
            name: name.into(),
            table: guimux::tables::ext_by_xname(name),
            app: app.map(place),
            server: server.map(place),
        };
        let mut prev = maps(
            (APP_BASE, 0x1f_ffff),
            (0x0040_0000, 0x1f_ffff),
            &[],
            &[],
            &[],
        );
        prev.exts.entries = vec![
            entry("RENDER", Some(130), Some(135)),
            entry("XFIXES", Some(133), Some(136)),
            entry("MIT-SHM", Some(131), None),
        ];
        prev.named = [
            ("WM_STATE".to_string(), (300, 400)),
            ("WM_PROTOCOLS".to_string(), (302, 402)),
        ]
        .into();
        let mut next = maps(
            (0x0040_0000, 0x1f_ffff),
            (NEW_BASE, 0x1f_ffff),
            &[],
            &[],
            &[],
        );
        next.exts.entries = vec![
            entry("RENDER", Some(135), Some(150)),
            entry("MIT-SHM", None, Some(151)),
        ];
        next.named = [
            ("WM_STATE".to_string(), (400, 500)),
            ("_NET_WM_PING".to_string(), (401, 501)),
        ]
        .into();
        next.devices = DeviceMap::between([(2, 2), (6, 9)], [2, 6]);
        let m = compose(&prev, &next);
        let got: Vec<(&str, Option<ExtPlace>, Option<ExtPlace>)> = m
            .exts
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.app, e.server))
            .collect();
        assert_eq!(
            got,
            vec![
                ("RENDER", Some(place(130)), Some(place(150))),
                ("XFIXES", Some(place(133)), None),
                ("MIT-SHM", Some(place(131)), Some(place(151))),
            ]
        );
        assert_eq!(m.named.len(), 1);
        assert_eq!(m.named.get("WM_STATE"), Some(&(300, 500)));
        assert_eq!(m.devices.to_server(6), 9);
    }
}

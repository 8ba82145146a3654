//! Fidelity of a move: which of the messages a capture and an attach collect say that part of
//! the GUI was not carried exactly — a *loss*, which the user must hear of and which fails the
//! command unless it was forced — and which only say what guievict did to keep the GUI exact
//! (an event sent to the app, a request converted). What flows through here: the capture's list
//! of what it could not read or model (`Session::unknown`) and the regeneration's warnings in;
//! the losses among them out, to the attach report's `lost` list and to the up-front refusal of
//! a move or detach that could not bring the GUI back exactly.

use winsession::Session;

/// Regeneration warnings that describe an adaptation, not a loss: the state is there, in the
/// target's own terms.
const ADAPTATIONS: &[&str] = &[
    // XI2 version negotiated lower/higher: the app's selections are renewed as made.
    "negotiated on the target instead of",
    // An input device matched by use and another name: events keep flowing.
    "has no namesake on the target; using",
    // MIT-SHM absent there: guimux serves the segments itself (a segment it cannot read is a
    // loss of its own, reported by the attach).
    "the target has no MIT-SHM: the application's segments are not attached there",
    // A top-level that a window manager had reparented into its frame: created on the root,
    // where the target's window manager (if any) frames it again. (An app's window embedded
    // in another application's window, XEmbed, is not told apart yet: see architecture.md.)
    "(window manager frame?); created on the root",
];

/// Whether a regeneration warning says that something was not recreated exactly.
pub fn is_loss(warning: &str) -> bool {
    !ADAPTATIONS.iter().any(|a| warning.contains(a))
}

/// What a capture could not read or cannot recreate: attaching this session anywhere would
/// not bring the GUI back exactly. Empty for a session guievict carries in full.
pub fn uncarried(session: &Session) -> Vec<String> {
    session.unknown.clone()
}

/// The refusal of an operation (`op`: "move", "detach") that would lose `what`, saying where
/// the app is and how to go ahead anyway.
pub fn refusal(op: &str, what: &[String], whereabouts: &str) -> String {
    const SHOWN: usize = 8;
    let mut list: Vec<&str> = what.iter().take(SHOWN).map(String::as_str).collect();
    let more = what.len().saturating_sub(SHOWN);
    let extra = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    list.dedup();
    // "moved", "detached", "attached", "replicated".
    let done = if op.ends_with('e') {
        format!("{op}d")
    } else {
        format!("{op}ed")
    };
    format!(
        "not {done}: guievict cannot carry all of this application's GUI exactly ({}{extra}); {whereabouts}; use --force to {op} anyway and lose that",
        list.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptations_are_not_losses_and_everything_else_is() {
        assert!(!is_loss(
            "XInput 2.3 negotiated on the target instead of the application's 2.4"
        ));
        assert!(!is_loss(
            "XInput device 9 (SlaveKeyboard, \"k\") has no namesake on the target; using 11 (SlaveKeyboard)"
        ));
        assert!(is_loss(
            "not recreated: GLXContext 0x600009: not modelled, will not be recreated"
        ));
        assert!(is_loss(
            "XkbSelectEvents(0x100) failed, state lost: X11 error"
        ));
        assert!(is_loss(
            "font \"-misc-x\" is missing on the target; using closest match \"fixed\" (distance 3.0)"
        ));
    }

    #[test]
    fn a_refusal_names_what_and_where_and_bounds_the_list() {
        let what: Vec<String> = (0..12).map(|i| format!("dbeWindow {i:#x}")).collect();
        let r = refusal("move", &what, "the application stays on :1");
        assert!(r.starts_with("not moved: "));
        assert!(r.contains("dbeWindow 0x7"));
        assert!(!r.contains("dbeWindow 0x8"));
        assert!(r.contains("and 4 more"));
        assert!(r.contains("stays on :1"));
        assert!(r.contains("--force to move anyway"));
    }
}

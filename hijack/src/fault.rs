//! Fault injection for the tests of guievict's own recovery paths: the environment variable
//! `GUIEVICT_FAULT` of the *application* names points where an operation fails on purpose, so a
//! test can prove that a failure there leaves the GUI where it was. Nothing flows through here
//! in normal use: with the variable unset (the default) every check is false. Format: a
//! comma-separated list of `POINT` or `POINT@DISPLAY` (the fault fires only for operations on
//! that display). Points:
//! - `attach-regenerated`: an attach fails after the session was regenerated on the target,
//!   before the app is switched to it.

/// Whether the fault `point` is armed for an operation on `display`.
pub fn armed(point: &str, display: &str) -> bool {
    std::env::var("GUIEVICT_FAULT")
        .map(|v| matches(&v, point, display))
        .unwrap_or(false)
}

fn matches(spec: &str, point: &str, display: &str) -> bool {
    spec.split(',')
        .map(str::trim)
        .any(|f| match f.split_once('@') {
            Some((p, d)) => p == point && d == display,
            None => f == point,
        })
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn a_fault_fires_at_its_point_and_only_for_its_display() {
        assert!(matches("attach-regenerated", "attach-regenerated", ":3"));
        assert!(matches(
            "x, attach-regenerated@:3",
            "attach-regenerated",
            ":3"
        ));
        assert!(!matches(
            "attach-regenerated@:3",
            "attach-regenerated",
            ":1"
        ));
        assert!(!matches("", "attach-regenerated", ":1"));
        assert!(!matches("attach", "attach-regenerated", ":1"));
    }
}

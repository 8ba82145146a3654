//! Why a detach, attach or connect failed: the one error type of the session functions, and the
//! small adapters that turn an x11rb request or reply failure into it with the stage it
//! happened in. Nothing flows through here but failures on their way back to the controller.

use crate::muxloop::LoopGone;
use x11rb::errors::{ConnectionError, ReplyError};

/// Why a session operation failed. Each variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The relay for this connection has ended.
    #[error(transparent)]
    Loop(#[from] LoopGone),
    /// Connecting to the target display failed.
    #[error("cannot connect to X display {display}: {why}")]
    Connect {
        /// Display name.
        display: String,
        /// Reason (auth, no such display, …).
        why: String,
    },
    /// An X request on the internal client failed.
    #[error("X protocol error during {stage}: {why}")]
    X {
        /// What was being done.
        stage: &'static str,
        /// The error.
        why: String,
    },
    /// Capturing the window session failed.
    #[error("capturing the window session failed: {0}")]
    Capture(String),
    /// Regenerating the window session failed.
    #[error("regenerating the window session on {display} failed: {why}")]
    Regenerate {
        /// Display.
        display: String,
        /// Reason.
        why: String,
    },
    /// The operation needs a state the connection is not in.
    #[error("{0}")]
    State(String),
    /// The target cannot host the application (it lacks an extension the app depends on);
    /// nothing was created there. The text names the extension and says where the app is now.
    #[error("{0}")]
    Refused(String),
}

pub(super) fn xerr(stage: &'static str) -> impl Fn(ReplyError) -> SessionError {
    move |e| SessionError::X {
        stage,
        why: e.to_string(),
    }
}

pub(super) fn cerr(stage: &'static str) -> impl Fn(ConnectionError) -> SessionError {
    move |e| SessionError::X {
        stage,
        why: e.to_string(),
    }
}

//! The node SSH server (work in progress).

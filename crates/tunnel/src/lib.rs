//! Reverse tunnels (work in progress).

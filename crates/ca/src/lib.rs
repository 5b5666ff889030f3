//! Certificate authorities: SSH and X.509 templates over a Signer trait, CA key encryption (L0).

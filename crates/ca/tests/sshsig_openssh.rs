//! SSHSIG conformance with OpenSSH: `ssh-keygen -Y verify` accepts our
//! detached signatures (and only for the right data, namespace and key), and
//! we verify `ssh-keygen -Y sign` signatures under the same rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use keygate_ca::{
    CaError, KRL_SIG_NAMESPACE, KeyAlgorithm, Krl, KrlCaSection, Signer, SoftwareSigner,
    sshsig_sign, sshsig_verify,
};
use support::{keygen, keygen_ok, new_key, read, write};
use time::macros::datetime;

/// `ssh-keygen -Y verify` of `data` against `sig_file`, with `signer_line`
/// allowed as identity `keygate` for [`KRL_SIG_NAMESPACE`].
fn keygen_verifies(dir: &Path, signer_line: &str, namespace: &str, data: &[u8]) -> bool {
    write(
        dir,
        "allowed_signers",
        format!("keygate namespaces=\"{KRL_SIG_NAMESPACE}\" {signer_line}\n"),
    );
    let out = keygen(
        dir,
        &[
            "-Y",
            "verify",
            "-f",
            "allowed_signers",
            "-I",
            "keygate",
            "-n",
            namespace,
            "-s",
            "file.sig",
        ],
        data,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        assert!(
            stdout.contains("Good \"krl@keygate\" signature for keygate"),
            "{stdout}"
        );
    }
    out.status.success()
}

fn rejected(result: Result<(), CaError>, needle: &str) {
    match result {
        Err(CaError::SignatureRejected { reason }) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected a rejection containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn ssh_keygen_verifies_our_signature_over_a_krl() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let signer = SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap();
    let line = signer.public_key().to_openssh().unwrap();
    let mut krl = Krl::new(3, datetime!(2030-01-01 0:00 UTC), "signed");
    krl.certificates.push(KrlCaSection {
        ca_public_key: line.clone(),
        serials: BTreeSet::from([17]),
        key_ids: BTreeSet::from(["bob".into()]),
    });
    let bytes = krl.encode().unwrap();
    let armored = sshsig_sign(&signer, KRL_SIG_NAMESPACE, &bytes).unwrap();
    write(dir, "file.sig", &armored);

    assert!(keygen_verifies(dir, &line, KRL_SIG_NAMESPACE, &bytes));
    let mut tampered = bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(!keygen_verifies(dir, &line, KRL_SIG_NAMESPACE, &tampered));
    assert!(!keygen_verifies(dir, &line, "file", &bytes));
    let stranger = SoftwareSigner::generate(KeyAlgorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap();
    assert!(!keygen_verifies(dir, &stranger, KRL_SIG_NAMESPACE, &bytes));
    // And ours agrees on the same file.
    sshsig_verify(&read(dir, "file.sig"), &[line], KRL_SIG_NAMESPACE, &bytes).unwrap();
}

#[test]
fn we_verify_ssh_keygen_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let line = new_key(dir, "signer");
    let stranger = new_key(dir, "stranger");
    let message = b"KRL bytes, or any file\n";
    write(dir, "file", message);
    for hash in ["sha512", "sha256"] {
        let option = format!("hashalg={hash}");
        keygen_ok(
            dir,
            &[
                "-Y",
                "sign",
                "-f",
                "signer",
                "-n",
                KRL_SIG_NAMESPACE,
                "-O",
                &option,
                "file",
            ],
        );
        let armored = std::fs::read_to_string(dir.join("file.sig")).unwrap();
        std::fs::remove_file(dir.join("file.sig")).unwrap();
        let trusted = [stranger.clone(), line.clone()];
        sshsig_verify(&armored, &trusted, KRL_SIG_NAMESPACE, message).unwrap();

        rejected(
            sshsig_verify(
                &armored,
                &trusted,
                KRL_SIG_NAMESPACE,
                b"KRL bytes, or any file",
            ),
            "does not match",
        );
        rejected(
            sshsig_verify(&armored, &trusted, "git", message),
            "namespace",
        );
        rejected(
            sshsig_verify(
                &armored,
                std::slice::from_ref(&stranger),
                KRL_SIG_NAMESPACE,
                message,
            ),
            "untrusted",
        );
        // A flipped bit inside the armored blob never verifies.
        let body_start = armored.find('\n').unwrap() + 1;
        let mut bytes = armored.clone().into_bytes();
        bytes[body_start + 10] = if bytes[body_start + 10] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(sshsig_verify(&flipped, &trusted, KRL_SIG_NAMESPACE, message).is_err());
    }
}

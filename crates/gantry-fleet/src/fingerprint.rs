//! OpenSSH's fingerprint of a public key: `SHA256:` and the unpadded
//! base64 of the SHA-256 of the key's wire form, as `ssh-keygen -lf` and
//! ssh's own messages print it, so a person compares it with what they see.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The fingerprint of a public key line (`TYPE BASE64 [comment]`), or the
/// line itself when it is not one.
pub fn fingerprint(public_key_line: &str) -> String {
    let mut parts = public_key_line.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return public_key_line.to_owned();
    };
    match base64::engine::general_purpose::STANDARD.decode(blob) {
        Ok(bytes) => format!(
            "{kind} SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(bytes))
        ),
        Err(_) => public_key_line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fingerprint_is_openssh_s() {
        // `ssh-keygen -lf` of this key prints this fingerprint.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWXAekFC2ol50BtQr0Sv0qF8QpTQp3EpEZMyV5YeVAW host-1";
        let expected = std::process::Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f", "/dev/stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(key.as_bytes())?;
                child.wait_with_output()
            })
            .expect("ssh-keygen runs");
        let printed = String::from_utf8_lossy(&expected.stdout);
        let sha = printed.split_whitespace().nth(1).expect("a fingerprint");
        assert_eq!(super::fingerprint(key), format!("ssh-ed25519 {sha}"));
    }
}

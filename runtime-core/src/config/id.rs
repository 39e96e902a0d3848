//! Container ids are names, never paths.

use crate::error::{Error, Result};

const MAX_ID_LEN: usize = 1024;

/// Accepts `[A-Za-z0-9][A-Za-z0-9_.+-]*`, at most 1024 bytes.
pub fn validate(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    let Some(first) = id.bytes().next() else {
        return bad("must not be empty");
    };
    if id.len() > MAX_ID_LEN {
        return bad("longer than 1024 bytes");
    }
    if !first.is_ascii_alphanumeric() {
        return bad("must start with a letter or digit");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    {
        return bad("only letters, digits and _ . + - are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_engine_ids() {
        for id in [
            "a",
            "0abc",
            "k8s_pod.x+y-z",
            &"f".repeat(64),
            &"x".repeat(1024),
        ] {
            assert!(validate(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refuses_paths_and_odd_names() {
        for id in [
            "",
            "../x",
            "a/b",
            ".",
            "..",
            "-a",
            "_a",
            "a b",
            "a\0",
            &"x".repeat(1025),
        ] {
            assert!(validate(id).is_err(), "{id:?}");
        }
    }
}

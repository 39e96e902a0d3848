//! The `regex` API oci-spec uses (`Regex::new`, `is_match`, `captures`,
//! `RegexBuilder::size_limit`), served by regex-lite. One difference:
//! regex-lite's classes are ASCII (`\d` is `[0-9]`), which is what the
//! formats oci-spec checks mean anyway.

pub use regex_lite::*;

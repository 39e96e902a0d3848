//! Reading the kernel's text files whole, in as few reads as they allow.

use std::path::Path;

/// A small kernel-made text file (/proc, /sys) read whole. Such files say
/// their size is 0, so `fs::read_to_string` starts at 32 bytes and doubles:
/// 7-9 reads for a mountinfo, each one more trip through its generator.
/// Reads of a page take most of them at once (and, unlike `read_to_end`
/// on a File, no stat or seek is spent on a size the file does not know).
pub fn read_text(path: impl AsRef<Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::read_text;

    /// Past the first page and across the doubling, every byte comes back
    /// once and in order; an empty file is an empty string.
    #[test]
    fn read_text_reads_whole_files() {
        let dir = std::env::temp_dir().join(format!("estiba-readtext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 10_000, 70_001] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let path = dir.join(format!("f{len}"));
            std::fs::write(&path, &text).unwrap();
            assert_eq!(read_text(&path).unwrap(), text, "length {len}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        // A kernel file that reports size 0 but has text.
        assert!(read_text("/proc/self/status").unwrap().contains("\nPid:\t"));
    }
}

//! Which local `ADD` sources are archives, and their decompressed streams.
//!
//! As BuildKit (`isArchivePath`): a regular file is an archive when its
//! first bytes name a compression it knows (gzip, bzip2, xz, zstd) or none,
//! and the (decompressed) stream starts with a valid tar header. The file
//! name plays no part: `x.tar.gz` holding text is copied as a file, and a
//! tarball named `x.bin` is extracted. Everything is streamed; nothing holds
//! a whole archive in memory.

use std::io::{self, BufRead, BufReader, Read};

/// The decoders' cap on an xz block's dictionary (KiB): `xz -9` needs
/// 64 MiB, so 512 MiB leaves room for unusual settings while a hostile
/// header cannot make the build allocate gigabytes.
const XZ_MEMORY_LIMIT_KIB: u32 = 512 << 10;

/// Compressions an `ADD` archive may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// The compression the magic bytes at the start of a file name.
    pub(crate) fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if magic.starts_with(b"BZh") {
            Compression::Bzip2
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The decompressed stream of `file` when it is a tar archive (plain or
/// compressed), else `None` (a decoder error while peeking counts as "not
/// an archive", as in BuildKit, so such a file is copied as it is).
pub(crate) fn open_archive<'a, R: Read + 'a>(file: R) -> io::Result<Option<Box<dyn Read + 'a>>> {
    let mut raw = BufReader::with_capacity(256 << 10, file);
    let compression = Compression::detect(raw.fill_buf()?);
    let Ok(mut stream) = decoder(compression, raw) else {
        return Ok(None);
    };
    let mut header = [0u8; 512];
    let mut filled = 0;
    while filled < header.len() {
        match stream.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if compression == Compression::None => return Err(e),
            Err(_) => return Ok(None),
        }
    }
    if filled < header.len() || !is_tar_header(&header) {
        return Ok(None);
    }
    Ok(Some(Box::new(io::Cursor::new(header).chain(stream))))
}

/// `stream` decompressed as its magic bytes say (gzip, bzip2, xz, zstd),
/// or as it is: a build context tar on stdin, which docker accepts in all
/// of these.
pub(crate) fn decompressed<'a, R: Read + 'a>(stream: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut raw = BufReader::with_capacity(256 << 10, stream);
    let compression = Compression::detect(raw.fill_buf()?);
    decoder(compression, raw)
}

/// The decoder of `compression` over `raw`.
fn decoder<'a, R: BufRead + 'a>(
    compression: Compression,
    raw: R,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            raw,
            true,
            XZ_MEMORY_LIMIT_KIB,
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
    })
}

/// A tar header block whose checksum field matches its bytes (Go's
/// `archive/tar` accepts both the unsigned and the signed sum); an all-zero
/// block (an empty archive's end marker) is not one, as in Go.
pub(crate) fn is_tar_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .take_while(|&c| c != '\0')
        .collect();
    let Ok(want) = i64::from_str_radix(text.trim_matches(' '), 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (idx, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&idx) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || want == signed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tarball() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "d/hello.txt", &b"hello\n"[..])
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn entries(mut stream: Box<dyn Read + '_>) -> Vec<String> {
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        let mut archive = tar::Archive::new(&all[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn every_compression_is_detected_and_decoded() {
        let tar = tarball();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        for (what, data) in [
            ("plain", tar.clone()),
            ("gzip", gz.finish().unwrap()),
            ("bzip2", bz.finish().unwrap()),
            ("zstd", zst),
        ] {
            let stream = open_archive(&data[..]).unwrap();
            let stream = stream.unwrap_or_else(|| panic!("{what} not seen as an archive"));
            assert_eq!(entries(stream), ["d/hello.txt"], "{what}");
        }
    }

    #[test]
    fn text_and_compressed_text_are_not_archives() {
        assert!(open_archive(&b"just text\n"[..]).unwrap().is_none());
        assert!(open_archive(&b""[..]).unwrap().is_none());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'x'; 2000]).unwrap();
        assert!(open_archive(&gz.finish().unwrap()[..]).unwrap().is_none());
        // Truncated or corrupt compressed data is a file, not an error.
        assert!(open_archive(&b"BZh9garbage"[..]).unwrap().is_none());
        assert!(
            open_archive(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2, 3][..])
                .unwrap()
                .is_none()
        );
        // An empty archive (only zero blocks) is not an archive either.
        assert!(open_archive(&[0u8; 1024][..]).unwrap().is_none());
    }

    #[test]
    fn header_checksum_is_checked() {
        let tar = tarball();
        let mut block = [0u8; 512];
        block.copy_from_slice(&tar[..512]);
        assert!(is_tar_header(&block));
        block[0] ^= 1;
        assert!(!is_tar_header(&block));
    }
}

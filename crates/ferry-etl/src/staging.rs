//! Staging files encrypted at rest with AES-256-GCM, written and read as streams.
//!
//! Layout: an 8-byte magic `FERRYST1` and a 7-byte random nonce prefix, then the plaintext
//! in 64 KiB chunks, each sealed separately (ciphertext + 16-byte tag). Chunk `i`'s nonce is
//! the prefix, `i` (4 bytes, big-endian) and a byte that is 1 for the last chunk only, so
//! chunks cannot be reordered, dropped or cut off without the reader noticing. Every chunk
//! but the last is full, so any plaintext offset maps to one chunk: reads can start
//! anywhere (Parquet reads its footer first).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

const MAGIC: &[u8; 8] = b"FERRYST1";
const PREFIX: usize = 7;
const HEADER: u64 = (MAGIC.len() + PREFIX) as u64;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

/// The key staging files are sealed with. `Debug` never shows it.
#[derive(Clone)]
pub struct StagingKey([u8; 32]);

impl std::fmt::Debug for StagingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StagingKey(<redacted>)")
    }
}

impl StagingKey {
    /// From 64 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).ok()?;
        Some(Self(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        // The system RNG does not fail on Linux; a zero key would still be caught by tests.
        let _ = SystemRandom::new().fill(&mut key);
        Self(key)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn sealer(&self) -> LessSafeKey {
        // 32 bytes is AES-256-GCM's key length: this cannot fail.
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0)
                .unwrap_or_else(|_| unreachable!("AES-256-GCM takes a 32-byte key")),
        )
    }
}

fn nonce(prefix: &[u8; PREFIX], index: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..PREFIX].copy_from_slice(prefix);
    n[PREFIX..PREFIX + 4].copy_from_slice(&index.to_be_bytes());
    n[NONCE_LEN - 1] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

fn corrupt(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("staging file: {what}"),
    )
}

/// Seals what is written to it; [`EncryptedWriter::finish`] seals the last chunk.
pub struct EncryptedWriter<W: Write> {
    out: W,
    key: LessSafeKey,
    prefix: [u8; PREFIX],
    index: u32,
    buf: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for EncryptedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedWriter")
            .field("index", &self.index)
            .finish()
    }
}

impl<W: Write> EncryptedWriter<W> {
    pub fn new(mut out: W, key: &StagingKey) -> std::io::Result<Self> {
        let mut prefix = [0u8; PREFIX];
        SystemRandom::new()
            .fill(&mut prefix)
            .map_err(|_| std::io::Error::other("no randomness"))?;
        out.write_all(MAGIC)?;
        out.write_all(&prefix)?;
        Ok(Self {
            out,
            key: key.sealer(),
            prefix,
            index: 0,
            buf: Vec::with_capacity(CHUNK + TAG),
        })
    }

    fn seal(&mut self, last: bool) -> std::io::Result<()> {
        let n = nonce(&self.prefix, self.index, last);
        self.key
            .seal_in_place_append_tag(n, Aad::empty(), &mut self.buf)
            .map_err(|_| std::io::Error::other("sealing a staging chunk failed"))?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| std::io::Error::other("staging file too large"))?;
        Ok(())
    }

    /// Seals the last chunk and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for EncryptedWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // A full chunk is sealed only when more data comes: the last one must be marked.
        if self.buf.len() == CHUNK && !data.is_empty() {
            self.seal(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads (and seeks in) the plaintext of a staging file.
pub struct EncryptedReader {
    file: std::fs::File,
    key: LessSafeKey,
    prefix: [u8; PREFIX],
    chunks: u64,
    plain_len: u64,
    pos: u64,
    /// The decrypted chunk `current`, if any.
    plain: Vec<u8>,
    current: Option<u64>,
}

impl std::fmt::Debug for EncryptedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedReader")
            .field("plain_len", &self.plain_len)
            .field("pos", &self.pos)
            .finish()
    }
}

impl EncryptedReader {
    pub fn open(path: &Path, key: &StagingKey) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let mut head = [0u8; HEADER as usize];
        file.read_exact(&mut head)
            .map_err(|_| corrupt("too short"))?;
        if &head[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a ferry staging file"));
        }
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&head[MAGIC.len()..]);
        let body = len - HEADER;
        let sealed = (CHUNK + TAG) as u64;
        let chunks = body.div_ceil(sealed).max(1);
        let last_len = body - (chunks - 1) * sealed;
        if last_len < TAG as u64 {
            return Err(corrupt("cut short"));
        }
        Ok(Self {
            file,
            key: key.sealer(),
            prefix,
            chunks,
            plain_len: (chunks - 1) * CHUNK as u64 + last_len - TAG as u64,
            pos: 0,
            plain: Vec::with_capacity(CHUNK + TAG),
            current: None,
        })
    }

    /// The plaintext's length.
    pub fn len(&self) -> u64 {
        self.plain_len
    }

    pub fn is_empty(&self) -> bool {
        self.plain_len == 0
    }

    fn load(&mut self, index: u64) -> std::io::Result<()> {
        if self.current == Some(index) {
            return Ok(());
        }
        let sealed = (CHUNK + TAG) as u64;
        self.file.seek(SeekFrom::Start(HEADER + index * sealed))?;
        self.plain.clear();
        (&mut self.file).take(sealed).read_to_end(&mut self.plain)?;
        let last = index + 1 == self.chunks;
        let n = nonce(&self.prefix, index as u32, last);
        let opened = self
            .key
            .open_in_place(n, Aad::empty(), &mut self.plain)
            .map_err(|_| corrupt("a chunk does not authenticate (wrong key, or altered)"))?;
        let len = opened.len();
        self.plain.truncate(len);
        self.current = Some(index);
        Ok(())
    }
}

impl Read for EncryptedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.plain_len || out.is_empty() {
            return Ok(0);
        }
        let index = self.pos / CHUNK as u64;
        self.load(index)?;
        let start = (self.pos - index * CHUNK as u64) as usize;
        let n = out.len().min(self.plain.len() - start);
        out[..n].copy_from_slice(&self.plain[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for EncryptedReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.plain_len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// A staging file for Parquet's reader, which reads ranges out of order.
#[derive(Debug, Clone)]
pub struct EncryptedFile {
    pub path: PathBuf,
    pub key: StagingKey,
    pub len: u64,
}

impl parquet::file::reader::Length for EncryptedFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for EncryptedFile {
    type T = EncryptedReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let mut reader = EncryptedReader::open(&self.path, &self.key)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        reader
            .seek(SeekFrom::Start(start))
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(reader)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let mut out = vec![0u8; length];
        self.get_read(start)?
            .read_exact(&mut out)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let key = StagingKey::generate();
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut w = EncryptedWriter::new(std::fs::File::create(&path).unwrap(), &key).unwrap();
        // Uneven writes.
        for part in data.chunks(7919) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap();
        let raw = std::fs::read(&path).unwrap();
        if len > 64 {
            assert!(
                !raw.windows(64).any(|w| data.windows(64).next() == Some(w)),
                "ciphertext"
            );
        }
        let mut r = EncryptedReader::open(&path, &key).unwrap();
        assert_eq!(r.len(), len as u64);
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data, "len {len}");
        if len > 10 {
            r.seek(SeekFrom::Start(len as u64 - 10)).unwrap();
            let mut tail = Vec::new();
            r.read_to_end(&mut tail).unwrap();
            assert_eq!(tail, data[len - 10..]);
        }
    }

    #[test]
    fn chunks_round_trip_at_every_boundary() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            roundtrip(len);
        }
    }

    #[test]
    fn a_cut_altered_or_wrongly_keyed_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let key = StagingKey::generate();
        let mut w = EncryptedWriter::new(std::fs::File::create(&path).unwrap(), &key).unwrap();
        w.write_all(&vec![7u8; 2 * CHUNK + 100]).unwrap();
        w.finish().unwrap();
        let read_all = |path: &Path, key: &StagingKey| -> std::io::Result<Vec<u8>> {
            let mut out = Vec::new();
            EncryptedReader::open(path, key)?.read_to_end(&mut out)?;
            Ok(out)
        };
        assert!(
            read_all(&path, &StagingKey::generate()).is_err(),
            "wrong key"
        );
        let raw = std::fs::read(&path).unwrap();
        // Cut at a chunk boundary: the new last chunk was not sealed as last.
        let cut = dir.path().join("cut");
        std::fs::write(&cut, &raw[..HEADER as usize + 2 * (CHUNK + TAG)]).unwrap();
        assert!(read_all(&cut, &key).is_err(), "truncated");
        let mut flipped = raw.clone();
        flipped[HEADER as usize + 10] ^= 1;
        let altered = dir.path().join("altered");
        std::fs::write(&altered, flipped).unwrap();
        assert!(read_all(&altered, &key).is_err(), "altered");
        assert_eq!(read_all(&path, &key).unwrap().len(), 2 * CHUNK + 100);
        assert_eq!(format!("{key:?}"), "StagingKey(<redacted>)");
        assert_eq!(StagingKey::from_hex(&key.to_hex()).unwrap().0, key.0);
    }
}

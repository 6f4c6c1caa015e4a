//! quickXorHash, the content hash OneDrive reports for every file (`file.hashes.quickXorHash`).
//!
//! The 160-bit state is XORed with each input byte at a bit offset that advances by 11 per
//! byte (wrapping at 160), and the total length is XORed into the last 8 bytes at the end.
//! Bytes 160 positions apart land on the same offset, so each offset's bytes are XORed
//! together first and placed once; hashing is a pass of XORs over the input.

use base64::Engine;

const WIDTH_BITS: usize = 160;
const SHIFT: usize = 11;

/// An incremental quickXorHash.
#[derive(Debug, Clone)]
pub struct QuickXorHash {
    /// The 160-bit state as 20 little-endian bytes is `cells[0..2]` whole plus the low 32 bits
    /// of `cells[2]`.
    cells: [u64; 3],
    /// Bit offset at which the next byte lands.
    shift: usize,
    length: u64,
}

impl Default for QuickXorHash {
    fn default() -> Self {
        Self::new()
    }
}

impl QuickXorHash {
    pub fn new() -> Self {
        Self {
            cells: [0; 3],
            shift: 0,
            length: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        // The byte at index i lands at (shift + 11 i) mod 160; indices equal mod 160 share
        // it, so fold the input into 160 lanes first (a sequential, vectorisable XOR).
        let mut lanes = [0u8; WIDTH_BITS];
        for block in data.chunks(WIDTH_BITS) {
            for (lane, byte) in lanes.iter_mut().zip(block) {
                *lane ^= byte;
            }
        }
        for (lane, folded) in lanes.iter().enumerate().take(data.len()) {
            let offset = (self.shift + SHIFT * lane) % WIDTH_BITS;
            self.xor_at(offset, *folded);
        }
        self.shift = (self.shift + SHIFT * (data.len() % WIDTH_BITS)) % WIDTH_BITS;
        self.length = self.length.wrapping_add(data.len() as u64);
    }

    /// XORs `byte` into the 160-bit ring at bit `offset`, wrapping past bit 159 to bit 0.
    fn xor_at(&mut self, offset: usize, byte: u8) {
        let value = u64::from(byte);
        let cell = offset / 64;
        let bit = offset % 64;
        let cell_bits = if cell == 2 { WIDTH_BITS % 64 } else { 64 };
        self.cells[cell] ^= value << bit;
        if bit + 8 > cell_bits {
            // The byte straddles the end of this cell: its high bits go to the next one.
            let next = if cell == 2 { 0 } else { cell + 1 };
            self.cells[next] ^= value >> (cell_bits - bit);
        }
    }

    /// The 20-byte digest.
    pub fn digest(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(&self.cells[0].to_le_bytes());
        out[8..16].copy_from_slice(&self.cells[1].to_le_bytes());
        out[16..].copy_from_slice(&self.cells[2].to_le_bytes()[..4]);
        for (o, l) in out[12..].iter_mut().zip(self.length.to_le_bytes()) {
            *o ^= l;
        }
        out
    }

    /// The digest in base64, as Graph reports it.
    pub fn finish_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.digest())
    }
}

/// The quickXorHash of `data`, base64.
pub fn quick_xor_hash(data: &[u8]) -> String {
    let mut hasher = QuickXorHash::new();
    hasher.update(data);
    hasher.finish_base64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    /// Published vectors (input and hash, both base64) that OneDrive clients test against.
    const VECTORS: &[(&str, &str)] = &[
        ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
        ("tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
        ("0pZP", "0rDEEwAAAAAAAAAAAwAAAAAAAAA="),
        ("jRRDVA==", "jaDAEKgAAAAAAAAABAAAAAAAAAA="),
        ("eAV52qE=", "eChAHrQRCgAAAAAABQAAAAAAAAA="),
        ("luBZlaT6", "lgBHFipBCn0AAAAABgAAAAAAAAA="),
        ("qaApEj66lw==", "qQBFCiTgA11cAgAABwAAAAAAAAA="),
        ("/aNzzCFPS/A=", "/RjFHJgRgicsAR4ACAAAAAAAAAA="),
    ];

    #[test]
    fn published_vectors() {
        for (input, expected) in VECTORS {
            let data = STANDARD.decode(input).unwrap();
            assert_eq!(quick_xor_hash(&data), *expected, "input {input}");
        }
    }

    /// The algorithm as written in Microsoft's description: one byte at a time.
    fn reference(data: &[u8]) -> [u8; 20] {
        let mut bits = [0u8; 160];
        for (i, byte) in data.iter().enumerate() {
            let offset = (i * SHIFT) % WIDTH_BITS;
            for b in 0..8 {
                bits[(offset + b) % WIDTH_BITS] ^= (byte >> b) & 1;
            }
        }
        let mut out = [0u8; 20];
        for (i, bit) in bits.iter().enumerate() {
            out[i / 8] |= bit << (i % 8);
        }
        for (o, l) in out[12..].iter_mut().zip((data.len() as u64).to_le_bytes()) {
            *o ^= l;
        }
        out
    }

    proptest! {
        #[test]
        fn matches_the_bitwise_reference_in_any_split(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(0usize..2000, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut hasher = QuickXorHash::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([data.len()]) {
                hasher.update(&data[start..cut]);
                start = cut;
            }
            prop_assert_eq!(hasher.digest(), reference(&data));
        }
    }
}

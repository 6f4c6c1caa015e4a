//! OneDrive's quickXorHash: a 160-bit XOR-and-rotate checksum with the content length
//! XORed into the last 8 bytes. Implemented from Microsoft's published description.

const WIDTH_BITS: usize = 160;
const SHIFT: usize = 11;
const CELLS: usize = WIDTH_BITS.div_ceil(64);

#[derive(Debug, Clone)]
pub struct QuickXor {
    cells: [u64; CELLS],
    length: u64,
    shift_so_far: usize,
}

impl Default for QuickXor {
    fn default() -> Self {
        Self::new()
    }
}

impl QuickXor {
    pub fn new() -> Self {
        QuickXor {
            cells: [0; CELLS],
            length: 0,
            shift_so_far: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        let mut vector_offset = self.shift_so_far % WIDTH_BITS;
        // Each input byte lands SHIFT bits after the previous one; after WIDTH_BITS bytes
        // the pattern wraps, so bytes i, i+160, i+320... share a bit position.
        let iterations = data.len().min(WIDTH_BITS);
        for i in 0..iterations {
            let mut xored: u8 = 0;
            let mut j = i;
            while j < data.len() {
                xored ^= data[j];
                j += WIDTH_BITS;
            }
            let cell = vector_offset / 64;
            let bit = vector_offset % 64;
            if cell < CELLS - 1 {
                self.cells[cell] ^= (xored as u64) << bit;
                if bit > 56 {
                    self.cells[cell + 1] ^= (xored as u64) >> (64 - bit);
                }
            } else {
                // The last cell holds only WIDTH_BITS % 64 = 32 bits; overflow wraps to cell 0.
                let last_bits = WIDTH_BITS - 64 * (CELLS - 1);
                self.cells[cell] ^= (xored as u64) << bit;
                if bit + 8 > last_bits {
                    self.cells[0] ^= (xored as u64) >> (last_bits - bit);
                }
            }
            vector_offset += SHIFT;
            while vector_offset >= WIDTH_BITS {
                vector_offset -= WIDTH_BITS;
            }
        }
        self.shift_so_far = (self.shift_so_far + SHIFT * (data.len() % WIDTH_BITS)) % WIDTH_BITS;
        self.length = self.length.wrapping_add(data.len() as u64);
    }

    /// The 20-byte digest.
    pub fn finish(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        for (i, cell) in self.cells.iter().enumerate() {
            let bytes = cell.to_le_bytes();
            let start = i * 8;
            let n = (20 - start).min(8);
            out[start..start + n].copy_from_slice(&bytes[..n]);
        }
        let len = self.length.to_le_bytes();
        for (k, b) in len.iter().enumerate() {
            out[20 - 8 + k] ^= b;
        }
        out
    }

    /// Base64 of the digest, as Graph reports it in `file.hashes.quickXorHash`.
    pub fn finish_base64(&self) -> String {
        crate::util::b64(&self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(data: &[u8]) -> String {
        let mut q = QuickXor::new();
        q.update(data);
        q.finish_base64()
    }

    #[test]
    fn published_vectors() {
        assert_eq!(hash(b""), "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(hash(&[0x4A]), "SgAAAAAAAAAAAAAAAQAAAAAAAAA=");
    }

    #[test]
    fn chunking_does_not_matter() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = hash(&data);
        for split in [1usize, 7, 159, 160, 161, 333, 4999] {
            let mut q = QuickXor::new();
            for chunk in data.chunks(split) {
                q.update(chunk);
            }
            assert_eq!(q.finish_base64(), whole, "split {split}");
        }
    }
}

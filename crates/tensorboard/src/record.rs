//! TFRecord framing: `u64 len | u32 masked_crc(len) | payload | u32 masked_crc(payload)`.

/// Bytes before the payload: the length and its checksum.
pub(crate) const HEADER_LEN: usize = 8 + 4;
/// Bytes after the payload: its checksum.
pub(crate) const FOOTER_LEN: usize = 4;

/// The CRC32C of `data`, masked the way TFRecord stores it.
///
/// TFRecord masks its checksums so that a CRC computed over data that itself embeds CRCs does
/// not degenerate; readers (TensorBoard included) reject records whose masked value differs.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Frames `payload` as one complete record, so the caller can hand it to the writer in a single
/// `write_all` and a crash can only ever cut the file at or inside the last record.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(HEADER_LEN + payload.len() + FOOTER_LEN);
    record.extend_from_slice(&len);
    record.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    record.extend_from_slice(payload);
    record.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    record
}

/// Why a record could not be taken from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unframe<'a> {
    /// A complete record: its payload and the total bytes it used.
    Record(&'a [u8], usize),
    /// The buffer ends inside the record, as a killed writer leaves it.
    Truncated,
    /// A checksum does not match.
    Corrupt(&'static str),
}

/// Takes the first record off `bytes`.
pub(crate) fn unframe(bytes: &[u8]) -> Unframe<'_> {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Unframe::Truncated;
    };
    let (len_bytes, len_crc) = header.split_at(8);
    if masked_crc32c(len_bytes) != le_u32(len_crc) {
        return Unframe::Corrupt("length checksum mismatch");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(len_bytes);
    let Ok(len) = usize::try_from(u64::from_le_bytes(len)) else {
        return Unframe::Corrupt("length does not fit in memory");
    };
    let Some(body) = rest.get(..len.saturating_add(FOOTER_LEN)) else {
        return Unframe::Truncated;
    };
    let (payload, crc) = body.split_at(len);
    if masked_crc32c(payload) != le_u32(crc) {
        return Unframe::Corrupt("payload checksum mismatch");
    }
    Unframe::Record(payload, HEADER_LEN + len + FOOTER_LEN)
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_le_bytes(word)
}

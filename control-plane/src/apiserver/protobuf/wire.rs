//! The protobuf wire format, read-only: varints, field keys and
//! length-delimited payloads over a borrowed byte slice (fixed-width values
//! are recognized in keys but never read: no field of the supported kinds
//! uses them). Knows nothing about Kubernetes or JSON; every read is
//! bounds-checked and returns [`WireError`] instead of panicking.

use thiserror::Error;

/// Why the bytes are not valid protobuf.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("unexpected end of data at byte {0}")]
    Truncated(usize),
    #[error("malformed varint at byte {0}")]
    BadVarint(usize),
    #[error("invalid field number 0 at byte {0}")]
    ZeroTag(usize),
    #[error("field number {tag} out of range at byte {at}")]
    TagOutOfRange { tag: u64, at: usize },
    #[error("unsupported wire type {wire_type} at byte {at}")]
    BadWireType { wire_type: u8, at: usize },
}

/// The protobuf wire types Kubernetes uses (groups are rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Varint => "varint",
            Self::Fixed64 => "fixed64",
            Self::Len => "length-delimited",
            Self::Fixed32 => "fixed32",
        }
    }
}

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A base-128 varint of at most 10 bytes that fits in 64 bits.
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError::Truncated(self.pos));
            };
            self.pos += 1;
            let low = u64::from(byte & 0x7f);
            // The tenth byte may only carry the 64th bit.
            if i == 9 && byte > 1 {
                return Err(WireError::BadVarint(start));
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::BadVarint(start))
    }

    /// The next field key: field number and wire type.
    pub fn key(&mut self) -> Result<(u32, WireType), WireError> {
        let at = self.pos;
        let key = self.varint()?;
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            // Wire types 3 and 4 (groups) are not used by Kubernetes; 6, 7 do not exist.
            other => {
                return Err(WireError::BadWireType {
                    wire_type: other as u8,
                    at,
                });
            }
        };
        let tag = key >> 3;
        if tag == 0 {
            return Err(WireError::ZeroTag(at));
        }
        // Field numbers are at most 2^29 - 1.
        let tag = u32::try_from(tag)
            .ok()
            .filter(|t| *t < (1 << 29))
            .ok_or(WireError::TagOutOfRange { tag, at })?;
        Ok((tag, wire_type))
    }

    /// A length-delimited payload.
    pub fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|end| *end <= self.buf.len())
            .ok_or(WireError::Truncated(self.buf.len()))?;
        self.pos = end;
        self.buf.get(start..end).ok_or(WireError::Truncated(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_like_protobuf() {
        assert_eq!(Reader::new(&[0]).varint(), Ok(0));
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        // -1 as int32/int64 is ten bytes.
        let minus_one = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&minus_one).varint(), Ok(u64::MAX));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(WireError::Truncated(1)));
        let too_long = [0xff; 11];
        assert_eq!(
            Reader::new(&too_long).varint(),
            Err(WireError::BadVarint(0))
        );
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(&overflow).varint(),
            Err(WireError::BadVarint(0))
        );
    }

    #[test]
    fn keys_reject_groups_and_zero() {
        assert_eq!(Reader::new(&[0x0a]).key(), Ok((1, WireType::Len)));
        assert_eq!(Reader::new(&[0x08]).key(), Ok((1, WireType::Varint)));
        assert!(matches!(
            Reader::new(&[0x0b]).key(),
            Err(WireError::BadWireType { wire_type: 3, .. })
        ));
        assert_eq!(Reader::new(&[0x02]).key(), Err(WireError::ZeroTag(0)));
    }

    #[test]
    fn lengths_past_the_end_are_truncation() {
        let mut r = Reader::new(&[0x05, 1, 2]);
        assert_eq!(r.len_delimited(), Err(WireError::Truncated(3)));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(r.len_delimited().is_err());
        let mut r = Reader::new(&[0x02, 7, 8, 9]);
        assert_eq!(r.len_delimited(), Ok(&[7u8, 8][..]));
        assert!(!r.is_empty());
    }
}

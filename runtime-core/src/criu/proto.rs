//! The few protocol-buffer encodings criu's RPC messages need (its
//! `rpc.proto`, proto2): varints, bools, strings and nested messages out;
//! varints, strings and nested messages in. A whole protobuf crate for a
//! dozen fields would cost more than it saves.

/// A message being written: fields appended in any order.
#[derive(Default)]
pub(crate) struct Msg(Vec<u8>);

const VARINT: u64 = 0;
const LEN: u64 = 2;

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u64) {
        self.varint((u64::from(field) << 3) | wire);
    }

    /// An int32/uint32/enum field (negative int32s as ten bytes, as
    /// protobuf writes them).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Msg {
        self.key(field, VARINT);
        self.varint(v as u64);
        self
    }

    /// A bool field, written only when true (false is every field's
    /// default here).
    pub fn flag(&mut self, field: u32, v: bool) -> &mut Msg {
        if v {
            self.int(field, 1);
        }
        self
    }

    /// A string (or bytes) field.
    pub fn str(&mut self, field: u32, v: &str) -> &mut Msg {
        self.bytes(field, v.as_bytes())
    }

    fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Msg {
        self.key(field, LEN);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    /// A nested message.
    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Msg {
        self.bytes(field, &m.0)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// One field read: its number and value.
#[derive(Debug, PartialEq)]
pub(crate) enum Field<'a> {
    Int(u32, u64),
    Bytes(u32, &'a [u8]),
}

/// The fields of an encoded message, in order; None where it is malformed.
pub(crate) fn fields(mut buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = vec![];
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let field = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => out.push(Field::Int(field, read_varint(&mut buf)?)),
            2 => {
                let len = usize::try_from(read_varint(&mut buf)?).ok()?;
                let (v, rest) = (buf.get(..len)?, buf.get(len..)?);
                out.push(Field::Bytes(field, v));
                buf = rest;
            }
            // fixed64 and fixed32: none in criu's replies, skipped if met.
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            _ => return None,
        }
    }
    Some(out)
}

fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bytes as protoc encodes them (the protobuf encoding guide's own
    // examples: field 1 = 150 is 08 96 01; field 2 = "testing" is
    // 12 07 74 65 73 74 69 6e 67).
    #[test]
    fn encodes_as_the_protobuf_guide_shows() {
        let mut m = Msg::default();
        m.int(1, 150).str(2, "testing");
        assert_eq!(
            m.into_bytes(),
            [0x08, 0x96, 0x01, 0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        let mut neg = Msg::default();
        neg.int(1, -1);
        assert_eq!(neg.into_bytes().len(), 1 + 10);
    }

    #[test]
    fn reads_back_nested_messages_and_refuses_truncated_ones() {
        let mut inner = Msg::default();
        inner.int(1, 4242);
        let mut m = Msg::default();
        m.int(1, 2).flag(2, true).flag(3, false).msg(4, &inner);
        let bytes = m.into_bytes();
        let f = fields(&bytes).unwrap();
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0], Field::Int(1, 2));
        assert_eq!(f[1], Field::Int(2, 1));
        let Field::Bytes(4, nested) = f[2] else {
            panic!("{f:?}")
        };
        assert_eq!(fields(nested).unwrap(), [Field::Int(1, 4242)]);
        assert!(fields(&bytes[..bytes.len() - 1]).is_none());
        assert!(fields(&[0x08, 0x96]).is_none());
    }
}

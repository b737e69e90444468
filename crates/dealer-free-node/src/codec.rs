//! The gRPC codec of the node's service and client: prost's, with one bound checked before a
//! message is decoded.
//!
//! A message's bytes are bounded by the body caps ([`crate::body_limit`]), but decoding can
//! take far more memory than the bytes: each element of a repeated field becomes its own
//! value (an empty `bytes` element is 2 bytes on the wire and a 24-byte `Vec` in memory), so
//! 64 MiB of empty elements would decode to about a gigabyte. [`BoundedCodec`] counts a
//! message's top-level fields before decoding it and refuses one with more than
//! [`MAX_FIELDS`] (`RESOURCE_EXHAUSTED`): no request or reply of the protocol needs more (a
//! store batch holds at most 256 records, a mask round one element per server, a
//! ceremony's round one per node; id lists are packed into one field), so what decoding adds
//! to the bytes is at most that many values.

use std::marker::PhantomData;

use prost::Message;
use prost::bytes::Buf;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};

/// The most top-level fields a message may have.
pub const MAX_FIELDS: usize = 4096;

/// prost's codec with [`MAX_FIELDS`] checked before decoding.
#[derive(Debug, Clone)]
pub struct BoundedCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        BoundedCodec {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder { _type: PhantomData }
    }
}

/// The decoder of [`BoundedCodec`].
#[derive(Debug, Clone)]
pub struct BoundedDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let whole = buf.chunk().len() == buf.remaining();
        if whole {
            check_fields(buf.chunk())?;
            return decode(buf);
        }
        // Not in one piece (never so with tonic's buffer): one copy, then the same.
        let bytes = buf.copy_to_bytes(buf.remaining());
        check_fields(&bytes)?;
        decode(bytes)
    }
}

fn decode<U: Message + Default>(buf: impl Buf) -> Result<Option<U>, Status> {
    U::decode(buf)
        .map(Some)
        // As prost's own codec maps it.
        .map_err(|e| Status::internal(e.to_string()))
}

/// Refuses a message of more than [`MAX_FIELDS`] top-level fields.
fn check_fields(message: &[u8]) -> Result<(), Status> {
    if count_fields(message, MAX_FIELDS + 1) > MAX_FIELDS {
        return Err(Status::resource_exhausted(format!(
            "a message may have at most {MAX_FIELDS} fields"
        )));
    }
    Ok(())
}

/// The top-level fields of the protobuf message `bytes`, counted up to `stop`; counting ends
/// early at bytes that are no field (decoding refuses those).
fn count_fields(mut bytes: &[u8], stop: usize) -> usize {
    let mut count = 0;
    while !bytes.is_empty() && count < stop {
        let Some(key) = varint(&mut bytes) else {
            break;
        };
        count += 1;
        let skip = match key & 7 {
            0 => match varint(&mut bytes) {
                Some(_) => 0,
                None => break,
            },
            1 => 8,
            2 => match varint(&mut bytes).and_then(|l| usize::try_from(l).ok()) {
                Some(l) => l,
                None => break,
            },
            5 => 4,
            _ => break,
        };
        match bytes.get(skip..) {
            Some(rest) => bytes = rest,
            None => break,
        }
    }
    count
}

/// Reads a varint from the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *bytes = bytes.get(i + 1..)?;
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;

    #[test]
    fn fields_are_counted_as_prost_writes_them() {
        let request = proto::StoreRecordsRequest {
            owners: Vec::new(),
            meta: Some(proto::RequestMeta {
                request_id: vec![1; 16],
                unix_ms: 5,
            }),
            records: vec![vec![7; 300]; 10],
        };
        assert_eq!(count_fields(&request.encode_to_vec(), usize::MAX), 11);
        let ids = proto::ExportRecordsRequest {
            ids: (0..10_000).collect(),
            ..Default::default()
        };
        // Packed: one field.
        assert_eq!(count_fields(&ids.encode_to_vec(), usize::MAX), 1);
    }

    #[test]
    fn a_message_of_many_empty_elements_is_refused_before_it_is_decoded() {
        let many = proto::MaskCheckRequest {
            deals: vec![Vec::new(); MAX_FIELDS + 1],
            ..Default::default()
        };
        let bytes = many.encode_to_vec();
        assert!(check_fields(&bytes).is_err());
        let fine = proto::MaskCheckRequest {
            deals: vec![vec![1; 8]; 255],
            ..Default::default()
        };
        assert!(check_fields(&fine.encode_to_vec()).is_ok());
        // Bytes that are no field end the count; decoding refuses them.
        assert_eq!(count_fields(&[0xff; 20], usize::MAX), 0);
        assert_eq!(count_fields(&[0x0a, 0x7f], usize::MAX), 1);
    }
}

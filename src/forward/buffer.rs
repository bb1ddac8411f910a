//! A fixed byte queue between a session and its backend, allocated once.

/// A fixed byte queue: the bytes waiting are `bytes[start..end]`. It never grows; a direction
/// whose buffer is full stops reading, which is how backpressure reaches the sender.
pub(crate) struct Buffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buffer {
    /// An empty queue of `size` bytes.
    pub(crate) fn new(size: usize) -> Buffer {
        Buffer {
            bytes: vec![0u8; size].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The bytes waiting, oldest first.
    pub(crate) fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes that can still be queued (after compaction).
    pub(crate) fn free(&self) -> usize {
        self.bytes.len() - self.len()
    }

    /// Drops the `n` oldest bytes (at most [`Buffer::len`]).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The free space after the bytes waiting, moving them to the front first once the end
    /// is reached. Fill it, then [`Buffer::commit`].
    pub(crate) fn room(&mut self) -> &mut [u8] {
        if self.end == self.bytes.len() {
            self.compact();
        }
        &mut self.bytes[self.end..]
    }

    /// Moves the bytes waiting to the front.
    fn compact(&mut self) {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Queues the first `n` bytes of the last [`Buffer::room`].
    pub(crate) fn commit(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.bytes.len());
    }

    /// Queues `bytes` (at most [`Buffer::free`] of them).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.bytes.len() - self.end < bytes.len() {
            self.compact();
        }
        self.bytes[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Drops everything waiting.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::frame::direct_header;

    #[test]
    fn buffer_compacts_and_keeps_order() {
        let mut buffer = Buffer::new(8);
        buffer.push(b"abcdef");
        buffer.consume(4);
        assert_eq!(buffer.data(), b"ef");
        assert_eq!(buffer.free(), 6);
        // Room at the end is 2 bytes; once the end is reached the rest moves to the front.
        assert_eq!(buffer.room().len(), 2);
        buffer.push(b"gh");
        assert_eq!(buffer.room().len(), 4);
        buffer.push(b"ijkl");
        assert_eq!(buffer.data(), b"efghijkl");
        assert_eq!(buffer.free(), 0);
        buffer.consume(8);
        assert!(buffer.is_empty());
        assert_eq!(buffer.room().len(), 8);
        // A header pushed when only part of it fits behind the bytes waiting.
        buffer.push(b"abcdefg");
        buffer.consume(5);
        assert_eq!(buffer.free(), 6);
        buffer.push(&direct_header(0x1FFFF));
        assert_eq!(buffer.data(), b"fg\x00\x01\xff\xff");
    }
}

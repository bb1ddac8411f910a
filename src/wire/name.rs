//! NetBIOS names (RFC 1001 §14, RFC 1002 §4.1).
//!
//! * [`Name`] is the 16-byte NetBIOS name: 15 bytes of name padded with spaces, then the suffix
//!   ("name type": `<00>` workstation, `<20>` server, ...). Names compare over all 16 bytes.
//! * [`Scope`] is the optional NetBIOS scope, a domain name such as `NETBIOS.COM`.
//! * [`NbName`] is both together, as a name travels in a packet: the first-level encoding
//!   (32 letters `A`..`P`) as the first label, the scope labels after it (the "second level").
//! * [`DomainName`] is a plain domain name, for the few fields that carry one (the name server
//!   name in a redirect).
//!
//! The decoder is strict: the first label is exactly 32 letters `A`..`P`; labels are at most 63
//! bytes; the whole name is at most 255 bytes; compression pointers are accepted only where the
//! caller allows them, only strictly backwards, never into the packet header and at most
//! [`MAX_POINTER_HOPS`] in a row, so no input can loop or recurse.
//!
//! Text syntax follows Samba: `LABSRV#20` parses to `LABSRV<20>`, which is also how names are
//! displayed. Text input is upper-cased.

use core::fmt::{self, Write as _};

use super::{Error, Result};

/// Bytes in a NetBIOS name, suffix included.
pub const NAME_LEN: usize = 16;
/// Bytes of a name before the suffix.
pub const BASE_LEN: usize = 15;
/// Length of the first-level encoded label.
pub const ENCODED_LEN: usize = 32;
/// Largest label of a domain name.
pub const MAX_LABEL_LEN: usize = 63;
/// Largest compressed name: every length byte, every label byte and the terminating zero.
pub const MAX_WIRE_LEN: usize = 255;
/// Largest scope in wire form (length bytes and labels, no terminator).
pub const MAX_SCOPE_LEN: usize = MAX_WIRE_LEN - (1 + ENCODED_LEN) - 1;
/// Most compression pointers followed while reading one name (Samba's bound).
pub const MAX_POINTER_HOPS: usize = 10;

/// Why a name or scope given as text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name has no characters.
    Empty,
    /// The name has more than 15 characters.
    TooLong,
    /// The name has a character that is not printable ASCII.
    BadCharacter,
    /// The suffix after `#` is not one or two hexadecimal digits.
    BadSuffix,
    /// A scope has an empty label (`A..B`, a leading or a trailing dot).
    EmptyScopeLabel,
    /// A scope label has more than 63 characters.
    ScopeLabelTooLong,
    /// The scope makes the encoded name longer than 255 bytes.
    ScopeTooLong,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "NetBIOS name is empty",
            NameError::TooLong => "NetBIOS name is longer than 15 characters",
            NameError::BadCharacter => "NetBIOS name has a character that is not printable ASCII",
            NameError::BadSuffix => "NetBIOS suffix must be one or two hex digits after '#'",
            NameError::EmptyScopeLabel => "NetBIOS scope has an empty label",
            NameError::ScopeLabelTooLong => "NetBIOS scope label is longer than 63 characters",
            NameError::ScopeTooLong => "NetBIOS scope is longer than 221 bytes encoded",
        })
    }
}

impl core::error::Error for NameError {}

/// A 16-byte NetBIOS name: 15 bytes of name and a suffix.
///
/// Equality is over all 16 bytes, as MS-NBTE requires; [`Name::new`] and [`Name::parse_text`]
/// upper-case their input, bytes from the wire are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
// Aligned to 4: copies of a name (and of the packets and events holding one) move words, and
// LLVM no longer splits the name into 16 separate bytes along every branch of a parser (on a
// Cortex-M that took 30 KiB of code).
#[repr(align(4))]
pub struct Name([u8; NAME_LEN]);

impl Name {
    /// The wildcard `*` followed by 15 zero bytes, used by node status requests.
    pub const WILDCARD: Name = Name(*b"*\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");

    /// The suffix of workstation (redirector) names, `<00>`.
    pub const SUFFIX_WORKSTATION: u8 = 0x00;
    /// The suffix of messenger names, `<03>`.
    pub const SUFFIX_MESSENGER: u8 = 0x03;
    /// The suffix of file server names, `<20>`.
    pub const SUFFIX_SERVER: u8 = 0x20;

    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; NAME_LEN]) -> Name {
        Name(bytes)
    }

    /// Builds a name from up to 15 printable ASCII characters (upper-cased, padded with spaces)
    /// and a suffix. `"*"` builds the [wildcard](Name::WILDCARD) with that suffix.
    pub fn new(base: &str, suffix: u8) -> core::result::Result<Name, NameError> {
        let bytes = base.as_bytes();
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > BASE_LEN {
            return Err(NameError::TooLong);
        }
        if bytes.iter().any(|b| !b.is_ascii_graphic() && *b != b' ') {
            return Err(NameError::BadCharacter);
        }
        let pad = if bytes == b"*" { 0 } else { b' ' };
        let mut name = [pad; NAME_LEN];
        for (dst, src) in name.iter_mut().zip(bytes) {
            *dst = src.to_ascii_uppercase();
        }
        name[BASE_LEN] = suffix;
        Ok(Name(name))
    }

    /// Parses Samba's text syntax: `NAME` (suffix `default_suffix`) or `NAME#XX` with `XX` one
    /// or two hexadecimal digits.
    pub fn parse_text(text: &str, default_suffix: u8) -> core::result::Result<Name, NameError> {
        match text.rsplit_once('#') {
            None => Name::new(text, default_suffix),
            Some((base, suffix)) => {
                if suffix.is_empty()
                    || suffix.len() > 2
                    || !suffix.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(NameError::BadSuffix);
                }
                let suffix = u8::from_str_radix(suffix, 16).map_err(|_| NameError::BadSuffix)?;
                Name::new(base, suffix)
            }
        }
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; NAME_LEN] {
        &self.0
    }

    /// The suffix (16th byte).
    pub const fn suffix(&self) -> u8 {
        self.0[BASE_LEN]
    }

    /// The same name with another suffix.
    pub const fn with_suffix(mut self, suffix: u8) -> Name {
        self.0[BASE_LEN] = suffix;
        self
    }

    /// The first 15 bytes without their trailing padding (spaces or zero bytes).
    pub fn base(&self) -> &[u8] {
        let base = &self.0[..BASE_LEN];
        let end = base
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |i| i + 1);
        &base[..end]
    }

    /// Whether this is the `*` wildcard (any suffix).
    pub fn is_wildcard(&self) -> bool {
        self.0[..BASE_LEN] == Name::WILDCARD.0[..BASE_LEN]
    }

    /// The first-level encoding: each byte becomes `'A' + high nibble`, `'A' + low nibble`.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut [u8; ENCODED_LEN]) {
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = b'A' + (byte >> 4);
            out[2 * i + 1] = b'A' + (byte & 0x0f);
        }
    }

    /// Decodes a first-level encoded name: exactly 32 letters `A`..`P`.
    pub fn decode(encoded: &[u8]) -> Result<Name> {
        if encoded.len() != ENCODED_LEN {
            return Err(Error);
        }
        let mut name = [0u8; NAME_LEN];
        for (byte, pair) in name.iter_mut().zip(encoded.chunks_exact(2)) {
            let high = pair[0].wrapping_sub(b'A');
            let low = pair[1].wrapping_sub(b'A');
            if high > 0x0f || low > 0x0f {
                return Err(Error);
            }
            *byte = (high << 4) | low;
        }
        Ok(Name(name))
    }
}

impl fmt::Display for Name {
    /// `LABSRV<20>`; bytes that are not printable ASCII appear as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.base() {
            if b.is_ascii_graphic() || b == b' ' {
                f.write_char(char::from(b))?;
            } else {
                f.write_str("\\x")?;
                write_hex(f, b)?;
            }
        }
        f.write_char('<')?;
        write_hex(f, self.suffix())?;
        f.write_char('>')
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Name {
    /// `LABSRV<20>`, as [`Display`](fmt::Display); a name with bytes that are not printable
    /// ASCII shows as a byte string.
    fn format(&self, f: defmt::Formatter<'_>) {
        let base = self.base();
        match core::str::from_utf8(base) {
            Ok(text) if base.iter().all(|&b| b.is_ascii_graphic() || b == b' ') => {
                defmt::write!(f, "{=str}<{=u8:02X}>", text, self.suffix())
            }
            _ => defmt::write!(f, "{=[u8]:a}<{=u8:02X}>", base, self.suffix()),
        }
    }
}

/// Writes `byte` as two upper-case hexadecimal digits (what `{:02X}` writes, without the
/// integer formatting machinery: a firmware displays names).
fn write_hex(f: &mut fmt::Formatter<'_>, byte: u8) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    f.write_char(char::from(DIGITS[usize::from(byte >> 4)]))?;
    f.write_char(char::from(DIGITS[usize::from(byte & 0x0f)]))
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// A domain name kept in wire form: length-prefixed labels without the terminating zero.
#[derive(Clone, Copy)]
struct Labels<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Labels<N> {
    const EMPTY: Self = Labels {
        len: 0,
        bytes: [0; N],
    };

    fn as_wire(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends one label; fails if it is empty, longer than 63 bytes or does not fit.
    fn push(&mut self, label: &[u8]) -> core::result::Result<(), NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyScopeLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::ScopeLabelTooLong);
        }
        let start = usize::from(self.len);
        let end = start + 1 + label.len();
        if end > N {
            return Err(NameError::ScopeTooLong);
        }
        self.bytes[start] = label.len() as u8;
        self.bytes[start + 1..end].copy_from_slice(label);
        self.len = end as u8;
        Ok(())
    }

    fn labels(&self) -> LabelIter<'_> {
        LabelIter(self.as_wire())
    }

    /// Parses dotted text (`NETBIOS.COM`), upper-casing it. Empty text gives no labels.
    fn parse_text(text: &str) -> core::result::Result<Self, NameError> {
        let mut labels = Self::EMPTY;
        if text.is_empty() {
            return Ok(labels);
        }
        for label in text.split('.') {
            if label.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(NameError::BadCharacter);
            }
            let mut upper = [0u8; MAX_LABEL_LEN];
            let upper = upper
                .get_mut(..label.len())
                .ok_or(NameError::ScopeLabelTooLong)?;
            for (dst, src) in upper.iter_mut().zip(label.bytes()) {
                *dst = src.to_ascii_uppercase();
            }
            labels.push(upper)?;
        }
        Ok(labels)
    }

    fn fmt_dotted(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' {
                    f.write_char(char::from(b))?;
                } else {
                    f.write_str("\\x")?;
                    write_hex(f, b)?;
                }
            }
        }
        Ok(())
    }
}

impl<const N: usize> PartialEq for Labels<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_wire() == other.as_wire()
    }
}

impl<const N: usize> Eq for Labels<N> {}

/// Iterator over the labels of a wire-form label sequence that is known to be well formed.
struct LabelIter<'a>(&'a [u8]);

impl<'a> Iterator for LabelIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let (label, rest) = rest.split_at_checked(usize::from(len))?;
        self.0 = rest;
        Some(label)
    }
}

/// A NetBIOS scope: the domain-name suffix that separates NetBIOS name spaces (RFC 1001 §9).
///
/// Stored in wire form; [`Scope::NONE`] is the empty scope almost every network uses.
/// Equality is exact; use [`Scope::matches`] for the case-insensitive comparison domain names
/// deserve.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Scope(Labels<MAX_SCOPE_LEN>);

impl Scope {
    /// No scope.
    pub const NONE: Scope = Scope(Labels::EMPTY);

    /// Parses dotted text such as `netbios.com` (upper-cased). Empty text is [`Scope::NONE`].
    pub fn parse_text(text: &str) -> core::result::Result<Scope, NameError> {
        Labels::parse_text(text).map(Scope)
    }

    /// Whether this is the empty scope.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// The labels in wire form: length byte, label bytes, ..., without the terminating zero.
    pub fn as_wire(&self) -> &[u8] {
        self.0.as_wire()
    }

    /// The labels, in order.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        self.0.labels()
    }

    /// Whether two scopes name the same domain, ignoring ASCII case.
    pub fn matches(&self, other: &Scope) -> bool {
        self.as_wire().eq_ignore_ascii_case(other.as_wire())
    }
}

impl Default for Scope {
    fn default() -> Scope {
        Scope::NONE
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_dotted(f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Scope {
    /// The labels, each as a byte string.
    fn format(&self, f: defmt::Formatter<'_>) {
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                defmt::write!(f, ".");
            }
            defmt::write!(f, "{=[u8]:a}", label);
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

/// Where a compressed name may use pointers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointers {
    /// No compression pointers (session and datagram service).
    Forbidden,
    /// Pointers are allowed if they point strictly backwards and not below `floor` (the end of
    /// the packet header, so a pointer can never read the header as a name).
    Backwards {
        /// Lowest offset a pointer may target.
        floor: usize,
    },
}

/// Walks the labels of a compressed name starting at `offset` in `message`, handing each label
/// to `on_label`. Returns the offset just after the name where it started (after the first
/// pointer, if it used one).
fn walk_labels(
    message: &[u8],
    offset: usize,
    pointers: Pointers,
    mut on_label: impl FnMut(&[u8]) -> Result<()>,
) -> Result<usize> {
    let mut pos = offset;
    let mut resume_at = None;
    let mut hops = 0;
    let mut total = 0;
    loop {
        let len = *message.get(pos).ok_or(Error)?;
        match len >> 6 {
            0b00 if len == 0 => {
                total += 1;
                if total > MAX_WIRE_LEN {
                    return Err(Error);
                }
                return Ok(resume_at.unwrap_or(pos + 1));
            }
            0b00 => {
                let len = usize::from(len);
                let label = message.get(pos + 1..pos + 1 + len).ok_or(Error)?;
                total += 1 + len;
                // Leave room for the terminating zero.
                if total >= MAX_WIRE_LEN {
                    return Err(Error);
                }
                on_label(label)?;
                pos += 1 + len;
            }
            0b11 => {
                let Pointers::Backwards { floor } = pointers else {
                    return Err(Error);
                };
                let low = *message.get(pos + 1).ok_or(Error)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                hops += 1;
                if target >= pos || target < floor || hops > MAX_POINTER_HOPS {
                    return Err(Error);
                }
                resume_at.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(Error),
        }
    }
}

/// A NetBIOS name with its scope, as it appears in packets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NbName {
    /// The 16-byte name.
    pub name: Name,
    /// Its scope.
    pub scope: Scope,
}

impl NbName {
    /// A name in the given scope.
    pub const fn new(name: Name, scope: Scope) -> NbName {
        NbName { name, scope }
    }

    /// A name without scope.
    pub const fn unscoped(name: Name) -> NbName {
        NbName {
            name,
            scope: Scope::NONE,
        }
    }

    /// Whether `self` and `other` are the same name: all 16 bytes equal, scopes equal ignoring
    /// case.
    pub fn matches(&self, other: &NbName) -> bool {
        self.name == other.name && self.scope.matches(&other.scope)
    }

    /// Bytes [`NbName::emit`] writes: `0x20`, 32 letters, the scope labels, the zero.
    pub fn wire_len(&self) -> usize {
        1 + ENCODED_LEN + self.scope.as_wire().len() + 1
    }

    /// Writes the uncompressed wire form to the start of `buf` and returns its length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`NbName::wire_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let scope = self.scope.as_wire();
        let (length, rest) = buf.split_at_mut(1);
        length[0] = ENCODED_LEN as u8;
        let (encoded, rest) = rest.split_at_mut(ENCODED_LEN);
        self.name
            .encode_into(encoded.try_into().expect("split at ENCODED_LEN"));
        let (labels, rest) = rest.split_at_mut(scope.len());
        labels.copy_from_slice(scope);
        rest[0] = 0;
        self.wire_len()
    }

    /// Reads a name starting at `offset` in `message`. Returns the name and the offset just
    /// after it. Never panics.
    pub fn parse(message: &[u8], offset: usize, pointers: Pointers) -> Result<(NbName, usize)> {
        // The same walk as a domain name's; the first label is the encoded name, the others
        // (at most 255 - 34 bytes, as the walk bounds the whole name) the scope.
        let (labels, end) = DomainName::parse(message, offset, pointers)?;
        let (&len, rest) = labels.as_wire().split_first().ok_or(Error)?;
        let (encoded, scope) = rest.split_at_checked(usize::from(len)).ok_or(Error)?;
        let name = Name::decode(encoded)?;
        let mut labels = Labels::<MAX_SCOPE_LEN>::EMPTY;
        labels
            .bytes
            .get_mut(..scope.len())
            .ok_or(Error)?
            .copy_from_slice(scope);
        labels.len = scope.len() as u8;
        Ok((
            NbName {
                name,
                scope: Scope(labels),
            },
            end,
        ))
    }

    /// Parses `NAME[#XX]` and an optional dotted scope; see [`Name::parse_text`].
    pub fn parse_text(
        text: &str,
        default_suffix: u8,
        scope: &str,
    ) -> core::result::Result<NbName, NameError> {
        Ok(NbName {
            name: Name::parse_text(text, default_suffix)?,
            scope: Scope::parse_text(scope)?,
        })
    }
}

impl From<Name> for NbName {
    fn from(name: Name) -> NbName {
        NbName::unscoped(name)
    }
}

impl fmt::Display for NbName {
    /// `LABSRV<20>` or, with a scope, `LABSRV<20>.NETBIOS.COM`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.scope.is_empty() {
            write!(f, ".{}", self.scope)?;
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for NbName {
    /// `LABSRV<20>` or, with a scope, `LABSRV<20>.NETBIOS.COM`.
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", self.name);
        if !self.scope.is_empty() {
            defmt::write!(f, ".{}", self.scope);
        }
    }
}

impl fmt::Debug for NbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NbName({self})")
    }
}

/// A plain domain name (RFC 1035), e.g. the name server name in a redirect response.
///
/// Stored in wire form; may be the root (no labels).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DomainName(Labels<{ MAX_WIRE_LEN - 1 }>);

impl DomainName {
    /// The root: no labels, a single zero byte on the wire.
    pub const ROOT: DomainName = DomainName(Labels::EMPTY);

    /// Parses dotted text such as `wins.example` (upper-cased).
    pub fn parse_text(text: &str) -> core::result::Result<DomainName, NameError> {
        Labels::parse_text(text).map(DomainName)
    }

    /// The labels in wire form, without the terminating zero.
    pub fn as_wire(&self) -> &[u8] {
        self.0.as_wire()
    }

    /// Bytes [`DomainName::emit`] writes.
    pub fn wire_len(&self) -> usize {
        self.as_wire().len() + 1
    }

    /// Writes the uncompressed wire form to the start of `buf` and returns its length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`DomainName::wire_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let wire = self.as_wire();
        buf[..wire.len()].copy_from_slice(wire);
        buf[wire.len()] = 0;
        wire.len() + 1
    }

    /// Reads a domain name starting at `offset` in `message`; see [`NbName::parse`].
    pub fn parse(message: &[u8], offset: usize, pointers: Pointers) -> Result<(DomainName, usize)> {
        let mut labels = Labels::EMPTY;
        let end = walk_labels(message, offset, pointers, |label| {
            labels.push(label).map_err(|_| Error)
        })?;
        Ok((DomainName(labels), end))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_dotted(f)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({self})")
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const NONE: Pointers = Pointers::Forbidden;
    const FROM_12: Pointers = Pointers::Backwards { floor: 12 };

    fn fred() -> Name {
        Name::new("FRED", 0x20).unwrap()
    }

    #[test]
    fn rfc1001_fred_first_level() {
        // RFC 1001 §14.1: "FRED" padded with spaces (the space is also the suffix).
        assert_eq!(&fred().encode(), b"EGFCEFEECACACACACACACACACACACACA");
        assert_eq!(
            Name::decode(b"EGFCEFEECACACACACACACACACACACACA"),
            Ok(fred())
        );
    }

    #[test]
    fn rfc1001_fred_with_scope() {
        let scope = Scope::parse_text("netbios.com").unwrap();
        let name = NbName::new(fred(), scope);
        let mut buf = [0u8; 64];
        let len = name.emit(&mut buf);
        let mut expected = [0u8; 46];
        expected[0] = 0x20;
        expected[1..33].copy_from_slice(b"EGFCEFEECACACACACACACACACACACACA");
        expected[33..45].copy_from_slice(b"\x07NETBIOS\x03COM");
        assert_eq!(&buf[..len], &expected[..]);
        assert_eq!(name.wire_len(), 46);
        let (parsed, end) = NbName::parse(&buf[..len], 0, NONE).unwrap();
        assert_eq!(parsed, name);
        assert_eq!(end, 46);
        assert_eq!(format!("{parsed}"), "FRED<20>.NETBIOS.COM");
    }

    #[test]
    fn fred_without_scope_is_34_bytes() {
        let mut buf = [0u8; 34];
        assert_eq!(NbName::unscoped(fred()).emit(&mut buf), 34);
        assert_eq!(buf[0], 0x20);
        assert_eq!(buf[33], 0);
    }

    #[test]
    fn wildcard_vector() {
        assert_eq!(
            &Name::WILDCARD.encode(),
            b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
        assert_eq!(Name::new("*", 0).unwrap(), Name::WILDCARD);
        assert!(Name::WILDCARD.is_wildcard());
        assert_eq!(format!("{}", Name::WILDCARD), "*<00>");
    }

    #[test]
    fn smbserver_vector() {
        let name = Name::parse_text("*SMBSERVER#20", 0).unwrap();
        assert_eq!(&name.encode(), b"CKFDENECFDEFFCFGEFFCCACACACACACA");
        assert!(!name.is_wildcard());
        assert_eq!(format!("{name}"), "*SMBSERVER<20>");
    }

    #[test]
    fn foo_vectors() {
        assert_eq!(
            &Name::new("FOO", 0x20).unwrap().encode(),
            b"EGEPEPCACACACACACACACACACACACACA"
        );
        assert_eq!(
            &Name::new("foo", 0x00).unwrap().encode(),
            b"EGEPEPCACACACACACACACACACACACAAA"
        );
    }

    #[test]
    fn text_syntax() {
        let name = Name::parse_text("labsrv#20", 0).unwrap();
        assert_eq!(name, Name::new("LABSRV", 0x20).unwrap());
        assert_eq!(format!("{name}"), "LABSRV<20>");
        assert_eq!(name.base(), b"LABSRV");
        assert_eq!(Name::parse_text("LABSRV", 0x03).unwrap().suffix(), 0x03);
        assert_eq!(Name::parse_text("X#1b", 0).unwrap().suffix(), 0x1b);
        assert_eq!(Name::parse_text("X#7", 0).unwrap().suffix(), 0x07);
        assert_eq!(
            Name::parse_text("ABCDEFGHIJKLMNO", 0).unwrap().base(),
            b"ABCDEFGHIJKLMNO"
        );
        assert_eq!(
            Name::parse_text("ABCDEFGHIJKLMNOP", 0),
            Err(NameError::TooLong)
        );
        assert_eq!(Name::parse_text("", 0), Err(NameError::Empty));
        assert_eq!(Name::parse_text("#20", 0), Err(NameError::Empty));
        assert_eq!(Name::parse_text("A#", 0), Err(NameError::BadSuffix));
        assert_eq!(Name::parse_text("A#123", 0), Err(NameError::BadSuffix));
        assert_eq!(Name::parse_text("A#G0", 0), Err(NameError::BadSuffix));
        assert_eq!(Name::parse_text("A#+1", 0), Err(NameError::BadSuffix));
        assert_eq!(Name::parse_text("A\tB", 0), Err(NameError::BadCharacter));
        assert_eq!(Name::parse_text("Ä", 0), Err(NameError::BadCharacter));
    }

    #[test]
    fn comparison_is_over_all_16_bytes() {
        let a = Name::new("LABSRV", 0x20).unwrap();
        assert_ne!(a, a.with_suffix(0x00));
        let mut raw = *a.as_bytes();
        raw[14] = 0;
        assert_ne!(a, Name::from_bytes(raw));
        // Wire bytes keep their case; text input is upper-cased.
        let lower = Name::from_bytes(*b"labsrv         \x20");
        assert_ne!(lower, a);
    }

    #[test]
    fn display_escapes_unprintable_bytes() {
        let name = Name::from_bytes(*b"A\x01B            \x1b");
        assert_eq!(format!("{name}"), "A\\x01B<1B>");
        // A scope from the wire: its unprintable bytes and a dot inside a label are escaped.
        let wire = encoded(&fred(), b"\x03A\x01.\x02Bz");
        let (scoped, _) = NbName::parse(&wire, 0, NONE).unwrap();
        assert_eq!(format!("{scoped}"), "FRED<20>.A\\x01\\x2E.Bz");
    }

    #[test]
    fn scope_text() {
        assert!(Scope::parse_text("").unwrap().is_empty());
        assert_eq!(Scope::parse_text("a..b"), Err(NameError::EmptyScopeLabel));
        assert_eq!(Scope::parse_text(".a"), Err(NameError::EmptyScopeLabel));
        assert_eq!(Scope::parse_text("a."), Err(NameError::EmptyScopeLabel));
        let long = "x".repeat(64);
        assert_eq!(Scope::parse_text(&long), Err(NameError::ScopeLabelTooLong));
        let ok63 = "x".repeat(63);
        assert!(Scope::parse_text(&ok63).is_ok());
        // 3 labels of 63 + 1 = 192; a fourth of 28 would make 221; 29 overflows.
        let fits = format!("{ok63}.{ok63}.{ok63}.{}", "y".repeat(28));
        assert_eq!(
            Scope::parse_text(&fits).unwrap().as_wire().len(),
            MAX_SCOPE_LEN
        );
        let over = format!("{ok63}.{ok63}.{ok63}.{}", "y".repeat(29));
        assert_eq!(Scope::parse_text(&over), Err(NameError::ScopeTooLong));
        let a = Scope::parse_text("lab.example").unwrap();
        let b = Scope::parse_text("LAB.EXAMPLE").unwrap();
        assert_eq!(a, b);
        assert_eq!(format!("{a}"), "LAB.EXAMPLE");
    }

    #[test]
    fn maximal_name_round_trips() {
        let ok63 = "x".repeat(63);
        let scope = Scope::parse_text(&format!("{ok63}.{ok63}.{ok63}.{}", "y".repeat(28))).unwrap();
        let name = NbName::new(fred(), scope);
        assert_eq!(name.wire_len(), MAX_WIRE_LEN);
        let mut buf = [0u8; MAX_WIRE_LEN];
        name.emit(&mut buf);
        assert_eq!(NbName::parse(&buf, 0, NONE), Ok((name, MAX_WIRE_LEN)));
    }

    fn encoded(name: &Name, scope: &[u8]) -> Vec<u8> {
        let mut v = vec![0x20];
        v.extend_from_slice(&name.encode());
        v.extend_from_slice(scope);
        v.push(0);
        v
    }

    #[test]
    fn rejects_bad_first_label() {
        let mut good = encoded(&fred(), b"");
        assert!(NbName::parse(&good, 0, NONE).is_ok());
        // Letters outside A..P.
        for bad in [b'Q', b'Z', b'a', b'@', 0] {
            good[5] = bad;
            assert_eq!(NbName::parse(&good, 0, NONE), Err(Error));
        }
        // First label not 32 bytes long.
        let mut short = vec![0x1e];
        short.extend_from_slice(&[b'A'; 30]);
        short.push(0);
        assert_eq!(NbName::parse(&short, 0, NONE), Err(Error));
        // No label at all.
        assert_eq!(NbName::parse(&[0], 0, NONE), Err(Error));
        // Reserved label types 01 and 10.
        assert_eq!(NbName::parse(&[0x40, 0], 0, NONE), Err(Error));
        assert_eq!(NbName::parse(&[0x80, 0], 0, NONE), Err(Error));
    }

    #[test]
    fn rejects_truncation_at_every_byte() {
        let name = encoded(&fred(), b"\x07NETBIOS\x03COM");
        for len in 0..name.len() {
            assert_eq!(
                NbName::parse(&name[..len], 0, NONE),
                Err(Error),
                "len {len}"
            );
        }
        assert!(NbName::parse(&name, 0, NONE).is_ok());
    }

    #[test]
    fn rejects_overlong_names() {
        // 0x20 + 32 + four labels of 63: 289 bytes.
        let mut scope = Vec::new();
        for _ in 0..4 {
            scope.push(63);
            scope.extend_from_slice(&[b'X'; 63]);
        }
        let name = encoded(&fred(), &scope);
        assert_eq!(NbName::parse(&name, 0, NONE), Err(Error));
        // Exactly one byte too long: 256 bytes.
        let mut scope = Vec::new();
        for len in [63, 63, 63, 29] {
            scope.push(len);
            scope.extend(core::iter::repeat_n(b'Y', len as usize));
        }
        let name = encoded(&fred(), &scope);
        assert_eq!(name.len(), 256);
        assert_eq!(NbName::parse(&name, 0, NONE), Err(Error));
    }

    /// A 12-byte fake header, then a full name, then `tail`.
    fn message_with(tail: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&encoded(&fred(), b"\x07NETBIOS\x03COM"));
        m.extend_from_slice(tail);
        m
    }

    #[test]
    fn follows_backward_pointer() {
        let m = message_with(&[0xc0, 0x0c, 0xaa]);
        let (name, end) = NbName::parse(&m, 58, FROM_12).unwrap();
        assert_eq!(name.name, fred());
        assert_eq!(format!("{}", name.scope), "NETBIOS.COM");
        assert_eq!(end, 60);
        // A name that shares only the scope: new first label then a pointer to the scope.
        let mut tail = vec![0x20];
        tail.extend_from_slice(&Name::new("BOB", 0).unwrap().encode());
        tail.extend_from_slice(&[0xc0, 45]);
        let m = message_with(&tail);
        let (name, end) = NbName::parse(&m, 58, FROM_12).unwrap();
        assert_eq!(format!("{name}"), "BOB<00>.NETBIOS.COM");
        assert_eq!(end, m.len());
    }

    #[test]
    fn rejects_bad_pointers() {
        // Pointers where they are forbidden.
        let m = message_with(&[0xc0, 0x0c]);
        assert_eq!(NbName::parse(&m, 58, NONE), Err(Error));
        // Forward pointer.
        let m = message_with(&[0xc0, 60, 0xc0, 0x0c]);
        assert_eq!(NbName::parse(&m, 58, FROM_12), Err(Error));
        // Pointer to itself.
        let m = message_with(&[0xc0, 58]);
        assert_eq!(NbName::parse(&m, 58, FROM_12), Err(Error));
        // Pointer into the header.
        let m = message_with(&[0xc0, 0x02]);
        assert_eq!(NbName::parse(&m, 58, FROM_12), Err(Error));
        // Truncated pointer.
        let m = message_with(&[0xc0]);
        assert_eq!(NbName::parse(&m, 58, FROM_12), Err(Error));
        // A loop: two pointers pointing at each other (one must point forward: rejected).
        let m = message_with(&[0xc0, 60, 0xc0, 58]);
        assert_eq!(NbName::parse(&m, 58, FROM_12), Err(Error));
        assert_eq!(NbName::parse(&m, 60, FROM_12), Err(Error));
    }

    #[test]
    fn pointer_chain_is_bounded() {
        // name at 12, then a chain of pointers each pointing to the previous one.
        let mut tail = Vec::new();
        let mut prev = 12u16;
        let first = 58u16;
        for i in 0..(MAX_POINTER_HOPS as u16 + 1) {
            let here = first + 2 * i;
            tail.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            prev = here;
        }
        let m = message_with(&tail);
        // MAX_POINTER_HOPS hops are fine ...
        let last_ok = first + 2 * (MAX_POINTER_HOPS as u16 - 1);
        assert!(NbName::parse(&m, usize::from(last_ok), FROM_12).is_ok());
        // ... one more is refused.
        let too_far = last_ok + 2;
        assert_eq!(NbName::parse(&m, usize::from(too_far), FROM_12), Err(Error));
    }

    #[test]
    fn pointers_cannot_grow_a_name_past_255_bytes() {
        // Scope of 3 labels of 63 at offset 12 (terminated), then a name whose scope is 2
        // labels of 63 followed by a pointer to that scope: 1+32+128+192+1 > 255.
        let mut m = vec![0u8; 12];
        for _ in 0..3 {
            m.push(63);
            m.extend_from_slice(&[b'S'; 63]);
        }
        m.push(0);
        let start = m.len();
        m.push(0x20);
        m.extend_from_slice(&fred().encode());
        for _ in 0..2 {
            m.push(63);
            m.extend_from_slice(&[b'T'; 63]);
        }
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(NbName::parse(&m, start, FROM_12), Err(Error));
    }

    #[test]
    fn domain_names() {
        let d = DomainName::parse_text("wins.lab").unwrap();
        let mut buf = [0u8; 16];
        let len = d.emit(&mut buf);
        assert_eq!(&buf[..len], b"\x04WINS\x03LAB\x00");
        assert_eq!(DomainName::parse(&buf[..len], 0, NONE), Ok((d, len)));
        assert_eq!(DomainName::parse(&[0], 0, NONE), Ok((DomainName::ROOT, 1)));
        assert_eq!(format!("{d}"), "WINS.LAB");
        assert_eq!(DomainName::parse(&buf[..len - 1], 0, NONE), Err(Error));
    }
}

//! A strict check of the chunked framing of request bodies (RFC 9112
//! section 7.1), run on the raw bytes beside hyper's own decoder.
//!
//! hyper's decoder is lenient where a front-end proxy may not be: it takes
//! whitespace after a chunk size with no extension after it (`5 \r\n`),
//! control bytes and NUL in extensions, and quoted strings that never end.
//! Two parsers that disagree on where a chunk ends are how a request is
//! smuggled inside another's body, so every byte of a chunked body goes
//! through [`ChunkedCheck`] first (see `order::HeadCapture`), and a
//! violation ends the connection before hyper sees the offending bytes.
//!
//! The grammar checked, byte by byte so that input split anywhere gives
//! the same answer:
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size   = 1*16HEXDIG           ; more digits: refused, not wrapped
//! last-chunk   = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext    = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
//! trailer-section = *( token ":" *( VCHAR / obs-text / SP / HTAB ) CRLF )
//! ```

use std::fmt;

/// More hex digits than this in a chunk size are refused: 16 fill a u64.
const MAX_SIZE_DIGITS: u8 = 16;

/// Why a chunked body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkError(pub &'static str);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The first byte of a chunk-size line.
    SizeStart,
    /// In the chunk-size digits.
    Size,
    /// After whitespace that follows the size or a value: only more
    /// whitespace or `;` may come (BWS belongs to the next extension).
    ExtSemi,
    /// After `;`: whitespace, then an extension name.
    ExtNameStart,
    ExtName,
    /// Whitespace after a name: `=` or `;` must come.
    ExtAfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    /// After a backslash in a quoted string.
    ExtQuotedPair,
    /// After a closing quote.
    ExtAfterQuoted,
    /// The CR that ends a chunk-size line was seen.
    SizeLf,
    /// In chunk data.
    Data,
    DataCr,
    DataLf,
    /// The first byte of a trailer line, or of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// The CR of the final CRLF was seen.
    EndLf,
}

/// The state of one chunked body being checked.
#[derive(Clone, Debug)]
pub(crate) struct ChunkedCheck {
    state: State,
    /// The size being read, then the data bytes still to come.
    size: u64,
    digits: u8,
}

impl Default for ChunkedCheck {
    fn default() -> Self {
        ChunkedCheck {
            state: State::SizeStart,
            size: 0,
            digits: 0,
        }
    }
}

impl ChunkedCheck {
    /// Checks the next bytes of the body. `Ok(Some(n))`: the body ended
    /// after `n` bytes of `data` (the rest is the next request);
    /// `Ok(None)`: all of `data` belongs to the body and more is expected.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ChunkError> {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Data {
                // The bulk of a body: skipped, not looked at.
                let take = (data.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            if self.state == State::EndLf {
                if b != b'\n' {
                    return Err(ChunkError("chunked body not ended by CRLF"));
                }
                *self = ChunkedCheck::default();
                return Ok(Some(i));
            }
            self.state = self.step(b)?;
        }
        Ok(None)
    }

    fn step(&mut self, b: u8) -> Result<State, ChunkError> {
        use State::*;
        let ws = b == b' ' || b == b'\t';
        let next = match self.state {
            SizeStart | Size if b.is_ascii_hexdigit() => {
                if self.digits == MAX_SIZE_DIGITS {
                    return Err(ChunkError("chunk size of more than 16 hex digits"));
                }
                self.digits += 1;
                self.size = self.size << 4 | u64::from(hex_value(b));
                Size
            }
            SizeStart => return Err(ChunkError("chunk size missing")),
            Size if ws => ExtSemi,
            Size if b == b';' => ExtNameStart,
            Size if b == b'\r' => SizeLf,
            Size => return Err(ChunkError("invalid byte in chunk size")),
            ExtSemi if ws => ExtSemi,
            ExtSemi if b == b';' => ExtNameStart,
            ExtSemi => return Err(ChunkError("whitespace not followed by a chunk extension")),
            ExtNameStart if ws => ExtNameStart,
            ExtNameStart | ExtName if is_tchar(b) => ExtName,
            ExtNameStart => return Err(ChunkError("chunk extension without a name")),
            ExtName if ws => ExtAfterName,
            ExtName | ExtAfterName if b == b'=' => ExtValueStart,
            ExtName | ExtAfterName if b == b';' => ExtNameStart,
            ExtName if b == b'\r' => SizeLf,
            ExtAfterName if ws => ExtAfterName,
            ExtName | ExtAfterName => return Err(ChunkError("invalid byte in a chunk extension")),
            ExtValueStart if ws => ExtValueStart,
            ExtValueStart if b == b'"' => ExtQuoted,
            ExtValueStart | ExtToken if is_tchar(b) => ExtToken,
            ExtValueStart => return Err(ChunkError("chunk extension without a value")),
            ExtToken if ws => ExtSemi,
            ExtToken | ExtAfterQuoted if b == b';' => ExtNameStart,
            ExtToken | ExtAfterQuoted if b == b'\r' => SizeLf,
            ExtToken => return Err(ChunkError("invalid byte in a chunk extension value")),
            ExtQuoted if b == b'"' => ExtAfterQuoted,
            ExtQuoted if b == b'\\' => ExtQuotedPair,
            ExtQuoted if b == b'\t' || (b >= b' ' && b != 0x7f) => ExtQuoted,
            ExtQuoted => {
                return Err(ChunkError(
                    "control byte or unterminated quoted string in a chunk extension",
                ))
            }
            ExtQuotedPair if b == b'\t' || (b >= b' ' && b != 0x7f) => ExtQuoted,
            ExtQuotedPair => return Err(ChunkError("invalid quoted-pair in a chunk extension")),
            ExtAfterQuoted if ws => ExtSemi,
            ExtAfterQuoted => return Err(ChunkError("invalid byte after a quoted string")),
            SizeLf if b == b'\n' && self.size == 0 => TrailerStart,
            SizeLf if b == b'\n' => Data,
            SizeLf => return Err(ChunkError("chunk-size line not ended by CRLF")),
            // `feed` handles these two itself.
            Data | EndLf => unreachable!("handled in feed"),
            DataCr if b == b'\r' => DataLf,
            DataCr => return Err(ChunkError("chunk data longer than its size")),
            DataLf if b == b'\n' => {
                self.size = 0;
                self.digits = 0;
                SizeStart
            }
            DataLf => return Err(ChunkError("chunk data not followed by CRLF")),
            TrailerStart if b == b'\r' => EndLf,
            TrailerStart | TrailerName if is_tchar(b) => TrailerName,
            TrailerStart => return Err(ChunkError("invalid trailer field line")),
            TrailerName if b == b':' => TrailerValue,
            TrailerName => return Err(ChunkError("invalid byte in a trailer field name")),
            TrailerValue if b == b'\r' => TrailerLf,
            TrailerValue if b == b'\t' || (b >= b' ' && b != 0x7f) => TrailerValue,
            TrailerValue => return Err(ChunkError("control byte in a trailer field")),
            TrailerLf if b == b'\n' => TrailerStart,
            TrailerLf => return Err(ChunkError("trailer field line not ended by CRLF")),
        };
        Ok(next)
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// RFC 9110 section 5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` whole, then one byte at a time, then in every split
    /// into two pieces; all must agree.
    fn check(body: &[u8]) -> Result<Option<usize>, ChunkError> {
        let whole = ChunkedCheck::default().feed(body);
        let mut c = ChunkedCheck::default();
        let mut bytewise = Ok(None);
        for (i, b) in body.iter().enumerate() {
            match c.feed(std::slice::from_ref(b)) {
                Ok(Some(1)) => {
                    bytewise = Ok(Some(i + 1));
                    break;
                }
                Ok(None) => {}
                other => {
                    bytewise = other;
                    break;
                }
            }
        }
        assert_eq!(whole, bytewise, "whole vs bytewise for {body:?}");
        for at in 0..=body.len() {
            let mut c = ChunkedCheck::default();
            let split = match c.feed(&body[..at]) {
                Ok(None) => c.feed(&body[at..]).map(|o| o.map(|n| n + at)),
                other => other,
            };
            assert_eq!(whole, split, "split at {at} for {body:?}");
        }
        whole
    }

    fn ok(body: &[u8]) {
        assert_eq!(check(body), Ok(Some(body.len())), "{body:?}");
    }

    fn bad(body: &[u8]) {
        assert!(check(body).is_err(), "accepted {body:?}");
    }

    #[test]
    fn valid_bodies() {
        ok(b"0\r\n\r\n");
        ok(b"5\r\nhello\r\n0\r\n\r\n");
        ok(b"1e\r\nall your base are belong to us\r\n0\r\n\r\n");
        ok(b"5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n");
        ok(b"A\r\n0123456789\r\n0\r\n\r\n");
        ok(b"5; some; parameters=stuff\r\nhello\r\n6; blahblah; blah\r\n world\r\n0\r\n\r\n");
        ok(b"5 ;a=b\r\nhello\r\n0\r\n\r\n");
        ok(b"5;a = b ;c\r\nhello\r\n0\r\n\r\n");
        ok(b"5;a=\"q \\\" \\\\ x\"\r\nhello\r\n0;last\r\n\r\n");
        ok(b"5;a=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n");
        ok(b"5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n");
        ok(b"0\r\nX-Empty:\r\nX-Tab:\tv a l\r\n\r\n");
        ok(b"0000000000000010\r\n0123456789abcdef\r\n0\r\n\r\n");
        // Data may hold anything, CRLF and heads included.
        ok(b"7\r\n\r\n\x00\r\n\r\n\r\n0\r\n\r\n");
    }

    #[test]
    fn the_next_request_is_left_alone() {
        let body = b"5\r\nhello\r\n0\r\n\r\n";
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(check(&bytes), Ok(Some(body.len())));
        // The state is ready for the next body.
        let mut c = ChunkedCheck::default();
        assert_eq!(c.feed(body), Ok(Some(body.len())));
        assert_eq!(c.feed(body), Ok(Some(body.len())));
    }

    #[test]
    fn incomplete_bodies_wait() {
        for body in [
            &b""[..],
            b"5",
            b"5\r\nhel",
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nX: 1\r\n",
            b"0\r\n\r",
        ] {
            assert_eq!(check(body), Ok(None), "{body:?}");
        }
    }

    #[test]
    fn invalid_sizes() {
        bad(b"\r\nhello\r\n0\r\n\r\n");
        bad(b"0x5\r\nhello\r\n0\r\n\r\n");
        bad(b"-1\r\nhello\r\n0\r\n\r\n");
        bad(b"+5\r\nhello\r\n0\r\n\r\n");
        bad(b" 5\r\nhello\r\n0\r\n\r\n");
        bad(b"5 5\r\nhello\r\n0\r\n\r\n");
        bad(b"5 \r\nhello\r\n0\r\n\r\n");
        bad(b"5\r\nhello\r\n0 \r\n\r\n");
        bad(b"5\t\r\nhello\r\n0\r\n\r\n");
        bad(b"6_0\r\nhello\r\n0\r\n\r\n");
        bad(b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n");
        bad(b"00000000000000005\r\nhello\r\n0\r\n\r\n");
        bad(b"5\nhello\r\n0\r\n\r\n");
        bad(b"5\n;\r\nhello\r\n0\r\n\r\n");
        bad(b"5\rhello\r\n0\r\n\r\n");
    }

    #[test]
    fn invalid_extensions() {
        bad(b"5;a=\x00\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\x01b\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a\rb\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a\nb\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\"b\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\"b\x00\"\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\"b\\\x01\"\r\nhello\r\n0\r\n\r\n");
        bad(b"5;ext=val\rue\r\nhello\r\n0\r\n\r\n");
        bad(b" ;foo=bar\r\nhello\r\n0\r\n\r\n");
        bad(b"5;\r\nhello\r\n0\r\n\r\n");
        bad(b"5;=b\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a \r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=b \r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=b=c\r\nhello\r\n0\r\n\r\n");
        bad(b"5;a=\x7f\r\nhello\r\n0\r\n\r\n");
    }

    #[test]
    fn invalid_data_and_trailers() {
        bad(b"3\r\nhello\r\n0\r\n\r\n");
        bad(b"5\r\nhelloXX0\r\n\r\n");
        bad(b"5\r\nhello\n0\r\n\r\n");
        bad(b"5\r\nhello\r\n0\r\n\n");
        bad(b"5\r\nhello\r\n0\r\n\rX");
        bad(b"0\r\nX: a\x00b\r\n\r\n");
        bad(b"0\r\nX: a\rb\r\n\r\n");
        bad(b"0\r\nX: a\nY: b\r\n\r\n");
        bad(b"0\r\nX : a\r\n\r\n");
        bad(b"0\r\nX: a\r\n b\r\n\r\n");
        bad(b"0\r\nNoColon\r\n\r\n");
        bad(b"0\r\n: a\r\n\r\n");
    }
}

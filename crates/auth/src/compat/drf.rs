//! The parts of Django REST framework the endpoints rely on: content
//! negotiation (the `Accept` header and `?format=`), reading the request
//! body as DRF's parsers do, validating `CharField`s with DRF's messages,
//! and the `OPTIONS` metadata of `SimpleMetadata`.
//!
//! References: DRF 3.18 `request.Request._parse`, `negotiation`,
//! `utils.mediatypes`, `renderers.JSONRenderer`, `parsers`,
//! `fields.CharField`, `serializers.Serializer.to_internal_value` and
//! `metadata.SimpleMetadata`; Django's `parse_header_parameters`,
//! `QueryDict` and `MultiPartParser`. The reference deployment renders JSON
//! only; its settings are those of `bench/django_app`.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;

use crate::error::{AuthError, FieldErrors};
// Rendering lives with the renderer, below the error ladder; negotiation
// decides it here.
use crate::compat::pyjson::{self, is_py_space, Object, Value};
pub use crate::compat::response::Rendering;
use ferricorn_app_interface::Request;

/// Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` (2.5 MiB): the most we read.
pub const BODY_LIMIT: u64 = 2_621_440;

/// Django's `DATA_UPLOAD_MAX_NUMBER_FIELDS`: the most fields a form or a
/// query string may have.
pub const MAX_NUMBER_FIELDS: usize = 1000;

/// The renderers of the reference deployment
/// (`DEFAULT_RENDERER_CLASSES = [JSONRenderer]`): JSON only.
const RENDERERS: [&str; 1] = ["application/json"];

/// `DefaultContentNegotiation`'s bounds on the `Accept` header: its length,
/// the tokens read, and the length of one token.
const MAX_ACCEPT_HEADER_LENGTH: usize = 8192;
const MAX_ACCEPT_TOKENS: usize = 64;
const MAX_MEDIA_TYPE_LENGTH: usize = 256;

const PARSERS: [&str; 3] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
];

/// A request's data (`request.data`).
#[derive(Debug)]
pub enum Data {
    /// No body (DRF reads no stream when `Content-Length` is absent or 0).
    Empty,
    /// A JSON document.
    Json(Value),
    /// Form fields in order; files come after the fields (DRF appends
    /// `request.FILES` to the data).
    Form(Vec<(String, FormValue)>),
}

/// A form value.
#[derive(Debug)]
pub enum FormValue {
    /// A text field.
    Text(String),
    /// An uploaded file (never a valid string).
    File,
}

/// Django's `parse_header_parameters`: the lower-cased value and its
/// parameters (names lower-cased, quotes removed).
pub fn parse_header_parameters(line: &str) -> (String, Vec<(String, String)>) {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    let key = parts[0].trim().to_lowercase();
    let params = parts[1..]
        .iter()
        .filter_map(|p| {
            let (name, value) = p.split_once('=')?;
            let mut value = value.trim().to_string();
            if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
                value = value[1..value.len() - 1]
                    .replace("\\\\", "\\")
                    .replace("\\\"", "\"");
            }
            Some((name.trim().to_lowercase(), value))
        })
        .collect();
    (key, params)
}

/// DRF's `media_type_matches(parser, request)` for a parser type without
/// parameters.
fn matches(parser: &str, request_type: &str) -> bool {
    let (full, _) = parse_header_parameters(request_type);
    let (main, sub) = full.split_once('/').unwrap_or((full.as_str(), ""));
    let (pmain, psub) = parser.split_once('/').unwrap_or((parser, ""));
    (sub == "*" || sub == psub) && (main == "*" || main == pmain)
}

/// A media type as DRF's `_MediaType` reads it.
struct MediaType {
    orig: String,
    main: String,
    sub: String,
    params: Vec<(String, String)>,
}

impl MediaType {
    fn parse(s: &str) -> MediaType {
        let (full, params) = parse_header_parameters(s);
        let (main, sub) = full.split_once('/').unwrap_or((full.as_str(), ""));
        MediaType {
            orig: s.to_string(),
            main: main.to_string(),
            sub: sub.to_string(),
            params,
        }
    }

    /// 3 `type/subtype; param=val`, 2 `type/subtype`, 1 `type/*`, 0 `*/*`.
    fn precedence(&self) -> u8 {
        if self.main == "*" {
            0
        } else if self.sub == "*" {
            1
        } else if self.params.iter().all(|(k, _)| k == "q") {
            2
        } else {
            3
        }
    }

    /// `renderer.match(other)` for a renderer type without parameters:
    /// the other's parameters, `q=0` included, do not matter.
    fn accepted_by(renderer: &MediaType, other: &MediaType) -> bool {
        (renderer.sub == "*" || other.sub == "*" || other.sub == renderer.sub)
            && (renderer.main == "*" || other.main == "*" || other.main == renderer.main)
    }
}

/// DRF's `DefaultContentNegotiation.select_renderer` with the reference
/// deployment's one renderer (JSON), from the `Accept` header and the
/// `?format=` query parameter: how to render, a 404 for a format no renderer
/// has, or a 406 when no accepted type is JSON.
pub fn negotiate(headers: &HeaderMap, query: Option<&str>) -> Result<Rendering, AuthError> {
    // What nearly every API client sends: no query and no `Accept`, or
    // `*/*` or `application/json` alone. DRF picks the JSON renderer with
    // no indent for each, and parsing would only find that out slowly.
    let mut accept = headers.get_all(ACCEPT).iter();
    let plain = match (accept.next(), accept.next()) {
        (None, _) => true,
        (Some(v), None) => matches!(v.as_bytes(), b"*/*" | b"application/json"),
        _ => false,
    };
    if plain && query.is_none_or(str::is_empty) {
        return Ok(Rendering::default());
    }
    let format = parse_urlencoded(query.unwrap_or("").as_bytes())?
        .into_iter()
        .rev()
        .find_map(|(k, v)| match v {
            FormValue::Text(t) if k == "format" => Some(t),
            _ => None,
        })
        .unwrap_or_default();
    if !format.is_empty() && format != "json" {
        return Err(AuthError::NotFound);
    }
    // `request.headers.get('accept', '*/*')`: several Accept fields are
    // one, joined with commas, as the WSGI environ holds them.
    let fields: Vec<String> = headers
        .get_all(ACCEPT)
        .iter()
        .map(|v| latin1(v.as_bytes()))
        .collect();
    let mut header = if fields.is_empty() {
        "*/*".to_string()
    } else {
        fields.join(",")
    };
    if header.chars().count() > MAX_ACCEPT_HEADER_LENGTH {
        // Cut at the last comma within the limit, so no media type is
        // read half (the limit counts characters; latin-1 has one a byte).
        let limit: String = header.chars().take(MAX_ACCEPT_HEADER_LENGTH).collect();
        header = match limit.rfind(',') {
            Some(cut) => limit[..=cut].to_string(),
            None => String::new(),
        };
    }
    let mut accepts = Vec::new();
    for token in header.split(',') {
        let token = token.trim_matches(is_py_space);
        if token.is_empty() || token.chars().count() > MAX_MEDIA_TYPE_LENGTH {
            continue;
        }
        accepts.push(MediaType::parse(token));
        if accepts.len() >= MAX_ACCEPT_TOKENS {
            break;
        }
    }
    for precedence in (0..=3).rev() {
        for renderer in RENDERERS {
            let r = MediaType::parse(renderer);
            let Some(m) = accepts
                .iter()
                .find(|m| m.precedence() == precedence && MediaType::accepted_by(&r, m))
            else {
                continue;
            };
            // Accepting `*/*; indent=4` accepts `application/json;indent=4`:
            // the parameters come along either way.
            let accepted = if r.precedence() > m.precedence() {
                let mut t = renderer.to_string();
                for (k, v) in &m.params {
                    t += &format!(";{k}={v}");
                }
                t
            } else {
                m.orig.clone()
            };
            return Ok(Rendering {
                indent: indent_of(&accepted),
            });
        }
    }
    Err(AuthError::NotAcceptable)
}

/// `JSONRenderer.get_indent`: `int(indent)` clamped to 0..=8, 0 meaning
/// none; an unreadable value is ignored.
fn indent_of(accepted: &str) -> Option<usize> {
    let (_, params) = parse_header_parameters(accepted);
    let raw = params.iter().rev().find(|(k, _)| k == "indent")?;
    let n = Value::str(raw.1.clone()).to_int()?.clamp(0, 8);
    (n > 0).then_some(n as usize)
}

/// A header as Django's WSGI environ holds it: bytes read as ISO-8859-1.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// `request.data`, as DRF computes it for a view with the default parsers.
pub async fn read_data(req: Request) -> Result<Data, AuthError> {
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(|v| latin1(v.as_bytes()))
        .unwrap_or_default();
    let content_length = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if content_length == 0 {
        return Ok(Data::Empty);
    }
    // DRF refuses an over-long media type rather than parse it.
    let Some(parser) = PARSERS.iter().find(|p| {
        content_type.chars().count() <= MAX_MEDIA_TYPE_LENGTH && matches(p, &content_type)
    }) else {
        return Err(AuthError::UnsupportedMediaType(content_type));
    };
    let bytes = body.collect_limited(BODY_LIMIT).await.map_err(|e| {
        if e.is_too_large() {
            AuthError::TooLarge
        } else {
            AuthError::Parse("Malformed request.".into())
        }
    })?;
    let (_, params) = parse_header_parameters(&content_type);
    let charset = params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.as_str());
    // DRF's `get_encoding`: a charset that is no text encoding is refused.
    if let Some(name) = charset.filter(|c| python_codec(c) == Codec::Binary) {
        return Err(AuthError::Parse(format!(
            "Unsupported charset \"{name}\" in request Content-Type header."
        )));
    }
    match *parser {
        "application/json" => {
            let text = decode_text(&bytes, charset)
                .map_err(|e| AuthError::Parse(format!("JSON parse error - {e}")))?;
            pyjson::loads(&text, true)
                .map(Data::Json)
                .map_err(|e| AuthError::Parse(format!("JSON parse error - {e}")))
        }
        "application/x-www-form-urlencoded" => parse_urlencoded(&bytes).map(Data::Form),
        _ => parse_multipart(&content_type, &params, &bytes).map(Data::Form),
    }
}

/// Decodes a body as Python's `codecs.getreader(encoding)(stream).read()`:
/// an incomplete sequence at the very end is dropped (the reader waits for
/// more), an invalid one is Python's `UnicodeDecodeError` text.
fn decode_text(bytes: &Bytes, charset: Option<&str>) -> Result<String, String> {
    match charset.map(python_codec) {
        Some(Codec::Latin1) => return Ok(latin1(bytes)),
        Some(Codec::Wide { unit, big_endian }) => return decode_wide(bytes, unit, big_endian),
        Some(Codec::Utf8Sig) => {
            let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            return decode_text(&Bytes::copy_from_slice(b), None);
        }
        Some(Codec::Ascii) => {
            if let Some(pos) = bytes.iter().position(|b| *b > 127) {
                return Err(format!(
                    "'ascii' codec can't decode byte 0x{:02x} in position {pos}: ordinal not in range(128)",
                    bytes[pos]
                ));
            }
        }
        _ => {}
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let start = e.valid_up_to();
            match e.error_len() {
                None => Ok(String::from_utf8_lossy(&bytes[..start]).into_owned()),
                Some(len) => {
                    let first = bytes[start];
                    let reason = if (0x80..0xc2).contains(&first) || first > 0xf4 {
                        "invalid start byte"
                    } else {
                        "invalid continuation byte"
                    };
                    Err(if len == 1 {
                        format!("'utf-8' codec can't decode byte 0x{first:02x} in position {start}: {reason}")
                    } else {
                        format!(
                            "'utf-8' codec can't decode bytes in position {start}-{}: {reason}",
                            start + len - 1
                        )
                    })
                }
            }
        }
    }
}

/// The Python codecs a JSON body's `charset` can name, beyond UTF-8.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Utf8,
    Utf8Sig,
    Latin1,
    Ascii,
    /// UTF-16 (`unit` 2) or UTF-32 (4); `big_endian` `None`: by the BOM.
    Wide {
        unit: usize,
        big_endian: Option<bool>,
    },
    /// A bytes-to-bytes codec (`bz2_codec`, `base64`, ...), which DRF
    /// refuses as a charset.
    Binary,
}

/// `codecs.lookup(name)`: the name normalized as Python's
/// `encodings.normalize_encoding` does (lower case, runs of punctuation
/// one `_`), then its aliases. A name Python does not know leaves Django's
/// default, UTF-8 (Django keeps a charset only when `codecs.lookup` finds
/// it); so do the codecs not listed here.
fn python_codec(name: &str) -> Codec {
    let mut norm = String::new();
    let mut punct = false;
    for c in name.chars() {
        if c.is_alphanumeric() || c == '.' {
            if punct && !norm.is_empty() {
                norm.push('_');
            }
            if c.is_ascii() {
                norm.push(c.to_ascii_lowercase());
            }
            punct = false;
        } else {
            punct = true;
        }
    }
    let wide = |unit, big_endian| Codec::Wide { unit, big_endian };
    match norm.replace('.', "_").as_str() {
        "latin_1" | "latin1" | "latin" | "l1" | "iso8859_1" | "iso_8859_1" | "iso_8859_1_1987"
        | "8859" | "cp819" | "ibm819" | "iso_ir_100" | "csisolatin1" => Codec::Latin1,
        "ascii" | "us_ascii" | "us" | "646" | "cp367" | "csascii" | "ibm367" | "iso646_us"
        | "iso_646_irv_1991" | "iso_ir_6" | "ansi_x3_4_1968" | "ansi_x3_4_1986" => Codec::Ascii,
        "utf_8_sig" => Codec::Utf8Sig,
        "utf_16" | "utf16" | "u16" => wide(2, None),
        "utf_16_le" | "utf_16le" | "unicodelittleunmarked" => wide(2, Some(false)),
        "utf_16_be" | "utf_16be" | "unicodebigunmarked" => wide(2, Some(true)),
        "utf_32" | "utf32" | "u32" => wide(4, None),
        "utf_32_le" | "utf_32le" => wide(4, Some(false)),
        "utf_32_be" | "utf_32be" => wide(4, Some(true)),
        "base64_codec" | "base64" | "base_64" | "bz2_codec" | "bz2" | "hex_codec" | "hex"
        | "quopri_codec" | "quopri" | "quoted_printable" | "quotedprintable" | "uu_codec"
        | "uu" | "zlib_codec" | "zip" | "zlib" | "rot_13" | "rot13" => Codec::Binary,
        _ => Codec::Utf8,
    }
}

/// Python's UTF-16 and UTF-32 stream readers: without a byte order, a BOM
/// is required (and dropped); an incomplete unit at the end is dropped; a
/// bad unit is Python's `UnicodeDecodeError` text, positions counted from
/// the start of the body.
fn decode_wide(bytes: &[u8], unit: usize, big_endian: Option<bool>) -> Result<String, String> {
    let bits = unit * 8;
    let (mut pos, big) = match big_endian {
        Some(big) => (0, big),
        None => {
            let (le, be): (&[u8], &[u8]) = if unit == 2 {
                (b"\xff\xfe", b"\xfe\xff")
            } else {
                (b"\xff\xfe\0\0", b"\0\0\xfe\xff")
            };
            if bytes.starts_with(le) {
                (unit, false)
            } else if bytes.starts_with(be) {
                (unit, true)
            } else {
                // Python decodes in the machine's order (little-endian)
                // first, so a bad unit is reported before the missing BOM.
                decode_wide(bytes, unit, Some(false))?;
                if bytes.len() >= unit {
                    return Err(format!("UTF-{bits} stream does not start with BOM"));
                }
                return Ok(String::new());
            }
        }
    };
    let codec = format!("'utf-{bits}-{}'", if big { "be" } else { "le" });
    let read = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + unit)?;
        Some(if big {
            b.iter().fold(0, |n, x| n << 8 | u32::from(*x))
        } else {
            b.iter().rev().fold(0, |n, x| n << 8 | u32::from(*x))
        })
    };
    let fail = |at: usize, len: usize, why: &str| {
        Err(format!(
            "{codec} codec can't decode bytes in position {at}-{}: {why}",
            at + len - 1
        ))
    };
    let mut out = String::new();
    while let Some(u) = read(pos) {
        if unit == 4 {
            match char::from_u32(u) {
                Some(c) => out.push(c),
                None if u > 0x10ffff => return fail(pos, 4, "code point not in range(0x110000)"),
                None => {
                    return fail(
                        pos,
                        4,
                        "code point in surrogate code point range(0xd800, 0xe000)",
                    )
                }
            }
        } else if (0xdc00..0xe000).contains(&u) {
            return fail(pos, 2, "illegal encoding");
        } else if (0xd800..0xdc00).contains(&u) {
            match read(pos + 2) {
                // The pair's second half has not arrived: the reader waits.
                None => break,
                Some(l) if (0xdc00..0xe000).contains(&l) => {
                    let c = 0x10000 + ((u - 0xd800) << 10) + (l - 0xdc00);
                    out.extend(char::from_u32(c));
                    pos += 2;
                }
                Some(_) => return fail(pos, 2, "illegal UTF-16 surrogate"),
            }
        } else {
            out.extend(char::from_u32(u));
        }
        pos += unit;
    }
    Ok(out)
}

/// Python's `unquote_plus(..., errors="replace")`.
fn unquote_plus(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Django's `QueryDict(body)`: `&`-separated, blank values kept, a field
/// without `=` is blank, undecodable bytes read as ISO-8859-1.
fn parse_urlencoded(bytes: &[u8]) -> Result<Vec<(String, FormValue)>, AuthError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => latin1(bytes),
    };
    // Python's `parse_qsl(max_num_fields=DATA_UPLOAD_MAX_NUMBER_FIELDS)`
    // counts the separators, empty fields included.
    if 1 + text.matches('&').count() > MAX_NUMBER_FIELDS {
        return Err(AuthError::TooManyFields);
    }
    Ok(text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unquote_plus(k), FormValue::Text(unquote_plus(v)))
        })
        .collect())
}

/// Django's `MultiPartParser`, for the simple fields a token request has.
fn parse_multipart(
    content_type: &str,
    params: &[(String, String)],
    body: &[u8],
) -> Result<Vec<(String, FormValue)>, AuthError> {
    let fail = |m: String| AuthError::Parse(format!("Multipart form parse error - {m}"));
    if !content_type.is_ascii() {
        return Err(fail(format!(
            "Invalid non-ASCII Content-Type in multipart: {content_type}"
        )));
    }
    let boundary = params
        .iter()
        .find(|(k, _)| k == "boundary")
        .map(|(_, v)| v.as_str());
    let valid = boundary.is_some_and(|b| {
        let printable: String = b
            .chars()
            .take_while(|c| (' '..='~').contains(c))
            .take(201)
            .collect();
        printable.chars().any(|c| c != ' ')
    });
    let Some(boundary) = boundary.filter(|_| valid) else {
        return Err(fail(format!(
            "Invalid boundary in multipart: {}",
            boundary.unwrap_or("None")
        )));
    };
    let delim = format!("--{boundary}");
    let mut fields = Vec::new();
    let mut files = Vec::new();
    let mut rest = body;
    // Skip the preamble.
    let Some(pos) = find(rest, delim.as_bytes()) else {
        return Ok(fields);
    };
    rest = &rest[pos + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let end = find(rest, format!("\r\n{delim}").as_bytes()).unwrap_or(rest.len());
        let part = rest[..end].strip_prefix(b"\r\n").unwrap_or(&rest[..end]);
        if let Some(split) = find(part, b"\r\n\r\n") {
            let headers = latin1(&part[..split]);
            let value = &part[split + 4..];
            if let Some(disp) = headers.split("\r\n").find_map(|h| {
                h.split_once(':')
                    .filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-disposition"))
            }) {
                let (_, dp) = parse_header_parameters(disp.1);
                let get = |k: &str| dp.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                if let Some(name) = get("name") {
                    let name = name.trim().to_string();
                    match get("filename") {
                        Some(f) if !f.is_empty() => files.push((name, FormValue::File)),
                        Some(_) => {}
                        None => fields.push((
                            name,
                            FormValue::Text(String::from_utf8_lossy(value).into_owned()),
                        )),
                    }
                }
            }
        }
        if end >= rest.len() {
            break;
        }
        rest = &rest[end + 2 + delim.len()..];
    }
    fields.extend(files);
    Ok(fields)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A field's raw value, as DRF's `Field.get_value` finds it.
enum Input<'a> {
    Missing,
    Json(&'a Value),
    Text(&'a str),
    File,
}

/// DRF's `CharField()` (required, no blank, no null, trimmed):
/// `run_validation` with its messages.
fn char_field(input: Input<'_>) -> Result<String, Vec<String>> {
    let err = |m: &str| Err(vec![m.to_string()]);
    let blank = |s: &str| s.is_empty() || s.trim_matches(is_py_space).is_empty();
    let (text, surrogate) = match input {
        Input::Missing => return err("This field is required."),
        Input::Text(s) if blank(s) => return err("This field may not be blank."),
        Input::Json(Value::Str(s)) if s.surrogate.is_none() && blank(&s.text) => {
            return err("This field may not be blank.")
        }
        Input::Json(Value::Null) => return err("This field may not be null."),
        Input::Json(Value::Str(s)) => (s.text.clone(), s.surrogate),
        Input::Json(v @ (Value::Int(_) | Value::Float(_))) => {
            (v.py_str().unwrap_or_default(), None)
        }
        Input::Text(s) => (s.to_string(), None),
        Input::Json(_) | Input::File => return err("Not a valid string."),
    };
    let value = text.trim_matches(is_py_space).to_string();
    let mut errors = Vec::new();
    if value.contains('\0') {
        errors.push("Null characters are not allowed.".to_string());
    }
    if let Some(cp) = surrogate {
        errors.push(format!("Surrogate characters are not allowed: U+{cp:X}."));
    }
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

/// Whether the data has `field` at all (even blank). Data that is not a
/// dictionary "has" every field, so that validation reports it.
pub fn has_field(data: &Data, field: &str) -> bool {
    match data {
        Data::Empty => false,
        Data::Json(Value::Object(o)) => o.contains(field),
        Data::Json(_) => true,
        Data::Form(items) => items.iter().any(|(k, _)| k == field),
    }
}

/// Validates `fields` (all `CharField()`s) of a serializer against the
/// data: the values in order, or the errors DRF reports.
pub fn validate_fields(data: &Data, fields: &[&str]) -> Result<Vec<String>, AuthError> {
    let empty = Object::new();
    let obj = match data {
        Data::Empty => Some(&empty),
        Data::Json(Value::Object(o)) => Some(o),
        Data::Json(Value::Null) => {
            return Err(AuthError::Validation(vec![(
                "non_field_errors".into(),
                vec!["No data provided".into()],
            )]))
        }
        Data::Json(other) => {
            return Err(AuthError::Validation(vec![(
                "non_field_errors".into(),
                vec![format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    other.type_name()
                )],
            )]))
        }
        Data::Form(_) => None,
    };
    let mut values = Vec::new();
    let mut errors: FieldErrors = Vec::new();
    for field in fields {
        let input = match (obj, data) {
            (Some(o), _) => o.get(field).map_or(Input::Missing, Input::Json),
            (None, Data::Form(items)) => match items.iter().rev().find(|(k, _)| k == field) {
                None => Input::Missing,
                Some((_, FormValue::Text(t))) => Input::Text(t),
                Some((_, FormValue::File)) => Input::File,
            },
            _ => Input::Missing,
        };
        match char_field(input) {
            Ok(v) => values.push(v),
            Err(e) => errors.push((field.to_string(), e)),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(AuthError::Validation(errors))
    }
}

/// A field as `SimpleMetadata` describes it.
pub struct FieldMeta {
    /// The field name.
    pub name: &'static str,
    /// `read_only=True` (simplejwt's `access` on the refresh serializer).
    pub read_only: bool,
}

/// The `OPTIONS` answer of `SimpleMetadata`.
pub fn metadata(name: &str, description: &str, post_fields: Option<&[FieldMeta]>) -> Value {
    let mut m = Object::new();
    m.insert("name", Value::str(name));
    m.insert("description", Value::str(description));
    m.insert(
        "renders",
        Value::Array(RENDERERS.iter().map(|r| Value::str(*r)).collect()),
    );
    m.insert(
        "parses",
        Value::Array(PARSERS.iter().map(|p| Value::str(*p)).collect()),
    );
    if let Some(fields) = post_fields {
        let mut info = Object::new();
        for f in fields {
            let mut fi = Object::new();
            fi.insert("type", Value::str("string"));
            fi.insert("required", Value::Bool(!f.read_only));
            fi.insert("read_only", Value::Bool(f.read_only));
            let mut label = f.name.replace('_', " ");
            if let Some(first) = label.get(0..1) {
                label = first.to_uppercase() + &label[1..].to_lowercase();
            }
            fi.insert("label", Value::str(label));
            info.insert(f.name, Value::Object(fi));
        }
        let mut actions = Object::new();
        actions.insert("POST", Value::Object(info));
        m.insert("actions", Value::Object(actions));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(r: Result<Vec<String>, AuthError>) -> String {
        pyjson::dumps(&r.unwrap_err().body(), false)
    }

    #[test]
    fn field_messages() {
        let f = &["username", "password"];
        assert_eq!(
            errs(validate_fields(&Data::Empty, f)),
            r#"{"username":["This field is required."],"password":["This field is required."]}"#
        );
        let j = |s: &str| Data::Json(pyjson::loads(s, true).unwrap());
        assert_eq!(
            errs(validate_fields(
                &j(r#"{"username":" ","password":null}"#),
                f
            )),
            r#"{"username":["This field may not be blank."],"password":["This field may not be null."]}"#
        );
        assert_eq!(
            errs(validate_fields(&j(r#"{"username":true,"password":[]}"#), f)),
            r#"{"username":["Not a valid string."],"password":["Not a valid string."]}"#
        );
        assert_eq!(
            errs(validate_fields(&j("[]"), f)),
            r#"{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}"#
        );
        assert_eq!(
            validate_fields(&j(r#"{"username":" a ","password":12}"#), f).unwrap(),
            ["a", "12"]
        );
        let form =
            Data::Form(parse_urlencoded(b"username=a+b&password=%20x%20&password=").unwrap());
        assert_eq!(
            errs(validate_fields(&form, f)),
            r#"{"password":["This field may not be blank."]}"#
        );
    }

    #[test]
    fn negotiation() {
        let neg = |accept: Option<&str>, query: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(a) = accept {
                h.insert(ACCEPT, a.parse().unwrap());
            }
            negotiate(&h, query).map(|r| r.indent)
        };
        assert_eq!(neg(None, None).unwrap(), None);
        assert_eq!(
            neg(Some("application/json; indent=4"), None).unwrap(),
            Some(4)
        );
        assert_eq!(neg(Some("*/*; indent=20"), None).unwrap(), Some(8));
        assert_eq!(neg(Some("application/json; indent=0"), None).unwrap(), None);
        assert_eq!(neg(Some("text/html, */json;q=0"), None).unwrap(), None);
        assert!(matches!(
            neg(Some("text/html"), None),
            Err(AuthError::NotAcceptable)
        ));
        assert!(matches!(neg(Some(""), None), Err(AuthError::NotAcceptable)));
        assert!(matches!(
            neg(None, Some("format=xml")),
            Err(AuthError::NotFound)
        ));
        assert_eq!(neg(None, Some("format=xml&format=json")).unwrap(), None);
        // The shortcut for the usual requests agrees with the full reading
        // (the trailing comma takes the long way).
        for accept in ["*/*", "application/json"] {
            assert_eq!(neg(Some(accept), None).unwrap(), None);
            assert_eq!(neg(Some(&format!("{accept},")), None).unwrap(), None);
            assert_eq!(neg(Some(accept), Some("")).unwrap(), None);
        }
        assert!(matches!(
            neg(None, Some(&"&".repeat(1000))),
            Err(AuthError::TooManyFields)
        ));
    }

    #[test]
    fn charsets() {
        let utf16: Vec<u8> = [0xfeff_u16, u16::from(b'{'), u16::from(b'}')]
            .iter()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let text = |b: &[u8], c| decode_text(&Bytes::copy_from_slice(b), Some(c));
        assert_eq!(text(&utf16, "UTF-16").unwrap(), "{}");
        assert_eq!(
            text(b"\0\xdc{\0", "utf-16").unwrap_err(),
            "'utf-16-le' codec can't decode bytes in position 0-1: illegal encoding"
        );
        assert_eq!(
            text(&utf16[2..], "utf-16").unwrap_err(),
            "UTF-16 stream does not start with BOM"
        );
        assert_eq!(
            text(b"{\0}\0", "utf-16").unwrap_err(),
            "UTF-16 stream does not start with BOM"
        );
        assert_eq!(text(b"{\0}\0", "utf_16_le").unwrap(), "{}");
        assert_eq!(text(b"\xe9", "Latin-1").unwrap(), "é");
        assert_eq!(text(b"{}", "no-such-codec").unwrap(), "{}");
        assert!(python_codec("BZ2") == Codec::Binary);
    }

    #[test]
    fn media_types() {
        assert!(matches(
            "application/json",
            "Application/JSON; charset=utf-8"
        ));
        assert!(matches("application/json", "*/*"));
        assert!(!matches("application/json", "text/plain"));
        assert!(!matches("application/json", ""));
    }

    #[test]
    fn multipart_fields() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--XX\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\npw\r\n--XX--\r\n";
        let ct = "multipart/form-data; boundary=XX";
        let (_, p) = parse_header_parameters(ct);
        let f = parse_multipart(ct, &p, body).unwrap();
        assert_eq!(
            validate_fields(&Data::Form(f), &["username", "password"]).unwrap(),
            ["alice", "pw"]
        );
    }
}

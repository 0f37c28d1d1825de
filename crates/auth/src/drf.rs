//! The parts of Django REST framework the endpoints rely on: reading the
//! request body as DRF's parsers do, validating `CharField`s with DRF's
//! messages, and the `OPTIONS` metadata of `SimpleMetadata`.
//!
//! References: DRF 3.18 `request.Request._parse`, `negotiation`,
//! `parsers`, `fields.CharField`, `serializers.Serializer.to_internal_value`
//! and `metadata.SimpleMetadata`; Django's `parse_header_parameters`,
//! `QueryDict` and `MultiPartParser`.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::error::{AuthError, FieldErrors};
use crate::pyjson::{self, is_py_space, Object, Value};
use ferricorn_app_interface::Request;

/// Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` (2.5 MiB): the most we read.
pub const BODY_LIMIT: u64 = 2_621_440;

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
    let Some(parser) = PARSERS.iter().find(|p| matches(p, &content_type)) else {
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
        .map(|(_, v)| v.to_lowercase());
    match *parser {
        "application/json" => {
            let text = decode_text(&bytes, charset.as_deref())
                .map_err(|e| AuthError::Parse(format!("JSON parse error - {e}")))?;
            pyjson::loads(&text, true)
                .map(Data::Json)
                .map_err(|e| AuthError::Parse(format!("JSON parse error - {e}")))
        }
        "application/x-www-form-urlencoded" => Ok(Data::Form(parse_urlencoded(&bytes))),
        _ => parse_multipart(&content_type, &params, &bytes).map(Data::Form),
    }
}

/// Decodes a body as Python's `codecs.getreader(encoding)(stream).read()`:
/// an incomplete sequence at the very end is dropped (the reader waits for
/// more), an invalid one is Python's `UnicodeDecodeError` text.
fn decode_text(bytes: &Bytes, charset: Option<&str>) -> Result<String, String> {
    match charset {
        Some("latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1") => return Ok(latin1(bytes)),
        Some("ascii" | "us-ascii") => {
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
fn parse_urlencoded(bytes: &[u8]) -> Vec<(String, FormValue)> {
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => latin1(bytes),
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unquote_plus(k), FormValue::Text(unquote_plus(v)))
        })
        .collect()
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
        Value::Array(vec![
            Value::str("application/json"),
            Value::str("text/html"),
        ]),
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
        let form = Data::Form(parse_urlencoded(b"username=a+b&password=%20x%20&password="));
        assert_eq!(
            errs(validate_fields(&form, f)),
            r#"{"password":["This field may not be blank."]}"#
        );
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

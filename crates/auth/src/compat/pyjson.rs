//! JSON the way Python's `json` module reads and writes it.
//!
//! simplejwt runs on CPython: DRF's `JSONParser` reports a malformed body
//! with the text of Python's `JSONDecodeError` ("Expecting value: line 1
//! column 1 (char 0)"), PyJWT writes claims with `json.dumps` (ASCII-only,
//! compact, keys in insertion order), and serializer fields turn numbers into
//! strings with Python's `str()`. A client that compares our answers with
//! simplejwt's sees these details, so this module reproduces them instead of
//! using `serde_json`, whose messages, number handling and key order differ.
//!
//! The parser follows CPython's C scanner (`Modules/_json.c`) step by step,
//! including where each error is reported. Positions count characters (code
//! points), as Python's do.

use std::fmt::Write as _;

/// Python 3.13 reports a trailing comma in an object or array as such; older
/// versions say "Expecting property name..." / "Expecting value". We match
/// the reference deployment, Python 3.11 (`bench/.venv`, where the
/// differential test compares us with simplejwt), so this is off.
const TRAILING_COMMA_MESSAGES: bool = false;

/// Python's default limit on the digits of an int read from text.
const INT_MAX_STR_DIGITS: usize = 4300;

/// Nesting beyond this is refused. CPython raises `RecursionError` when the
/// decoder's recursion meets the interpreter's limit (1000 frames, less those
/// already on the stack): under Django + DRF + Gunicorn a body nests up to 961
/// arrays or objects (measured by the differential test's reference
/// deployment), and deeper is a 500 there. We accept what it accepts and
/// answer a 400, not a 500, beyond.
const MAX_DEPTH: usize = 961;

/// A decoded JSON value with Python's types.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null` → `None`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer, kept as its decimal digits (Python ints are unbounded).
    Int(String),
    /// A float (also `NaN` and `Infinity` where constants are allowed).
    Float(f64),
    /// A string.
    Str(PyStr),
    /// A list.
    Array(Vec<Value>),
    /// A dict: keys in insertion order, a repeated key keeps its first place
    /// and takes the last value.
    Object(Object),
}

/// A Python `str`. Rust strings cannot hold a lone surrogate, which a JSON
/// `"\ud800"` escape produces in Python: it is replaced by U+FFFD in `text`
/// and the first one is remembered, because DRF's `CharField` refuses it by
/// code point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PyStr {
    /// The text (lone surrogates replaced by U+FFFD).
    pub text: String,
    /// The first lone surrogate of the original string, if any.
    pub surrogate: Option<u16>,
}

impl From<&str> for PyStr {
    fn from(s: &str) -> Self {
        PyStr {
            text: s.to_owned(),
            surrogate: None,
        }
    }
}

impl From<String> for PyStr {
    fn from(text: String) -> Self {
        PyStr {
            text,
            surrogate: None,
        }
    }
}

/// An insertion-ordered dict.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object(Vec<(String, Value)>);

impl Object {
    /// An empty dict.
    pub fn new() -> Self {
        Object(Vec::new())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` as Python's `d[key] = value` does: in place if present,
    /// appended otherwise.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(PyStr::from(s.into()))
    }

    /// An integer value.
    pub fn int(i: i64) -> Value {
        Value::Int(i.to_string())
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(&s.text),
            _ => None,
        }
    }

    /// Python's `type(value).__name__`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Array(_) => "list",
            Value::Object(_) => "dict",
        }
    }

    /// Python's truthiness (`if value:`).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(s) => s != "0",
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.text.is_empty() || s.surrogate.is_some(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.0.is_empty(),
        }
    }

    /// Python's `int(value)` for the types JSON yields, or `None` where Python
    /// raises (or the result does not fit in an `i64`). Floats truncate,
    /// booleans are 0 and 1, strings follow `int(str)`.
    pub fn to_int(&self) -> Option<i64> {
        match self {
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Int(s) => s.parse().ok(),
            Value::Float(f) if f.is_finite() => {
                let t = f.trunc();
                (t >= i64::MIN as f64 && t < i64::MAX as f64).then_some(t as i64)
            }
            Value::Str(s) if s.surrogate.is_none() => py_int_from_str(&s.text),
            _ => None,
        }
    }

    /// Python's `str(value)` for scalars (what DRF's `CharField` stores).
    pub fn py_str(&self) -> Option<String> {
        match self {
            Value::Int(s) => Some(s.clone()),
            Value::Float(f) => Some(float_repr(*f)),
            Value::Str(s) => Some(s.text.clone()),
            _ => None,
        }
    }
}

/// Python's `int(text)`: surrounding whitespace, a sign, digits with single
/// underscores between them.
fn py_int_from_str(text: &str) -> Option<i64> {
    let t = text.trim_matches(is_py_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let v: i64 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `str.isspace()` for one character: Unicode White_Space plus the
/// ASCII information separators U+001C..U+001F.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `repr(float)`: the shortest round-tripping digits, fixed notation
/// for exponents -5 < e < 16 (with at least one decimal), else `1e+16`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if !(-5 < exp && exp < 16) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{esign}{:02}", exp.abs());
    }
    if exp >= 0 {
        let int_len = exp as usize + 1;
        let (int_part, frac) = if digits.len() > int_len {
            (digits[..int_len].to_string(), digits[int_len..].to_string())
        } else {
            (
                format!("{digits}{}", "0".repeat(int_len - digits.len())),
                "0".to_string(),
            )
        };
        format!("{sign}{int_part}.{frac}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

// ---------------------------------------------------------------- parsing

enum Fail {
    /// Python's `StopIteration(idx)`: "Expecting value" at idx.
    Stop(usize),
    /// A `JSONDecodeError` with its message and position.
    Decode(&'static str, usize),
    /// Another `ValueError`, whose text is reported as is.
    Other(String),
}

/// Parses `text` as Python's `json.loads` does. With `strict_constants`,
/// `NaN` and `Infinity` are refused as DRF's `JSONParser` refuses them. The
/// error is the exception's text (`str(exc)`).
pub fn loads(text: &str, strict_constants: bool) -> Result<Value, String> {
    let s: Vec<char> = text.chars().collect();
    let fmt = |msg: &str, pos: usize| -> String {
        let before = &s[..pos.min(s.len())];
        let lineno = before.iter().filter(|c| **c == '\n').count() + 1;
        let colno = match before.iter().rposition(|c| *c == '\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        format!("{msg}: line {lineno} column {colno} (char {pos})")
    };
    if s.first() == Some(&'\u{feff}') {
        return Err(fmt("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    let mut p = Parser {
        s: &s,
        strict_constants,
        depth: 0,
    };
    let start = p.ws(0);
    let result = p.scan(start).and_then(|(v, end)| {
        let end = p.ws(end);
        if end != s.len() {
            Err(Fail::Decode("Extra data", end))
        } else {
            Ok(v)
        }
    });
    result.map_err(|f| match f {
        Fail::Stop(pos) => fmt("Expecting value", pos),
        Fail::Decode(msg, pos) => fmt(msg, pos),
        Fail::Other(msg) => msg,
    })
}

struct Parser<'a> {
    s: &'a [char],
    strict_constants: bool,
    depth: usize,
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn ws(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_ws) {
            i += 1;
        }
        i
    }

    fn lit(&self, i: usize, word: &str) -> bool {
        let w: Vec<char> = word.chars().collect();
        i + w.len() <= self.s.len() && self.s[i..i + w.len()] == w[..]
    }

    fn scan(&mut self, idx: usize) -> Result<(Value, usize), Fail> {
        let Some(c) = self.at(idx) else {
            return Err(Fail::Stop(idx));
        };
        match c {
            '"' => {
                let (s, end) = self.string(idx + 1)?;
                return Ok((Value::Str(s), end));
            }
            '{' | '[' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(Fail::Other(
                        "maximum recursion depth exceeded while decoding a JSON document".into(),
                    ));
                }
                let r = if c == '{' {
                    self.object(idx + 1)
                } else {
                    self.array(idx + 1)
                };
                self.depth -= 1;
                return r;
            }
            // CPython checks `idx + len - 1 < length`, i.e. the whole word fits.
            'n' if self.lit(idx, "null") => return Ok((Value::Null, idx + 4)),
            't' if self.lit(idx, "true") => return Ok((Value::Bool(true), idx + 4)),
            'f' if self.lit(idx, "false") => return Ok((Value::Bool(false), idx + 5)),
            'N' if self.lit(idx, "NaN") => return self.constant("NaN", f64::NAN, idx + 3),
            'I' if self.lit(idx, "Infinity") => {
                return self.constant("Infinity", f64::INFINITY, idx + 8)
            }
            '-' if self.lit(idx, "-Infinity") => {
                return self.constant("-Infinity", f64::NEG_INFINITY, idx + 9)
            }
            _ => {}
        }
        self.number(idx)
    }

    fn constant(&self, name: &str, v: f64, end: usize) -> Result<(Value, usize), Fail> {
        if self.strict_constants {
            return Err(Fail::Other(format!(
                "Out of range float values are not JSON compliant: '{name}'"
            )));
        }
        Ok((Value::Float(v), end))
    }

    fn number(&self, start: usize) -> Result<(Value, usize), Fail> {
        let digit = |i: usize| self.at(i).is_some_and(|c| c.is_ascii_digit());
        let len = self.s.len();
        let mut idx = start;
        if self.at(idx) == Some('-') {
            idx += 1;
            if idx >= len {
                return Err(Fail::Stop(start));
            }
        }
        match self.at(idx) {
            Some('1'..='9') => {
                idx += 1;
                while digit(idx) {
                    idx += 1;
                }
            }
            Some('0') => idx += 1,
            _ => return Err(Fail::Stop(start)),
        }
        let mut is_float = false;
        if self.at(idx) == Some('.') && digit(idx + 1) {
            is_float = true;
            idx += 2;
            while digit(idx) {
                idx += 1;
            }
        }
        if idx + 1 < len && matches!(self.at(idx), Some('e' | 'E')) {
            let e_start = idx;
            idx += 1;
            if idx + 1 < len && matches!(self.at(idx), Some('-' | '+')) {
                idx += 1;
            }
            while digit(idx) {
                idx += 1;
            }
            if digit(idx - 1) {
                is_float = true;
            } else {
                idx = e_start;
            }
        }
        let text: String = self.s[start..idx].iter().collect();
        if is_float {
            let f: f64 = text.parse().unwrap_or(f64::NAN);
            return Ok((Value::Float(f), idx));
        }
        let ndigits = text.trim_start_matches('-').len();
        if ndigits > INT_MAX_STR_DIGITS {
            return Err(Fail::Other(format!(
                "Exceeds the limit ({INT_MAX_STR_DIGITS} digits) for integer string conversion: \
                 value has {ndigits} digits; use sys.set_int_max_str_digits() to increase the limit"
            )));
        }
        let text = if text == "-0" { "0".to_string() } else { text };
        Ok((Value::Int(text), idx))
    }

    /// Reads a string whose opening quote is at `end - 1`; returns the string
    /// and the index after the closing quote.
    fn string(&self, end: usize) -> Result<(PyStr, usize), Fail> {
        // The usual string has no escape before its closing quote: taken
        // whole. (Text from a `str` holds no surrogate.) Anything else,
        // errors included, goes the long way below.
        let plain = self.s[end..]
            .iter()
            .position(|d| *d == '"' || *d == '\\' || (*d as u32) <= 0x1f);
        if let Some(n) = plain.filter(|n| self.s[end + n] == '"') {
            let text = self.s[end..end + n].iter().collect();
            return Ok((
                PyStr {
                    text,
                    surrogate: None,
                },
                end + n + 1,
            ));
        }
        let begin = end - 1;
        let len = self.s.len();
        let mut out = PyStr::default();
        let mut units: Vec<u32> = Vec::new();
        let mut next = end;
        loop {
            let mut c = None;
            while next < len {
                let d = self.s[next];
                if d == '"' || d == '\\' {
                    c = Some(d);
                    break;
                }
                if (d as u32) <= 0x1f {
                    return Err(Fail::Decode("Invalid control character at", next));
                }
                units.push(d as u32);
                next += 1;
            }
            match c {
                Some('"') => {
                    flush(&mut units, &mut out);
                    return Ok((out, next + 1));
                }
                Some(_) => {}
                None => return Err(Fail::Decode("Unterminated string starting at", begin)),
            }
            // At a backslash.
            next += 1;
            if next == len {
                return Err(Fail::Decode("Unterminated string starting at", begin));
            }
            let e = self.s[next];
            if e != 'u' {
                let v = match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    _ => return Err(Fail::Decode("Invalid \\escape", next - 1)),
                };
                units.push(v as u32);
                next += 1;
                continue;
            }
            next += 1;
            let hex_end = next + 4;
            if hex_end >= len {
                return Err(Fail::Decode("Invalid \\uXXXX escape", next - 1));
            }
            let Some(mut cp) = self.hex4(next) else {
                return Err(Fail::Decode("Invalid \\uXXXX escape", next - 1));
            };
            next = hex_end;
            if (0xD800..0xDC00).contains(&cp)
                && hex_end + 6 < len
                && self.s[next] == '\\'
                && self.s[next + 1] == 'u'
            {
                let Some(c2) = self.hex4(next + 2) else {
                    return Err(Fail::Decode("Invalid \\uXXXX escape", next + 1));
                };
                if (0xDC00..0xE000).contains(&c2) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (c2 - 0xDC00);
                    next += 6;
                }
            }
            units.push(cp);
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in at..at + 4 {
            v = v * 16 + self.at(i)?.to_digit(16)?;
        }
        Some(v)
    }

    fn object(&mut self, start: usize) -> Result<(Value, usize), Fail> {
        let mut obj = Object::new();
        let mut idx = self.ws(start);
        if self.at(idx) != Some('}') {
            loop {
                if self.at(idx) != Some('"') {
                    return Err(Fail::Decode(
                        "Expecting property name enclosed in double quotes",
                        idx,
                    ));
                }
                let (key, after) = self.string(idx + 1)?;
                idx = self.ws(after);
                if self.at(idx) != Some(':') {
                    return Err(Fail::Decode("Expecting ':' delimiter", idx));
                }
                idx = self.ws(idx + 1);
                let (val, after) = self.scan(idx)?;
                obj.insert(key.text, val);
                idx = self.ws(after);
                if self.at(idx) == Some('}') {
                    break;
                }
                if self.at(idx) != Some(',') {
                    return Err(Fail::Decode("Expecting ',' delimiter", idx));
                }
                let comma = idx;
                idx = self.ws(idx + 1);
                if TRAILING_COMMA_MESSAGES && self.at(idx) == Some('}') {
                    return Err(Fail::Decode(
                        "Illegal trailing comma before end of object",
                        comma,
                    ));
                }
            }
        }
        Ok((Value::Object(obj), idx + 1))
    }

    fn array(&mut self, start: usize) -> Result<(Value, usize), Fail> {
        let mut items = Vec::new();
        let mut idx = self.ws(start);
        if self.at(idx) != Some(']') {
            loop {
                let (val, after) = self.scan(idx)?;
                items.push(val);
                idx = self.ws(after);
                if self.at(idx) == Some(']') {
                    break;
                }
                if self.at(idx) != Some(',') {
                    return Err(Fail::Decode("Expecting ',' delimiter", idx));
                }
                let comma = idx;
                idx = self.ws(idx + 1);
                if TRAILING_COMMA_MESSAGES && self.at(idx) == Some(']') {
                    return Err(Fail::Decode(
                        "Illegal trailing comma before end of array",
                        comma,
                    ));
                }
            }
        }
        Ok((Value::Array(items), idx + 1))
    }
}

/// Turns UTF-16-ish units (code points, with lone surrogates) into a `PyStr`.
fn flush(units: &mut Vec<u32>, out: &mut PyStr) {
    for u in units.drain(..) {
        match char::from_u32(u) {
            Some(c) => out.text.push(c),
            None => {
                out.surrogate.get_or_insert(u as u16);
                out.text.push('\u{fffd}');
            }
        }
    }
}

// ---------------------------------------------------------------- writing

/// `json.dumps(value, separators=(",", ":"), ensure_ascii=...)`. DRF's
/// renderer writes with `ensure_ascii=False` and then escapes U+2028 and
/// U+2029; PyJWT writes token claims with `ensure_ascii=True`.
pub fn dumps(value: &Value, ensure_ascii: bool) -> String {
    dumps_indented(value, ensure_ascii, None)
}

/// [`dumps`] with Python's `indent`: with `Some(n)`, each item on its own
/// line indented by `n` spaces per level and `": "` after keys, as DRF's
/// renderer writes for `Accept: application/json; indent=n` (its
/// `INDENT_SEPARATORS` are `(",", ": ")`). Empty lists and dicts stay `[]`
/// and `{}`.
pub fn dumps_indented(value: &Value, ensure_ascii: bool, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_value(&mut out, value, ensure_ascii, indent, 0);
    if !ensure_ascii {
        out = out
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029");
    }
    out
}

fn write_value(out: &mut String, value: &Value, ascii: bool, indent: Option<usize>, level: usize) {
    // Python's `_iterencode_list`/`_iterencode_dict`: a newline and the
    // indentation before each item and before the closing bracket.
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(s) => out.push_str(s),
        Value::Float(f) if f.is_nan() => out.push_str("NaN"),
        Value::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Value::Float(f) => out.push_str(&float_repr(*f)),
        Value::Str(s) => write_str(out, &s.text, ascii),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_value(out, v, ascii, indent, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(obj) if obj.0.is_empty() => out.push_str("{}"),
        Value::Object(obj) => {
            out.push('{');
            for (i, (k, v)) in obj.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_str(out, k, ascii);
                out.push_str(if indent.is_some() { ": " } else { ":" });
                write_value(out, v, ascii, indent, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        loads(s, true).unwrap_err()
    }

    #[test]
    fn python_error_messages() {
        assert_eq!(err(""), "Expecting value: line 1 column 1 (char 0)");
        assert_eq!(err("  "), "Expecting value: line 1 column 3 (char 2)");
        assert_eq!(
            err("{"),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(
            err("{'a': 1}"),
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        );
        assert_eq!(
            err("{\"a\" 1}"),
            "Expecting ':' delimiter: line 1 column 6 (char 5)"
        );
        assert_eq!(
            err("{\"a\": 1"),
            "Expecting ',' delimiter: line 1 column 8 (char 7)"
        );
        assert_eq!(err("{\"a\":}"), "Expecting value: line 1 column 6 (char 5)");
        assert_eq!(
            err("[1,2"),
            "Expecting ',' delimiter: line 1 column 5 (char 4)"
        );
        assert_eq!(err("["), "Expecting value: line 1 column 2 (char 1)");
        assert_eq!(err("{} x"), "Extra data: line 1 column 4 (char 3)");
        assert_eq!(
            err("\"abc"),
            "Unterminated string starting at: line 1 column 1 (char 0)"
        );
        assert_eq!(
            err("\"a\\x\""),
            "Invalid \\escape: line 1 column 3 (char 2)"
        );
        assert_eq!(
            err("\"a\nb\""),
            "Invalid control character at: line 1 column 3 (char 2)"
        );
        assert_eq!(
            err("{\n\"a\":\n}"),
            "Expecting value: line 3 column 1 (char 7)"
        );
        assert_eq!(
            err("NaN"),
            "Out of range float values are not JSON compliant: 'NaN'"
        );
        assert_eq!(err("tru"), "Expecting value: line 1 column 1 (char 0)");
        // Python 3.11's messages (see TRAILING_COMMA_MESSAGES).
        assert_eq!(
            err("{\"a\":1,}"),
            "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)"
        );
        assert_eq!(err("[1, ]"), "Expecting value: line 1 column 5 (char 4)");
        assert_eq!(
            err("\u{feff}{}"),
            "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"
        );
    }

    #[test]
    fn values_and_dumps() {
        let v = loads(
            "{\"b\": 1, \"a\": [1.5, 1e16, -0, \"é\\ud800\"], \"b\": 2}",
            true,
        )
        .unwrap();
        assert_eq!(
            dumps(&v, false),
            "{\"b\":2,\"a\":[1.5,1e+16,0,\"é\u{fffd}\"]}"
        );
        assert_eq!(dumps(&Value::str("é"), true), "\"\\u00e9\"");
        let v = loads(r#"{"a":[1,{}],"b":{},"c":[]}"#, true).unwrap();
        assert_eq!(
            dumps_indented(&v, false, Some(4)),
            "{\n    \"a\": [\n        1,\n        {}\n    ],\n    \"b\": {},\n    \"c\": []\n}"
        );
        let v = loads(r#"{"a":[1,{"x":2}]}"#, true).unwrap();
        assert_eq!(
            dumps_indented(&v, false, Some(0)),
            "{\n\"a\": [\n1,\n{\n\"x\": 2\n}\n]\n}"
        );
        assert_eq!(float_repr(100000.0), "100000.0");
        assert_eq!(float_repr(1e-5), "1e-05");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(Value::str(" 12 ").to_int(), Some(12));
        assert_eq!(Value::str("1_0").to_int(), Some(10));
        assert_eq!(Value::str("x").to_int(), None);
    }
}

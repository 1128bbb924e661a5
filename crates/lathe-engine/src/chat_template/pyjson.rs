//! `tojson` as HF's chat-template environment defines it: Python's `json.dumps` with
//! `ensure_ascii=False`.
//!
//! minijinja's built-in `tojson` writes compact JSON and HTML-escapes `<`, `>`, `&`, `'`.
//! Models were trained on Python's spelling (`{"a": 1, "b": [1, 2]}`), and tool definitions
//! are rendered with it into every prompt, so we reproduce `json.dumps` byte for byte:
//! separators `", "`/`": "` (`","`/`": "` with `indent`), keys in insertion order unless
//! `sort_keys`, non-ASCII kept unless `ensure_ascii`.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind};

struct Style {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

/// The `tojson` filter: `x | tojson(indent=2, sort_keys=false, ensure_ascii=false)`.
pub(crate) fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match (v.as_i64(), v.as_str()) {
            (Some(n), _) => Some(" ".repeat(n.max(0) as usize)),
            (None, Some(s)) => Some(s.to_string()),
            _ => return Err(invalid("tojson: indent must be an int or a string")),
        },
    };
    let (default_item, default_key) = match indent {
        Some(_) => (",", ": "),
        None => (", ", ": "),
    };
    let (item_sep, key_sep) = match kwargs.get::<Option<Vec<String>>>("separators")? {
        Some(seps) if seps.len() == 2 => (seps[0].clone(), seps[1].clone()),
        Some(_) => return Err(invalid("tojson: separators must be a pair")),
        None => (default_item.to_string(), default_key.to_string()),
    };
    let style = Style {
        indent,
        item_sep,
        key_sep,
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_value(value, &style, 0, &mut out)?;
    Ok(Value::from(out))
}

fn write_value(v: &Value, st: &Style, depth: usize, out: &mut String) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number(v)?),
        ValueKind::String => write_str(v.as_str().unwrap_or_default(), st, out),
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if st.sort_keys {
                keys.sort();
            }
            let items = keys
                .into_iter()
                .map(|k| v.get_item(&k).map(|val| (k, val)))
                .collect::<Result<Vec<_>, _>>()?;
            write_container(('{', '}'), &items, st, depth, out, |(k, val), out| {
                // JSON keys are strings; Python stringifies numbers and booleans.
                let key = k
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| k.to_string());
                write_str(&key, st, out);
                out.push_str(&st.key_sep);
                write_value(val, st, depth + 1, out)
            })?;
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            write_container(('[', ']'), &items, st, depth, out, |item, out| {
                write_value(item, st, depth + 1, out)
            })?;
        }
        other => return Err(invalid(&format!("tojson: cannot serialize a {other}"))),
    }
    Ok(())
}

fn write_container<T>(
    (open, close): (char, char),
    items: &[T],
    st: &Style,
    depth: usize,
    out: &mut String,
    mut write_item: impl FnMut(&T, &mut String) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&st.item_sep);
        }
        newline(st, depth + 1, out);
        write_item(item, out)?;
    }
    newline(st, depth, out);
    out.push(close);
    Ok(())
}

fn newline(st: &Style, depth: usize, out: &mut String) {
    if let Some(indent) = &st.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

/// Integers as integers, floats the way Python prints them (`1.0`, not `1`).
fn number(v: &Value) -> Result<String, Error> {
    if v.is_integer() {
        // minijinja's Display of an integer is its decimal digits.
        return Ok(v.to_string());
    }
    let f = f64::try_from(v.clone()).map_err(|_| invalid("tojson: bad number"))?;
    Ok(if !f.is_finite() {
        // Python writes these bare (not valid JSON, but that is what json.dumps does).
        let s = if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        s.to_string()
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        serde_json::to_string(&f).map_err(|e| invalid(&e.to_string()))?
    })
}

fn write_str(s: &str, st: &Style, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (st.ensure_ascii && !c.is_ascii()) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.to_string())
}

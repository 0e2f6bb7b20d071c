//! Reading a TOML document into typed values while collecting every error with the file, the
//! key path and the line: unknown keys, wrong types and out-of-range values are all reported,
//! not just the first.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (Some(l), false) => write!(f, "{}:{}: {}: {}", self.file, l, self.key, self.reason),
            (Some(l), true) => write!(f, "{}:{}: {}", self.file, l, self.reason),
            (None, false) => write!(f, "{}: {}: {}", self.file, self.key, self.reason),
            (None, true) => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// Shared state of one read: the text (for line numbers) and the errors found so far.
pub struct Doc<'t> {
    pub file: String,
    text: &'t str,
    pub errors: Vec<ConfigError>,
}

impl<'t> Doc<'t> {
    pub fn new(file: &str, text: &'t str) -> Self {
        Doc { file: file.to_string(), text, errors: Vec::new() }
    }

    pub fn line_of(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())].bytes().filter(|&b| b == b'\n').count() + 1
    }

    pub fn error(&mut self, span: Option<&Range<usize>>, key: &str, reason: impl Into<String>) {
        let line = span.map(|s| self.line_of(s));
        self.errors.push(ConfigError { file: self.file.clone(), line, key: key.to_string(), reason: reason.into() });
    }
}

/// A table being read: every key taken is remembered; `finish` reports the others as unknown.
pub struct Tbl<'a, 'i> {
    table: &'a DeTable<'i>,
    pub path: String,
    span: Range<usize>,
    used: HashSet<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn int_value(v: &DeValue<'_>) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
}

impl<'a, 'i> Tbl<'a, 'i> {
    pub fn root(table: &'a Spanned<DeTable<'i>>) -> Self {
        Tbl { table: table.get_ref(), path: String::new(), span: table.span(), used: HashSet::new() }
    }

    fn get(&mut self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.used.insert(key.to_string());
        self.table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v)
    }

    /// A key that is no longer a setting: an error saying why, if the file has it.
    pub fn removed(&mut self, doc: &mut Doc<'_>, key: &str, why: &str) {
        if let Some(v) = self.get(key) {
            doc.error(Some(&v.span()), &join(&self.path, key), why.to_string());
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.iter().any(|(k, _)| k.get_ref().as_ref() == key)
    }

    pub fn span(&self) -> &Range<usize> {
        &self.span
    }

    fn wrong(&self, doc: &mut Doc<'_>, key: &str, v: &Spanned<DeValue<'_>>, want: &str) {
        doc.error(
            Some(&v.span()),
            &join(&self.path, key),
            format!("expected {want}, found {}", type_name(v.get_ref())),
        );
    }

    pub fn opt_str(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<String> {
        let v = self.get(key)?;
        match v.get_ref().as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(doc, key, v, "a string");
                None
            }
        }
    }

    pub fn str(&mut self, doc: &mut Doc<'_>, key: &str, default: &str) -> String {
        self.opt_str(doc, key).unwrap_or_else(|| default.to_string())
    }

    /// A string that must be present.
    pub fn req_str(&mut self, doc: &mut Doc<'_>, key: &str) -> String {
        if !self.has(key) {
            doc.error(Some(&self.span), &join(&self.path, key), "is required");
        }
        self.opt_str(doc, key).unwrap_or_default()
    }

    pub fn bool(&mut self, doc: &mut Doc<'_>, key: &str, default: bool) -> bool {
        let Some(v) = self.get(key) else {
            return default;
        };
        match v.get_ref().as_bool() {
            Some(b) => b,
            None => {
                self.wrong(doc, key, v, "a boolean");
                default
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, doc: &mut Doc<'_>, key: &str, default: i64, min: i64, max: i64) -> i64 {
        let Some(v) = self.get(key) else {
            return default;
        };
        match int_value(v.get_ref()) {
            Some(i) if (min..=max).contains(&i) => i,
            Some(i) => {
                doc.error(Some(&v.span()), &join(&self.path, key), format!("{i} is out of range ({min}..={max})"));
                default
            }
            None => {
                self.wrong(doc, key, v, "an integer");
                default
            }
        }
    }

    /// A duration: an integer of seconds, or a string such as "90s", "250ms", "5m", "1h", "2d".
    pub fn duration(
        &mut self,
        doc: &mut Doc<'_>,
        key: &str,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(v) = self.get(key) else {
            return default;
        };
        let parsed = match v.get_ref() {
            DeValue::Integer(_) => int_value(v.get_ref()).filter(|i| *i >= 0).map(|i| Duration::from_secs(i as u64)),
            DeValue::String(s) => parse_duration(s),
            _ => {
                self.wrong(doc, key, v, "a duration (seconds, or a string like \"90s\" or \"5ms\")");
                return default;
            }
        };
        match parsed {
            Some(d) if d >= min && d <= max => d,
            Some(d) => {
                doc.error(
                    Some(&v.span()),
                    &join(&self.path, key),
                    format!("{d:?} is out of range ({min:?}..={max:?})"),
                );
                default
            }
            None => {
                doc.error(
                    Some(&v.span()),
                    &join(&self.path, key),
                    "is not a duration (use seconds, or \"90s\", \"250ms\", \"5m\", \"1h\", \"2d\")",
                );
                default
            }
        }
    }

    /// A size in bytes: an integer, or a string such as "64KiB", "1MiB", "512B".
    pub fn size(&mut self, doc: &mut Doc<'_>, key: &str, default: usize, min: usize, max: usize) -> usize {
        let Some(v) = self.get(key) else {
            return default;
        };
        let parsed = match v.get_ref() {
            DeValue::Integer(_) => int_value(v.get_ref()).filter(|i| *i >= 0).map(|i| i as usize),
            DeValue::String(s) => parse_size(s),
            _ => {
                self.wrong(doc, key, v, "a size (bytes, or a string like \"64KiB\")");
                return default;
            }
        };
        match parsed {
            Some(n) if n >= min && n <= max => n,
            Some(n) => {
                doc.error(
                    Some(&v.span()),
                    &join(&self.path, key),
                    format!("{n} bytes is out of range ({min}..={max})"),
                );
                default
            }
            None => {
                doc.error(
                    Some(&v.span()),
                    &join(&self.path, key),
                    "is not a size (use bytes, or \"512B\", \"64KiB\", \"1MiB\")",
                );
                default
            }
        }
    }

    pub fn str_list(&mut self, doc: &mut Doc<'_>, key: &str, default: &[&str]) -> Vec<String> {
        let Some(v) = self.get(key) else {
            return default.iter().map(|s| s.to_string()).collect();
        };
        let Some(arr) = v.get_ref().as_array() else {
            self.wrong(doc, key, v, "an array of strings");
            return default.iter().map(|s| s.to_string()).collect();
        };
        let mut out = Vec::new();
        for (i, item) in arr.iter().enumerate() {
            match item.get_ref().as_str() {
                Some(s) => out.push(s.to_string()),
                None => doc.error(
                    Some(&item.span()),
                    &format!("{}[{i}]", join(&self.path, key)),
                    format!("expected a string, found {}", type_name(item.get_ref())),
                ),
            }
        }
        out
    }

    /// The span of a key's value, for errors found after reading (cross-field checks).
    pub fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v.span())
    }

    /// A sub-table; `None` when absent (or not a table, which is reported).
    pub fn table(&mut self, doc: &mut Doc<'_>, key: &str) -> Option<Tbl<'a, 'i>> {
        let v = self.get(key)?;
        match v.get_ref().as_table() {
            Some(t) => Some(Tbl { table: t, path: join(&self.path, key), span: v.span(), used: HashSet::new() }),
            None => {
                self.wrong(doc, key, v, "a table");
                None
            }
        }
    }

    /// An optional sub-table: an absent one (or one that is not a table, which is reported)
    /// reads as empty, so every getter gives its default. A default is then written once, in
    /// the getter call, whether the section is there or not.
    pub fn section(&mut self, doc: &mut Doc<'_>, key: &str) -> Tbl<'a, 'i> {
        let span = self.span.clone();
        let path = join(&self.path, key);
        self.table(doc, key).unwrap_or_else(|| Tbl::empty(path, span))
    }

    /// A table with no keys (every getter gives its default), named `path` in errors.
    pub fn empty(path: String, span: Range<usize>) -> Tbl<'a, 'i> {
        static EMPTY: OnceLock<DeTable<'static>> = OnceLock::new();
        Tbl { table: EMPTY.get_or_init(DeTable::new), path, span, used: HashSet::new() }
    }

    /// An array of tables (`[[key]]`).
    pub fn tables(&mut self, doc: &mut Doc<'_>, key: &str) -> Vec<Tbl<'a, 'i>> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Some(arr) = v.get_ref().as_array() else {
            self.wrong(doc, key, v, "an array of tables ([[".to_string().as_str());
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in arr.iter().enumerate() {
            match item.get_ref().as_table() {
                Some(t) => out.push(Tbl {
                    table: t,
                    path: format!("{}[{i}]", join(&self.path, key)),
                    span: item.span(),
                    used: HashSet::new(),
                }),
                None => doc.error(Some(&item.span()), &format!("{}[{i}]", join(&self.path, key)), "expected a table"),
            }
        }
        out
    }

    /// Reports every key of this table that was never read.
    pub fn finish(self, doc: &mut Doc<'_>) {
        for (k, _) in self.table.iter() {
            let name = k.get_ref().as_ref();
            if !self.used.contains(name) {
                doc.error(Some(&k.span()), &join(&self.path, name), "unknown key");
            }
        }
    }
}

pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let mul = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" | "KB" | "kB" => 1024,
        "MiB" | "M" | "MB" => 1024 * 1024,
        "GiB" | "G" | "GB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_size("64KiB"), Some(65536));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1TiB"), None);
    }
}

//! A small parser for oslo.config-style INI files (`kuryr.conf`).
//!
//! oslo's dialect is simple: `[section]` headers, `key = value` (or `key: value`)
//! lines, `#`/`;` comment lines, and continuation lines that start with
//! white space. Keys keep their case; a repeated key's last value wins, as in
//! oslo for single-valued options. We parse it ourselves so the semantics are
//! exactly these and nothing more (no escapes, no interpolation).

use std::collections::BTreeMap;

/// Sections in file order, each a map of key to value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IniFile {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

/// A syntax error, with its 1-based line number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct IniError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl IniFile {
    /// Parses oslo.config INI text: sections, `key = value`, comments, continuation lines.
    pub fn parse(text: &str) -> Result<Self, IniError> {
        let mut file = IniFile::default();
        let mut section: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                if let (Some(sec), Some(key)) = (&section, &last_key) {
                    let entry = file
                        .sections
                        .entry(sec.clone())
                        .or_default()
                        .entry(key.clone())
                        .or_default();
                    entry.push('\n');
                    entry.push_str(trimmed);
                    continue;
                }
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let name = rest.strip_suffix(']').ok_or_else(|| IniError {
                    line: line_no,
                    message: format!("unterminated section header {trimmed:?}"),
                })?;
                let name = name.trim();
                if name.is_empty() {
                    return Err(IniError { line: line_no, message: "empty section name".into() });
                }
                file.sections.entry(name.to_string()).or_default();
                section = Some(name.to_string());
                last_key = None;
                continue;
            }
            let Some(sec) = &section else {
                return Err(IniError {
                    line: line_no,
                    message: "option outside of any [section]".into(),
                });
            };
            let split = trimmed.find(['=', ':']).ok_or_else(|| IniError {
                line: line_no,
                message: format!("expected 'key = value', got {trimmed:?}"),
            })?;
            let key = trimmed[..split].trim();
            if key.is_empty() {
                return Err(IniError { line: line_no, message: "empty option name".into() });
            }
            let value = trimmed[split + 1..].trim();
            file.sections
                .entry(sec.clone())
                .or_default()
                .insert(key.to_string(), value.to_string());
            last_key = Some(key.to_string());
        }
        Ok(file)
    }

    /// The options of one section (empty when the section is absent).
    pub fn section(&self, name: &str) -> BTreeMap<String, String> {
        self.sections.get(name).cloned().unwrap_or_default()
    }

    /// The sections, in order.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.keys().map(String::as_str)
    }
}

/// oslo's boolean spellings.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" | "t" => Some(true),
        "false" | "0" | "no" | "off" | "n" | "f" => Some(false),
        _ => None,
    }
}

/// oslo's ListOpt: comma separated, blanks dropped.
pub fn parse_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_comments_and_continuations() {
        let text = "# comment\n[DEFAULT]\nbindir = /usr/libexec/kuryr\n; other\n[neutron]\nauth_type=password\nauth_url: http://k:5000/v3\nlong = a,\n  b\n";
        let ini = IniFile::parse(text).expect("valid");
        assert_eq!(ini.section("DEFAULT")["bindir"], "/usr/libexec/kuryr");
        assert_eq!(ini.section("neutron")["auth_type"], "password");
        assert_eq!(ini.section("neutron")["auth_url"], "http://k:5000/v3");
        assert_eq!(ini.section("neutron")["long"], "a,\nb");
        assert!(ini.section("binding").is_empty());
    }

    #[test]
    fn rejects_option_outside_section() {
        let err = IniFile::parse("a = b\n").expect_err("must fail");
        assert_eq!(err.line, 1);
    }

    #[test]
    fn rejects_bad_header_and_bare_word() {
        assert_eq!(IniFile::parse("[DEFAULT\n").expect_err("bad").line, 1);
        assert_eq!(IniFile::parse("[x]\nfoo\n").expect_err("bad").line, 2);
    }

    #[test]
    fn bools_and_lists() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_list(" a, b ,,c"), vec!["a", "b", "c"]);
    }
}

//! An incremental scanner for one JSON tool-call object, `{"name": "f", "arguments": {...}}`,
//! shared by the JSON-based formats. It emits the call's start as soon as its name is complete
//! and then the arguments text fragment by fragment as it arrives, so that streaming clients
//! see the arguments being written. It also scans a bare arguments value whose name is already
//! known (Mistral's `name[ARGS]{...}`).

use super::ParseEvent;
use crate::protocol::random_id;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Start,
    ExpectKey,
    InKey,
    ExpectColon,
    ExpectValue,
    InValue,
    AfterValue,
    Done,
    Failed,
}

/// Scanner state of one call.
#[derive(Debug)]
pub struct CallScanner {
    index: usize,
    arg_keys: &'static [&'static str],
    st: St,
    /// Everything consumed, for the fallback to plain content.
    raw: String,
    key: String,
    key_esc: bool,
    cur_key: String,
    value: String,
    v_depth: usize,
    v_in_str: bool,
    v_esc: bool,
    name: Option<String>,
    args: Option<String>,
    args_done: bool,
    args_sent: usize,
    started: bool,
    /// Scans only an arguments value (the name came before, outside the JSON).
    bare_args: bool,
}

/// Where the scanner stands after `push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStatus {
    NeedMore,
    Done,
    /// Not a call object; nothing was emitted if `started()` is false.
    Failed,
}

impl CallScanner {
    /// A scanner for `{"name": ..., <one of arg_keys>: ...}`.
    pub fn new(index: usize, arg_keys: &'static [&'static str]) -> Self {
        Self {
            index,
            arg_keys,
            st: St::Start,
            raw: String::new(),
            key: String::new(),
            key_esc: false,
            cur_key: String::new(),
            value: String::new(),
            v_depth: 0,
            v_in_str: false,
            v_esc: false,
            name: None,
            args: None,
            args_done: false,
            args_sent: 0,
            started: false,
            bare_args: false,
        }
    }

    /// A scanner for an arguments value of a call whose name is known.
    pub fn for_args(index: usize, name: String) -> Self {
        let mut s = Self::new(index, &["arguments"]);
        s.name = Some(name);
        s.cur_key = "arguments".into();
        s.st = St::ExpectValue;
        s.bare_args = true;
        s
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Text consumed so far (what to show as content if this was not a call after all).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Consumes a prefix of `text`; returns the events, the bytes consumed and the status.
    pub fn push(&mut self, text: &str) -> (Vec<ParseEvent>, usize, ScanStatus) {
        let mut consumed = text.len();
        for (i, c) in text.char_indices() {
            if matches!(self.st, St::Done | St::Failed) {
                consumed = i;
                break;
            }
            self.step(c);
            if self.st == St::Failed {
                consumed = i;
                break;
            }
            self.raw.push(c);
        }
        let events = self.emit();
        let status = match self.st {
            St::Done => ScanStatus::Done,
            St::Failed => ScanStatus::Failed,
            _ => ScanStatus::NeedMore,
        };
        (events, consumed, status)
    }

    /// The text ended: closes a started call (arguments `{}` if none came).
    pub fn finish(&mut self) -> Vec<ParseEvent> {
        if self.st == St::InValue
            && self.is_arg_key()
            && self.v_depth == 0
            && !self.value.is_empty()
        {
            self.complete_value();
        }
        if self.args.is_none() {
            self.args = Some("{}".into());
            self.args_done = true;
        }
        self.emit()
    }

    fn is_arg_key(&self) -> bool {
        self.arg_keys.contains(&self.cur_key.as_str())
    }

    fn step(&mut self, c: char) {
        match self.st {
            St::Start => match c {
                c if c.is_whitespace() => {}
                '{' => self.st = St::ExpectKey,
                _ => self.st = St::Failed,
            },
            St::ExpectKey => match c {
                c if c.is_whitespace() => {}
                '"' => {
                    self.key.clear();
                    self.st = St::InKey;
                }
                '}' => self.st = St::Done,
                _ => self.st = St::Failed,
            },
            St::InKey => {
                if self.key_esc {
                    self.key_esc = false;
                    self.key.push(c);
                } else if c == '\\' {
                    self.key_esc = true;
                    self.key.push(c);
                } else if c == '"' {
                    self.cur_key =
                        serde_json::from_str(&format!("\"{}\"", self.key)).unwrap_or_default();
                    self.st = St::ExpectColon;
                } else {
                    self.key.push(c);
                }
            }
            St::ExpectColon => match c {
                c if c.is_whitespace() => {}
                ':' => self.st = St::ExpectValue,
                _ => self.st = St::Failed,
            },
            St::ExpectValue => {
                if !c.is_whitespace() {
                    self.value.clear();
                    self.v_depth = 0;
                    self.v_in_str = false;
                    self.v_esc = false;
                    self.st = St::InValue;
                    self.value_char(c);
                }
            }
            St::InValue => self.value_char(c),
            St::AfterValue => match c {
                c if c.is_whitespace() => {}
                ',' => self.st = St::ExpectKey,
                '}' => self.st = St::Done,
                _ => self.st = St::Failed,
            },
            St::Done | St::Failed => {}
        }
    }

    fn value_char(&mut self, c: char) {
        let is_scalar = !matches!(self.value.chars().next().unwrap_or(c), '"' | '{' | '[');
        if is_scalar && (c == ',' || c == '}' || c.is_whitespace()) && !self.value.is_empty() {
            self.complete_value();
            self.step(c);
            return;
        }
        self.value.push(c);
        if self.is_arg_key() {
            self.args = Some(self.value.clone());
        }
        if self.v_in_str {
            if self.v_esc {
                self.v_esc = false;
            } else if c == '\\' {
                self.v_esc = true;
            } else if c == '"' {
                self.v_in_str = false;
                if self.v_depth == 0 {
                    self.complete_value();
                }
            }
            return;
        }
        match c {
            '"' => self.v_in_str = true,
            '{' | '[' => self.v_depth += 1,
            '}' | ']' => {
                self.v_depth = self.v_depth.saturating_sub(1);
                if self.v_depth == 0 {
                    self.complete_value();
                }
            }
            _ => {}
        }
    }

    fn complete_value(&mut self) {
        if self.cur_key == "name" && !self.bare_args {
            self.name = serde_json::from_str::<String>(&self.value).ok();
        } else if self.is_arg_key() {
            self.args = Some(self.value.clone());
            self.args_done = true;
        }
        self.st = if self.bare_args {
            St::Done
        } else {
            St::AfterValue
        };
    }

    /// Events for what became known since the last call.
    fn emit(&mut self) -> Vec<ParseEvent> {
        let mut ev = Vec::new();
        if !self.started {
            let Some(name) = self.name.clone() else {
                return ev;
            };
            self.started = true;
            ev.push(ParseEvent::CallStart {
                index: self.index,
                id: random_id("call_", 24),
                name,
            });
        }
        if self.st == St::Done && self.args.is_none() {
            self.args = Some("{}".into());
            self.args_done = true;
        }
        let Some(args) = &self.args else { return ev };
        let is_string = args.starts_with('"');
        if is_string {
            // Arguments written as a JSON string holding JSON: send the decoded text at the end.
            if self.args_done && self.args_sent == 0 {
                let decoded = serde_json::from_str::<String>(args).unwrap_or_default();
                self.args_sent = args.len();
                ev.push(ParseEvent::CallArgs {
                    index: self.index,
                    fragment: decoded,
                });
            }
        } else if args.len() > self.args_sent {
            let fragment = args[self.args_sent..].to_string();
            self.args_sent = args.len();
            ev.push(ParseEvent::CallArgs {
                index: self.index,
                fragment,
            });
        }
        ev
    }
}

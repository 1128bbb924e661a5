//! Generates real-looking source files from the templates in `data/code/`.
//!
//! Each template is a function, type or impl block with placeholders (`{Type}`, `{fn}`,
//! `{field}`, `{field2}`, `{field3}`, `{num}`, `{word}`); every instance gets fresh names drawn
//! from [`super::words`]. Only those exact placeholders are replaced, so the code's own braces
//! survive. A file is an import header plus instances until it reaches the token target.

use rand::rngs::StdRng;
use rand::Rng;

use super::words::{capitalize, pick, NOUNS, VERBS};
use crate::tokens::{count_or, estimate_tokens, TokenCounter};

const PYTHON: &str = include_str!("../../data/code/python.txt");
const RUST: &str = include_str!("../../data/code/rust.txt");
const TYPESCRIPT: &str = include_str!("../../data/code/typescript.txt");

/// A language with templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Rust,
    TypeScript,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Python, Lang::Rust, Lang::TypeScript];

    /// Code-fence tag and file extension.
    pub fn fence(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
            Lang::TypeScript => "typescript",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Lang::Python => "py",
            Lang::Rust => "rs",
            Lang::TypeScript => "ts",
        }
    }

    fn header(self) -> &'static str {
        match self {
            Lang::Python => "from __future__ import annotations\n\nimport asyncio\nimport logging\nfrom collections import defaultdict\nfrom dataclasses import dataclass\nfrom pathlib import Path\nfrom typing import Iterable, Optional\n\nimport aiohttp\n\nlogger = logging.getLogger(__name__)\n",
            Lang::Rust => "use std::collections::{BTreeMap, HashMap, VecDeque};\nuse std::time::Duration;\n\nuse bytes::Bytes;\nuse reqwest::StatusCode;\n",
            Lang::TypeScript => "import { EventEmitter } from \"node:events\";\nimport { readFile } from \"node:fs/promises\";\n",
        }
    }

    fn templates(self) -> impl Iterator<Item = &'static str> {
        let src = match self {
            Lang::Python => PYTHON,
            Lang::Rust => RUST,
            Lang::TypeScript => TYPESCRIPT,
        };
        src.split("@@@\n")
            .map(str::trim_end)
            .filter(|t| !t.is_empty())
    }

    fn fn_name(self, verb: &str, noun: &str) -> String {
        match self {
            Lang::TypeScript => format!("{verb}{}", capitalize(noun)),
            _ => format!("{verb}_{noun}"),
        }
    }
}

/// A generated source file and the function names defined in it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub lang: Lang,
    pub path: String,
    pub text: String,
    pub functions: Vec<String>,
    pub tokens: usize,
}

/// One template instance with fresh names; returns the text and its function name.
fn instantiate(lang: Lang, template: &str, rng: &mut StdRng) -> (String, String) {
    let fields = distinct_nouns(3, rng);
    let fname = lang.fn_name(pick(VERBS, rng), pick(NOUNS, rng));
    let type_name = format!("{}{}", capitalize(pick(NOUNS, rng)), capitalize(&fields[0]));
    let num = rng.random_range(2..64).to_string();
    let text = template
        .replace("{Type}", &type_name)
        .replace("{fn}", &fname)
        .replace("{field}", &fields[0])
        .replace("{field2}", &fields[1])
        .replace("{field3}", &fields[2])
        .replace("{num}", &num)
        .replace("{word}", pick(VERBS, rng));
    (text, fname)
}

fn distinct_nouns(n: usize, rng: &mut StdRng) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(n);
    while out.len() < n {
        let w = pick(NOUNS, rng);
        if !out.iter().any(|o| o == w) {
            out.push(w.to_string());
        }
    }
    out
}

/// A file in `lang` of at least `target_tokens` tokens (by `counter`, else 4 chars/token).
pub fn generate_file(
    lang: Lang,
    target_tokens: usize,
    counter: &dyn TokenCounter,
    rng: &mut StdRng,
) -> SourceFile {
    let templates: Vec<&str> = lang.templates().collect();
    let mut text = lang.header().to_string();
    let mut functions = Vec::new();
    let mut approx = estimate_tokens(&text);
    while approx < target_tokens {
        let t = templates[rng.random_range(0..templates.len())];
        let (body, f) = instantiate(lang, t, rng);
        text.push('\n');
        text.push_str(&body);
        text.push('\n');
        approx = estimate_tokens(&text);
        functions.push(f);
    }
    let tokens = count_or(counter, &text, approx);
    let path = format!("src/{}.{}", pick(NOUNS, rng), lang.extension());
    SourceFile {
        lang,
        path,
        text,
        functions,
        tokens,
    }
}

/// A random language.
pub fn random_lang(rng: &mut StdRng) -> Lang {
    Lang::ALL[rng.random_range(0..Lang::ALL.len())]
}

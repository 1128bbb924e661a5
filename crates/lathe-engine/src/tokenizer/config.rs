//! Building a [`TextTokenizer`] from HF files: tokenizer.json and tokenizer_config.json.
//!
//! tokenizer_config.json holds what tokenizer.json does not: the bos/eos token *names*, the
//! chat template, add_bos_token. Decisions:
//! - `bos_token`/`eos_token` may be a string or an AddedToken object (`{"content": ...}`).
//! - `chat_template` may be a string or a list of `{name, template}`; we take `"default"`
//!   (else the first). Newer repos keep it in `chat_template.jinja` beside the config; that
//!   file is used when the config has none.
//! - `add_bos` is *measured*, not read: we encode a probe with and without special tokens and
//!   look for a leading extra token. That is what `encode(.., true)` really does, whatever
//!   the config claims; a config without `bos_token` also gets its BOS from the probe.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use super::{TextTokenizer, TokenizerMeta};

pub(crate) fn build(tokenizer_json: &Path, config_json: Option<&Path>) -> Result<TextTokenizer> {
    let inner = tokenizers::Tokenizer::from_file(tokenizer_json)
        .map_err(|e| anyhow!("loading {}: {e}", tokenizer_json.display()))?;
    let config = match config_json {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => Value::Null,
    };
    let mut bos_token = token_field(&config, "bos_token");
    let eos_token = token_field(&config, "eos_token");
    let mut chat_template = template_field(&config);
    if chat_template.is_none() {
        if let Some(dir) = config_json.and_then(Path::parent) {
            chat_template = std::fs::read_to_string(dir.join("chat_template.jinja")).ok();
        }
    }

    let leading = probe_leading_special(&inner)?;
    if bos_token.is_none() {
        bos_token = leading.and_then(|id| inner.id_to_token(id));
    }
    let bos_id = bos_token.as_deref().and_then(|t| inner.token_to_id(t));
    let add_bos = leading.is_some() && leading == bos_id;

    Ok(TextTokenizer::assemble(
        inner,
        TokenizerMeta {
            bos_token,
            eos_token,
            extra_eos_ids: Vec::new(),
            chat_template,
            add_bos,
        },
    ))
}

/// The token the post-processor puts in front of a text, if it puts one there.
fn probe_leading_special(tk: &tokenizers::Tokenizer) -> Result<Option<u32>> {
    let probe = "a";
    let plain = tk.encode_fast(probe, false).map_err(|e| anyhow!("{e}"))?;
    let with = tk.encode_fast(probe, true).map_err(|e| anyhow!("{e}"))?;
    let (plain, with) = (plain.get_ids(), with.get_ids());
    Ok(match with.first() {
        Some(&first) if with.len() > plain.len() && plain.first() != Some(&first) => Some(first),
        _ => None,
    })
}

/// `"<s>"` or `{"content": "<s>", ...}`; null and absent are None.
fn token_field(config: &Value, key: &str) -> Option<String> {
    match config.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn template_field(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => {
            let named = |name: &str| {
                list.iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
            };
            named("default")
                .or_else(|| list.first())
                .and_then(|t| t.get("template")?.as_str().map(str::to_owned))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_fields_accept_strings_and_objects() {
        let c = json!({"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false}});
        assert_eq!(token_field(&c, "bos_token").as_deref(), Some("<s>"));
        assert_eq!(token_field(&c, "eos_token").as_deref(), Some("</s>"));
        assert_eq!(token_field(&c, "pad_token"), None);
    }

    #[test]
    fn template_list_prefers_default() {
        let c = json!({"chat_template": [
            {"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D"}
        ]});
        assert_eq!(template_field(&c).as_deref(), Some("D"));
    }
}

//! Building a [`TextTokenizer`] from GGUF metadata (`tokenizer.ggml.*`).
//!
//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`) and SentencePiece (`"llama"`, see
//! `spm.rs`) are built; any other model is a clear error. The result is an ordinary HF `tokenizers::Tokenizer`, so a model
//! loaded from GGUF and the same model loaded from tokenizer.json tokenize identically and the
//! rest of the engine never knows which one it got.
//!
//! Token types follow llama.cpp: 3 (control) becomes an added *special* token (parsed in text,
//! skipped by `skip_special_tokens`); 4 (user-defined) becomes an added *non-special* token —
//! llama.cpp also parses those in text and, like HF, always prints them when detokenizing.

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::processors::template::{SpecialToken, TemplateProcessing};
use tokenizers::{AddedToken, Tokenizer};

use super::{pretokenizer, spm, TextTokenizer, TokenizerMeta};

const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

pub(crate) fn build(content: &Content) -> Result<TextTokenizer> {
    let md = Meta(content);
    let model = md
        .str("tokenizer.ggml.model")
        .context("GGUF has no tokenizer.ggml.model")?;
    let tokens = md.strings("tokenizer.ggml.tokens")?;
    let types = md.ints("tokenizer.ggml.token_type").unwrap_or_default();
    let (mut tk, default_add_bos) = match model {
        "gpt2" => {
            // A GGUF without the key used llama.cpp's legacy default regex chain.
            let pre = md.str("tokenizer.ggml.pre").unwrap_or("default");
            (
                byte_level_bpe(&md, &tokens, pre)?,
                pretokenizer::default_add_bos(pre),
            )
        }
        "llama" => {
            let scores = md.floats("tokenizer.ggml.scores").unwrap_or_default();
            let space_prefix = md.bool("tokenizer.ggml.add_space_prefix").unwrap_or(true);
            // SentencePiece models add BOS unless the GGUF says otherwise (llama.cpp's default).
            (spm::tokenizer(&tokens, &scores, space_prefix)?, true)
        }
        other => bail!(
            "unsupported GGUF tokenizer model {other:?}: lathe builds \"gpt2\" (byte-level BPE) \
             and \"llama\" (SentencePiece); load the model's tokenizer.json instead"
        ),
    };
    add_typed_tokens(&mut tk, &tokens, &types);

    let token_at = |key: &str| {
        md.u32(key)
            .and_then(|id| tokens.get(id as usize).map(|t| (t.clone(), id)))
    };
    let bos = token_at("tokenizer.ggml.bos_token_id");
    let eos = token_at("tokenizer.ggml.eos_token_id");
    let add_bos = md
        .bool("tokenizer.ggml.add_bos_token")
        .unwrap_or(default_add_bos);
    let add_eos = md.bool("tokenizer.ggml.add_eos_token").unwrap_or(false);
    let add_bos = add_bos && bos.is_some();
    if let Some(pp) = post_processor(
        bos.as_ref().filter(|_| add_bos),
        eos.as_ref().filter(|_| add_eos),
    )? {
        tk.with_post_processor(Some(pp));
    }

    let extra_eos = ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
        .iter()
        .filter_map(|k| md.u32(k))
        .filter(|id| (*id as usize) < tokens.len())
        .collect();
    Ok(TextTokenizer::assemble(
        tk,
        TokenizerMeta {
            bos_token: bos.map(|(t, _)| t),
            eos_token: eos.map(|(t, _)| t),
            extra_eos_ids: extra_eos,
            chat_template: md.str("tokenizer.chat_template").map(str::to_owned),
            add_bos,
        },
    ))
}

/// A byte-level BPE over the GGUF vocabulary and merges with the named pre-tokenizer.
fn byte_level_bpe(md: &Meta, tokens: &[String], pre: &str) -> Result<Tokenizer> {
    let merges = md
        .strings("tokenizer.ggml.merges")?
        .iter()
        .map(|m| split_merge(m))
        .collect::<Result<Vec<_>>>()?;
    let spec = pretokenizer::for_name(pre)?;
    let mut vocab = Vocab::default();
    for (id, tok) in tokens.iter().enumerate() {
        // First occurrence wins when a vocab repeats a string (a few GGUFs do).
        vocab.entry(tok.clone()).or_insert(id as u32);
    }
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(spec.ignore_merges)
        .build()
        .map_err(|e| anyhow!("building BPE from GGUF vocab: {e}"))?;
    let mut tk = Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(spec.pre_tokenizer));
    tk.with_decoder(Some(ByteLevel::default()));
    Ok(tk)
}

/// Registers control and user-defined tokens as HF added tokens so they are matched in text
/// before pre-tokenization (the `parse_special = true` behaviour of llama.cpp).
fn add_typed_tokens(tk: &mut Tokenizer, tokens: &[String], types: &[i64]) {
    let mut special = Vec::new();
    let mut user = Vec::new();
    for (tok, ty) in tokens.iter().zip(types) {
        if tok.is_empty() {
            continue;
        }
        match *ty {
            TOKEN_TYPE_CONTROL => special.push(AddedToken::from(tok.clone(), true)),
            TOKEN_TYPE_USER_DEFINED => user.push(AddedToken::from(tok.clone(), false)),
            _ => {}
        }
    }
    tk.add_special_tokens(&special);
    tk.add_tokens(&user);
}

/// `BOS $A EOS` as an HF post-processor, so `encode(text, true)` (and anyone using
/// `inner()` directly) gets exactly the tokens llama.cpp would add.
fn post_processor(
    bos: Option<&(String, u32)>,
    eos: Option<&(String, u32)>,
) -> Result<Option<TemplateProcessing>> {
    if bos.is_none() && eos.is_none() {
        return Ok(None);
    }
    // Template pieces are aliases ("bos"/"eos"), so token text with ':' or ' ' cannot break
    // the template syntax.
    let mut single = Vec::new();
    let mut specials = Vec::new();
    for (alias, tok) in [("bos", bos), ("eos", eos)] {
        if let Some((text, id)) = tok {
            specials.push(
                SpecialToken::new(alias.to_string(), vec![*id], vec![text.clone()])
                    .map_err(|e| anyhow!("{e}"))?,
            );
        }
    }
    if bos.is_some() {
        single.push("bos");
    }
    single.push("$A");
    if eos.is_some() {
        single.push("eos");
    }
    let pp = TemplateProcessing::builder()
        .try_single(single)
        .map_err(|e| anyhow!("{e}"))?
        .special_tokens(specials)
        .build()
        .map_err(|e| anyhow!("building BOS/EOS post-processor: {e}"))?;
    Ok(Some(pp))
}

/// GGUF merges are "left right"; byte-level tokens never contain a literal space.
fn split_merge(m: &str) -> Result<(String, String)> {
    let (a, b) = m
        .split_once(' ')
        .with_context(|| format!("malformed GGUF merge {m:?}"))?;
    Ok((a.to_string(), b.to_string()))
}

/// Lenient typed access to GGUF metadata: converters disagree on integer widths.
struct Meta<'a>(&'a Content);

impl Meta<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.metadata.get(key)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.get(key)?.to_string().ok().map(String::as_str)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.to_bool().ok()
    }

    fn u32(&self, key: &str) -> Option<u32> {
        as_i64(self.get(key)?).and_then(|v| u32::try_from(v).ok())
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        let arr = self
            .get(key)
            .with_context(|| format!("GGUF has no {key}"))?
            .to_vec()
            .map_err(|e| anyhow!("{key}: {e}"))?;
        arr.iter()
            .map(|v| v.to_string().cloned().map_err(|e| anyhow!("{key}: {e}")))
            .collect()
    }

    fn floats(&self, key: &str) -> Option<Vec<f32>> {
        let arr = self.get(key)?.to_vec().ok()?;
        arr.iter().map(|v| v.to_f32().ok()).collect()
    }

    fn ints(&self, key: &str) -> Option<Vec<i64>> {
        let arr = self.get(key)?.to_vec().ok()?;
        arr.iter().map(as_i64).collect()
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}

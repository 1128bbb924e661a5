//! Typed access to `{arch}.*` GGUF metadata: absent keys are `None`, keys of the wrong type are
//! errors (never silently a default).

use anyhow::{bail, Context};
use candle_core::quantized::gguf_file::Value as GgufValue;

use crate::loader::gguf::GgufFile;

pub struct GgufMeta<'a> {
    pub g: &'a GgufFile,
    pub arch: String,
}

impl<'a> GgufMeta<'a> {
    pub fn new(g: &'a GgufFile) -> anyhow::Result<Self> {
        let arch = match g.metadata.get("general.architecture") {
            Some(v) => v
                .to_string()
                .context("GGUF general.architecture is not a string")?
                .clone(),
            None => "llama".into(),
        };
        Ok(Self { g, arch })
    }

    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    pub fn raw(&self, k: &str) -> Option<&'a GgufValue> {
        self.g.metadata.get(&self.key(k))
    }

    pub fn uint(&self, k: &str) -> anyhow::Result<Option<usize>> {
        self.raw(k)
            .map(|v| {
                let n = match *v {
                    GgufValue::U8(x) => Some(x as u64),
                    GgufValue::U16(x) => Some(x as u64),
                    GgufValue::U32(x) => Some(x as u64),
                    GgufValue::U64(x) => Some(x),
                    GgufValue::I8(x) => u64::try_from(x).ok(),
                    GgufValue::I16(x) => u64::try_from(x).ok(),
                    GgufValue::I32(x) => u64::try_from(x).ok(),
                    GgufValue::I64(x) => u64::try_from(x).ok(),
                    _ => None,
                };
                n.map(|n| n as usize).with_context(|| {
                    format!("GGUF: {} is {v:?}, not a non-negative integer", self.key(k))
                })
            })
            .transpose()
    }

    pub fn float(&self, k: &str) -> anyhow::Result<Option<f32>> {
        self.raw(k)
            .map(|v| match *v {
                GgufValue::F32(x) => Ok(x),
                GgufValue::F64(x) => Ok(x as f32),
                _ => self
                    .uint(k)?
                    .map(|n| n as f32)
                    .with_context(|| format!("GGUF: {} is {v:?}, not a number", self.key(k))),
            })
            .transpose()
    }

    pub fn string(&self, k: &str) -> anyhow::Result<Option<&'a str>> {
        self.raw(k)
            .map(|v| match v {
                GgufValue::String(s) => Ok(s.as_str()),
                _ => bail!("GGUF: {} is {v:?}, not a string", self.key(k)),
            })
            .transpose()
    }

    pub fn need(&self, k: &str) -> anyhow::Result<usize> {
        self.uint(k)?
            .with_context(|| format!("GGUF lacks {}", self.key(k)))
    }
}

//! lathe's own GGUF header reader: magic, metadata and tensor infos, parsed from the bytes of a
//! memory-mapped file. Tensor data is never read here: the loader slices it from the map.
//!
//! candle's `gguf_file::Content::read` refuses tensor types it does not know (IQ4_NL, IQ4_XS,
//! …) and so a whole file; this reader keeps every tensor's raw ggml type id and lets the
//! loader decide, per tensor, who can run it. Metadata values use candle's `gguf_file::Value`
//! so that the tokenizer and chat-template code (which take candle's `Content`) stay as they are
//! ([`GgufFile::into_content`]).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{self, Value, VersionedMagic};
use candle_core::quantized::GgmlDType;

const DEFAULT_ALIGNMENT: u64 = 32;
/// Sanity bounds (a corrupt header must not make us allocate without limit).
const MAX_DIMS: u32 = 8;
const MAX_DEPTH: usize = 4;

/// A ggml tensor type id, as written in GGUF tensor infos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgmlType(pub u32);

impl GgmlType {
    /// (name, weights per block, bytes per block) as in ggml's type traits.
    fn traits(self) -> Option<(&'static str, usize, usize)> {
        Some(match self.0 {
            0 => ("F32", 1, 4),
            1 => ("F16", 1, 2),
            2 => ("Q4_0", 32, 18),
            3 => ("Q4_1", 32, 20),
            6 => ("Q5_0", 32, 22),
            7 => ("Q5_1", 32, 24),
            8 => ("Q8_0", 32, 34),
            9 => ("Q8_1", 32, 36),
            10 => ("Q2_K", 256, 84),
            11 => ("Q3_K", 256, 110),
            12 => ("Q4_K", 256, 144),
            13 => ("Q5_K", 256, 176),
            14 => ("Q6_K", 256, 210),
            15 => ("Q8_K", 256, 292),
            16 => ("IQ2_XXS", 256, 66),
            17 => ("IQ2_XS", 256, 74),
            18 => ("IQ3_XXS", 256, 98),
            19 => ("IQ1_S", 256, 50),
            20 => ("IQ4_NL", 32, 18),
            21 => ("IQ3_S", 256, 110),
            22 => ("IQ2_S", 256, 82),
            23 => ("IQ4_XS", 256, 136),
            24 => ("I8", 1, 1),
            25 => ("I16", 1, 2),
            26 => ("I32", 1, 4),
            27 => ("I64", 1, 8),
            28 => ("F64", 1, 8),
            29 => ("IQ1_M", 256, 56),
            30 => ("BF16", 1, 2),
            34 => ("TQ1_0", 256, 54),
            35 => ("TQ2_0", 256, 66),
            39 => ("MXFP4", 32, 17),
            _ => return None,
        })
    }

    /// ggml's name of the type (`Q4_K`, `IQ4_XS`, …), or `type 42` for ids ggml lacks.
    pub fn name(self) -> String {
        match self.traits() {
            Some((n, _, _)) => n.to_string(),
            None => format!("type {}", self.0),
        }
    }

    pub fn block_elems(self) -> Option<usize> {
        self.traits().map(|t| t.1)
    }

    pub fn block_bytes(self) -> Option<usize> {
        self.traits().map(|t| t.2)
    }

    /// Plain floats (one weight per block), not a quantization.
    pub fn is_float(self) -> bool {
        matches!(self.0, 0 | 1 | 30)
    }

    /// candle's dtype for the type, where candle implements it.
    pub fn candle(self) -> Option<GgmlDType> {
        Some(match self.0 {
            0 => GgmlDType::F32,
            1 => GgmlDType::F16,
            2 => GgmlDType::Q4_0,
            3 => GgmlDType::Q4_1,
            6 => GgmlDType::Q5_0,
            7 => GgmlDType::Q5_1,
            8 => GgmlDType::Q8_0,
            9 => GgmlDType::Q8_1,
            10 => GgmlDType::Q2K,
            11 => GgmlDType::Q3K,
            12 => GgmlDType::Q4K,
            13 => GgmlDType::Q5K,
            14 => GgmlDType::Q6K,
            15 => GgmlDType::Q8K,
            30 => GgmlDType::BF16,
            _ => return None,
        })
    }
}

/// Where one tensor lies in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub ggml_type: GgmlType,
    /// Outermost first (candle's order; GGUF stores them innermost first): a weight matrix is
    /// `[rows = out features, cols = in features]`.
    pub dims: Vec<usize>,
    /// From the start of the tensor data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn elem_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// Bytes of the tensor's data; `None` for unknown types or a size not a whole number of
    /// blocks.
    pub fn byte_len(&self) -> Option<usize> {
        let (be, bb) = (self.ggml_type.block_elems()?, self.ggml_type.block_bytes()?);
        let n = self.elem_count();
        n.is_multiple_of(be).then(|| n / be * bb)
    }
}

/// A GGUF file's header: everything but the tensor data.
#[derive(Debug)]
pub struct GgufFile {
    pub magic: VersionedMagic,
    pub metadata: HashMap<String, Value>,
    pub tensors: HashMap<String, TensorInfo>,
    /// Offset of the tensor data section in the file.
    pub data_offset: u64,
}

impl GgufFile {
    /// Parses the header at the start of `bytes` (the whole file, typically memory-mapped).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader {
            bytes,
            pos: 0,
            v1: false,
        };
        let magic = r.u32()?;
        if magic != 0x4655_4747 {
            bail!("not a GGUF file (magic 0x{magic:08x})");
        }
        let magic = match r.u32()? {
            1 => VersionedMagic::GgufV1,
            2 => VersionedMagic::GgufV2,
            3 => VersionedMagic::GgufV3,
            v => bail!("GGUF version {v} is not supported (1-3 are)"),
        };
        r.v1 = matches!(magic, VersionedMagic::GgufV1);
        let n_tensors = r.len()?;
        let n_kv = r.len()?;
        // Every entry takes at least 8 bytes: counts beyond the file are corrupt.
        if n_tensors.max(n_kv) > bytes.len() / 8 {
            bail!("GGUF header declares {n_tensors} tensors and {n_kv} metadata entries, more than the file can hold");
        }
        let mut metadata = HashMap::with_capacity(n_kv);
        for _ in 0..n_kv {
            let key = r.string()?;
            let ty = r.u32()?;
            let value = r
                .value(ty, 0)
                .with_context(|| format!("GGUF metadata `{key}`"))?;
            metadata.insert(key, value);
        }
        let mut tensors = HashMap::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims > MAX_DIMS {
                bail!("GGUF tensor `{name}` has {n_dims} dimensions");
            }
            let mut dims = (0..n_dims).map(|_| r.len()).collect::<Result<Vec<_>>>()?;
            dims.reverse();
            let ggml_type = GgmlType(r.u32()?);
            let offset = r.u64()?;
            tensors.insert(
                name,
                TensorInfo {
                    ggml_type,
                    dims,
                    offset,
                },
            );
        }
        let alignment = match metadata.get("general.alignment") {
            Some(Value::U32(v)) if *v > 0 => *v as u64,
            Some(Value::U64(v)) if *v > 0 => *v,
            _ => DEFAULT_ALIGNMENT,
        };
        let data_offset = (r.pos as u64).div_ceil(alignment) * alignment;
        Ok(Self {
            magic,
            metadata,
            tensors,
            data_offset,
        })
    }

    /// Maps the file at `path` and parses its header.
    pub fn read(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: mapped read-only, only for the duration of the parse; lathe never writes
        // model files.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("mapping {}", path.display()))?;
        Self::parse(&map).with_context(|| format!("{} is not a readable GGUF file", path.display()))
    }

    /// The bytes of tensor `name` within `file` (the whole file's bytes), bounds-checked.
    pub fn tensor_bytes<'a>(&self, file: &'a [u8], name: &str) -> Result<&'a [u8]> {
        let info = self
            .tensors
            .get(name)
            .with_context(|| format!("GGUF has no tensor `{name}`"))?;
        let len = info.byte_len().with_context(|| {
            format!(
                "tensor `{name}`: type {} of {:?} has no known size",
                info.ggml_type.name(),
                info.dims
            )
        })?;
        let start = self
            .data_offset
            .checked_add(info.offset)
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| s.checked_add(len).is_some_and(|end| end <= file.len()))
            .with_context(|| {
                format!(
                    "tensor `{name}` ({len} bytes at {}) lies beyond the end of the file ({} bytes): truncated download?",
                    self.data_offset + info.offset,
                    file.len()
                )
            })?;
        Ok(&file[start..start + len])
    }

    /// candle's `Content` with this file's metadata, and the tensor infos of the types candle
    /// knows, for code written against candle's reader (tokenizer, chat template).
    pub fn into_content(self) -> gguf_file::Content {
        let tensor_infos = self
            .tensors
            .into_iter()
            .filter_map(|(name, t)| {
                let ggml_dtype = t.ggml_type.candle()?;
                Some((
                    name,
                    gguf_file::TensorInfo {
                        ggml_dtype,
                        shape: t.dims.into(),
                        offset: t.offset,
                    },
                ))
            })
            .collect();
        gguf_file::Content {
            magic: self.magic,
            metadata: self.metadata,
            tensor_infos,
            tensor_data_offset: self.data_offset,
        }
    }
}

/// Reads the GGUF header at `path` as candle's `Content` (metadata for the tokenizer and chat
/// template), accepting files with tensor types candle does not know.
pub fn read_content(path: &Path) -> Result<gguf_file::Content> {
    Ok(GgufFile::read(path)?.into_content())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// GGUF v1: lengths and counts are u32, not u64.
    v1: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .with_context(|| {
                format!(
                    "GGUF header truncated: {n} bytes wanted at {}, file has {}",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A length or count (u32 in v1, u64 after).
    fn len(&mut self) -> Result<usize> {
        let n = if self.v1 {
            self.u32()? as u64
        } else {
            self.u64()?
        };
        usize::try_from(n).context("GGUF length does not fit in memory")
    }

    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(self.array::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => bail!("bool value {b}"),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    bail!("arrays nested deeper than {MAX_DEPTH}");
                }
                let elem = self.u32()?;
                let n = self.len()?;
                if n > self.bytes.len() - self.pos {
                    bail!("array of {n} elements longer than the rest of the file");
                }
                let mut vs = Vec::with_capacity(n);
                for _ in 0..n {
                    vs.push(self.value(elem, depth + 1)?);
                }
                Value::Array(vs)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            t => bail!("unknown metadata value type {t}"),
        })
    }
}

/// Writes a GGUF v3 file (header + tensor data) for tests: `tensors` are (name, ggml type id,
/// dims outermost first, raw data bytes).
#[cfg(test)]
pub(crate) fn write_test_file(
    metadata: &[(&str, Value)],
    tensors: &[(&str, u32, Vec<usize>, Vec<u8>)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }
    fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U32(x) => out.extend(x.to_le_bytes()),
            Value::F32(x) => out.extend(x.to_le_bytes()),
            Value::U64(x) => out.extend(x.to_le_bytes()),
            Value::Bool(x) => out.push(*x as u8),
            Value::String(s) => string(out, s),
            Value::Array(vs) => {
                let t = vs.first().map_or(4, type_id);
                out.extend(t.to_le_bytes());
                out.extend((vs.len() as u64).to_le_bytes());
                vs.iter().for_each(|v| value(out, v));
            }
            other => panic!("test writer lacks {other:?}"),
        }
    }
    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U32(_) => 4,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            other => panic!("test writer lacks {other:?}"),
        }
    }
    let mut out = Vec::new();
    out.extend(0x4655_4747u32.to_le_bytes());
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        string(&mut out, k);
        out.extend(type_id(v).to_le_bytes());
        value(&mut out, v);
    }
    let mut offset = 0u64;
    let mut data = Vec::new();
    for (name, ty, dims, bytes) in tensors {
        string(&mut out, name);
        out.extend((dims.len() as u32).to_le_bytes());
        for d in dims.iter().rev() {
            out.extend((*d as u64).to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(offset.to_le_bytes());
        data.extend(bytes);
        while data.len() % DEFAULT_ALIGNMENT as usize != 0 {
            data.push(0);
        }
        offset = data.len() as u64;
    }
    while out.len() % DEFAULT_ALIGNMENT as usize != 0 {
        out.push(0);
    }
    out.extend(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_and_tensors_of_types_candle_lacks() {
        let q = vec![7u8; 18 * 2]; // two IQ4_NL blocks
        let f: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bytes = write_test_file(
            &[
                ("general.architecture", Value::String("llama".into())),
                ("llama.block_count", Value::U32(2)),
                (
                    "tokenizer.ggml.tokens",
                    Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
                ),
            ],
            &[
                ("blk.0.attn_q.weight", 20, vec![2, 32], q.clone()),
                ("output_norm.weight", 0, vec![2], f.clone()),
            ],
        );
        let g = GgufFile::parse(&bytes).unwrap();
        assert_eq!(g.metadata["llama.block_count"].to_u32().unwrap(), 2);
        assert_eq!(
            g.metadata["tokenizer.ggml.tokens"].to_vec().unwrap().len(),
            2
        );
        let t = &g.tensors["blk.0.attn_q.weight"];
        assert_eq!(
            (t.ggml_type.name(), t.dims.clone()),
            ("IQ4_NL".into(), vec![2, 32])
        );
        assert_eq!(
            g.tensor_bytes(&bytes, "blk.0.attn_q.weight").unwrap(),
            &q[..]
        );
        assert_eq!(
            g.tensor_bytes(&bytes, "output_norm.weight").unwrap(),
            &f[..]
        );
        // candle's view keeps the metadata and drops the tensor candle cannot represent.
        let c = g.into_content();
        assert!(c.metadata.contains_key("general.architecture"));
        assert!(c.tensor_infos.contains_key("output_norm.weight"));
        assert!(!c.tensor_infos.contains_key("blk.0.attn_q.weight"));
    }

    #[test]
    fn truncated_files_are_refused_with_a_reason() {
        let f: Vec<u8> = [1.0f32; 8].iter().flat_map(|x| x.to_le_bytes()).collect();
        let bytes = write_test_file(&[], &[("t", 0, vec![8], f)]);
        let g = GgufFile::parse(&bytes).unwrap();
        let cut = &bytes[..bytes.len() - 4];
        let err = g.tensor_bytes(cut, "t").unwrap_err().to_string();
        assert!(err.contains("beyond the end"), "{err}");
        assert!(GgufFile::parse(&bytes[..20]).is_err());
        assert!(GgufFile::parse(b"GGML....").is_err());
    }
}

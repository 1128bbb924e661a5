//! Uniform access to a checkpoint's tensors by their Hugging Face names, whether they live in a
//! GGUF file (quantized, llama.cpp names) or in safetensors (dense). Architectures ask for
//! `model.layers.3.self_attn.q_proj` and never see the file format.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use lathe_kernels::cpu::{QuantFormat, QuantMatrix};
use memmap2::Mmap;

use super::gguf::{GgmlType, GgufFile};
use crate::layers::{Embedding, Linear};

pub enum Weights {
    Gguf(GgufWeights),
    Safetensors {
        vb: VarBuilder<'static>,
        dtype: DType,
    },
}

/// A memory-mapped GGUF file. Each tensor is read once, straight from the map, into its one
/// in-memory form (lathe's packed tiles, a dense tensor or candle's `QTensor`), after which its
/// pages are handed back to the OS: loading never holds a model's weights twice.
pub struct GgufWeights {
    pub file: GgufFile,
    map: Mmap,
    device: Device,
    /// Quantized tensors on candle's CPU kernels, by type name (named in the load log).
    fallbacks: Mutex<BTreeMap<String, usize>>,
}

impl GgufWeights {
    pub fn open(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let f = File::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        // SAFETY: mapped read-only; lathe never writes model files while they are loaded.
        let map = unsafe { Mmap::map(&f) }
            .map_err(|e| anyhow::anyhow!("mapping {}: {e}", path.display()))?;
        let file = GgufFile::parse(&map).map_err(|e| {
            anyhow::anyhow!("{} is not a readable GGUF file: {e:#}", path.display())
        })?;
        Ok(Self {
            file,
            map,
            device: device.clone(),
            fallbacks: Mutex::default(),
        })
    }

    fn bytes(&self, name: &str) -> Result<(GgmlType, &[usize], &[u8])> {
        let bytes = self
            .file
            .tensor_bytes(&self.map, name)
            .map_err(|e| candle_core::Error::Msg(format!("{e:#}")))?;
        let info = &self.file.tensors[name];
        Ok((info.ggml_type, &info.dims, bytes))
    }

    /// Drops the mapped pages of `bytes` from this process (they stay in the page cache and
    /// fault back in from the file if read again, as the tied embedding is).
    fn release(&self, bytes: &[u8]) {
        #[cfg(unix)]
        {
            let offset = bytes.as_ptr() as usize - self.map.as_ptr() as usize;
            // SAFETY: the map is read-only and file-backed, so MADV_DONTNEED discards nothing:
            // later reads of these pages see the same file contents.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    offset,
                    bytes.len(),
                )
            };
        }
        #[cfg(not(unix))]
        let _ = bytes;
    }

    /// Tensor `name` dequantized to f32 on the device (norms, biases, embeddings).
    pub fn dense(&self, name: &str) -> Result<Tensor> {
        let (ty, dims, bytes) = self.bytes(name)?;
        let cpu = &Device::Cpu;
        let t = match ty.0 {
            0 => Tensor::from_vec(
                le_floats(bytes, 4, |b| f32::from_le_bytes(b.try_into().unwrap())),
                dims,
                cpu,
            )?,
            1 => Tensor::from_vec(
                le_floats(bytes, 2, |b| {
                    half::f16::from_le_bytes(b.try_into().unwrap()).to_f32()
                }),
                dims,
                cpu,
            )?,
            30 => Tensor::from_vec(
                le_floats(bytes, 2, |b| {
                    half::bf16::from_le_bytes(b.try_into().unwrap()).to_f32()
                }),
                dims,
                cpu,
            )?,
            _ => match (ty.candle(), lathe_format(ty), dims) {
                (Some(dt), _, _) => Tensor::from_vec(candle_dequantize(dt, bytes)?, dims, cpu)?,
                (None, Some(fmt), &[rows, cols]) => {
                    let m = QuantMatrix::from_gguf_blocks(fmt, rows, cols, bytes)
                        .map_err(candle_core::Error::Msg)?;
                    Tensor::from_vec(m.dequantize(), (rows, cols), cpu)?
                }
                _ => candle_core::bail!(
                    "tensor `{name}` is {}, a type neither lathe nor candle can dequantize",
                    ty.name()
                ),
            },
        };
        self.release(bytes);
        t.to_device(&self.device)
    }

    /// Embedding table `name`: kept packed on lathe's kernels on the CPU (rows dequantized
    /// per lookup), else dequantized to a dense table on the device.
    pub fn embedding(&self, name: &str) -> Result<Embedding> {
        let (ty, dims, bytes) = self.bytes(name)?;
        let lathe = self.device.is_cpu() && !crate::layers::candle_forced();
        if let (true, Some(fmt), &[rows, cols]) = (lathe, lathe_format(ty), dims) {
            let m = QuantMatrix::from_gguf_blocks(fmt, rows, cols, bytes)
                .map_err(|e| candle_core::Error::Msg(format!("tensor `{name}`: {e}")))?;
            self.release(bytes);
            return Ok(Embedding::Quantized(Arc::new(m)));
        }
        Ok(Embedding::new(self.dense(name)?))
    }

    /// Weight matrix `name` as a linear layer: lathe's kernels on the CPU where they cover the
    /// type, else candle's (CUDA, or CPU types lathe lacks — counted for the load log).
    pub fn linear(&self, name: &str, bias: Option<Tensor>) -> Result<Linear> {
        let (ty, dims, bytes) = self.bytes(name)?;
        let &[rows, cols] = dims else {
            candle_core::bail!("tensor `{name}` is {dims:?}, not a matrix")
        };
        self.linear_from(name, ty, rows, cols, bytes, bias)
    }

    /// Matrix `expert` of the stacked expert tensor `name` (`[experts, rows, cols]`, each
    /// expert's blocks contiguous, as llama.cpp stores `ffn_*_exps`).
    pub fn expert_linear(&self, name: &str, expert: usize) -> Result<Linear> {
        let (ty, dims, bytes) = self.bytes(name)?;
        let &[experts, rows, cols] = dims else {
            candle_core::bail!("tensor `{name}` is {dims:?}, not a stack of expert matrices")
        };
        if expert >= experts || bytes.len() % experts != 0 {
            candle_core::bail!("tensor `{name}` has {experts} experts, not expert {expert}")
        }
        let per = bytes.len() / experts;
        let part = &bytes[expert * per..(expert + 1) * per];
        self.linear_from(&format!("{name}[{expert}]"), ty, rows, cols, part, None)
    }

    fn linear_from(
        &self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
        bias: Option<Tensor>,
    ) -> Result<Linear> {
        let lathe = self.device.is_cpu() && !crate::layers::candle_forced();
        if let (true, Some(fmt)) = (lathe, lathe_format(ty)) {
            let m = QuantMatrix::from_gguf_blocks(fmt, rows, cols, bytes)
                .map_err(|e| candle_core::Error::Msg(format!("tensor `{name}`: {e}")))?;
            self.release(bytes);
            return Ok(Linear::from_quant_matrix(m, bias));
        }
        let Some(dt) = ty.candle() else {
            candle_core::bail!(
                "tensor `{name}` is {}: neither lathe's kernels nor candle's implement that type{}",
                ty.name(),
                if self.device.is_cpu() {
                    ""
                } else {
                    " on this device"
                }
            )
        };
        if self.device.is_cpu() && !ty.is_float() {
            *self.fallbacks.lock().unwrap().entry(ty.name()).or_default() += 1;
        }
        let q = qtensor_from_ggml(dt, bytes, vec![rows, cols], &self.device).map_err(|e| {
            candle_core::Error::Msg(format!("tensor `{name}` ({}): {e}", ty.name()))
        })?;
        self.release(bytes);
        Ok(Linear::new(QMatMul::from_arc(Arc::new(q))?, bias))
    }

    /// Logs, once per type, the quantized weights that run on candle's scalar CPU kernels
    /// instead of lathe's (slower; named so that a slow model says why).
    pub fn log_fallbacks(&self) {
        let forced = crate::layers::candle_forced();
        for (ty, n) in self.fallbacks.lock().unwrap().iter() {
            if forced {
                tracing::info!(
                    "{n} tensors of type {ty} run on candle's kernels (LATHE_CPU_MATMUL=candle)"
                );
            } else {
                tracing::warn!(
                    "{n} tensors of type {ty} run on candle's fallback kernels: lathe has no CPU kernel for {ty} yet (slower)"
                );
            }
        }
    }

    /// Quantized types of tensors on candle's CPU kernels so far, with their counts.
    pub fn fallback_types(&self) -> BTreeMap<String, usize> {
        self.fallbacks.lock().unwrap().clone()
    }
}

/// lathe's CPU kernel format for a ggml type (every common GGUF type, dense ones included).
fn lathe_format(t: GgmlType) -> Option<QuantFormat> {
    QuantFormat::from_ggml_type(t.0)
}

/// candle's dequantization of the blocks in `bytes`, read in place (no copy of the blocks).
fn candle_dequantize(dt: GgmlDType, bytes: &[u8]) -> Result<Vec<f32>> {
    use candle_core::quantized::k_quants::*;
    fn blocks<T: GgmlType>(bytes: &[u8]) -> Result<Vec<f32>> {
        let size = std::mem::size_of::<T>();
        if !bytes.len().is_multiple_of(size)
            || !(bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>())
        {
            candle_core::bail!("{:?} data misaligned or not whole blocks", T::DTYPE);
        }
        // SAFETY: candle's blocks are `repr(C)` plain data of `size` bytes; length and alignment
        // are checked above (candle's own `qtensor_from_ggml` casts the same way).
        let xs =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) };
        let mut ys = vec![0f32; xs.len() * T::BLCK_SIZE];
        T::to_float(xs, &mut ys);
        Ok(ys)
    }
    match dt {
        GgmlDType::Q4_0 => blocks::<BlockQ4_0>(bytes),
        GgmlDType::Q4_1 => blocks::<BlockQ4_1>(bytes),
        GgmlDType::Q5_0 => blocks::<BlockQ5_0>(bytes),
        GgmlDType::Q5_1 => blocks::<BlockQ5_1>(bytes),
        GgmlDType::Q8_0 => blocks::<BlockQ8_0>(bytes),
        GgmlDType::Q8_1 => blocks::<BlockQ8_1>(bytes),
        GgmlDType::Q2K => blocks::<BlockQ2K>(bytes),
        GgmlDType::Q3K => blocks::<BlockQ3K>(bytes),
        GgmlDType::Q4K => blocks::<BlockQ4K>(bytes),
        GgmlDType::Q5K => blocks::<BlockQ5K>(bytes),
        GgmlDType::Q6K => blocks::<BlockQ6K>(bytes),
        GgmlDType::Q8K => blocks::<BlockQ8K>(bytes),
        other => candle_core::bail!("{other:?} is not a block quantization"),
    }
}

fn le_floats(bytes: &[u8], width: usize, f: impl Fn(&[u8]) -> f32) -> Vec<f32> {
    bytes.chunks_exact(width).map(f).collect()
}

impl Weights {
    pub fn safetensors(
        files: &[std::path::PathBuf],
        dtype: DType,
        device: &Device,
    ) -> anyhow::Result<Self> {
        // SAFETY: the files are memory-mapped read-only; lathe never writes them while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device)? };
        Ok(Weights::Safetensors { vb, dtype })
    }

    /// Activation dtype the model runs in.
    pub fn dtype(&self) -> DType {
        match self {
            Weights::Gguf(_) => DType::F32,
            Weights::Safetensors { dtype, .. } => *dtype,
        }
    }

    pub fn contains(&self, hf_name: &str) -> bool {
        match self {
            Weights::Gguf(g) => g.file.tensors.contains_key(&gguf_name(hf_name)),
            Weights::Safetensors { vb, .. } => vb.contains_tensor(hf_name),
        }
    }

    /// A dense tensor in the activation dtype (norm weights, biases, embeddings).
    pub fn tensor(&self, hf_name: &str) -> Result<Tensor> {
        match self {
            Weights::Gguf(g) => g.dense(&gguf_name(hf_name)),
            Weights::Safetensors { vb, .. } => {
                let shape = vb.get_unchecked(hf_name)?.shape().clone();
                vb.get(shape, hf_name)
            }
        }
    }

    /// The token embedding `hf_name` (packed on lathe's kernels where they run it).
    pub fn embedding(&self, hf_name: &str) -> Result<Embedding> {
        match self {
            Weights::Gguf(g) => g.embedding(&gguf_name(hf_name)),
            Weights::Safetensors { .. } => Ok(Embedding::new(self.tensor(hf_name)?)),
        }
    }

    /// `prefix.weight` (+ `prefix.bias` when `bias`) as a linear layer.
    pub fn linear(&self, prefix: &str, bias: bool) -> Result<Linear> {
        let bias = if bias {
            Some(self.tensor(&format!("{prefix}.bias"))?)
        } else {
            None
        };
        let weight = format!("{prefix}.weight");
        match self {
            Weights::Gguf(g) => match gguf_expert_name(&weight) {
                Some((stack, expert)) => {
                    if bias.is_some() {
                        candle_core::bail!("expert `{prefix}` with a bias is not supported in GGUF")
                    }
                    g.expert_linear(&stack, expert)
                }
                None => g.linear(&gguf_name(&weight), bias),
            },
            Weights::Safetensors { .. } => {
                Ok(Linear::new(QMatMul::Tensor(self.tensor(&weight)?), bias))
            }
        }
    }

    /// Bytes of the GGUF tensor `gguf_name` as stored (`None` for safetensors or no such tensor).
    pub fn gguf_tensor_bytes(&self, gguf_name: &str) -> Option<usize> {
        match self {
            Weights::Gguf(g) => g.file.tensors.get(gguf_name)?.byte_len(),
            Weights::Safetensors { .. } => None,
        }
    }

    /// Bytes the weights take in memory (for roofline numbers).
    pub fn total_bytes(&self) -> usize {
        match self {
            Weights::Gguf(g) => g.file.tensors.values().filter_map(|i| i.byte_len()).sum(),
            Weights::Safetensors { .. } => 0,
        }
    }
}

/// llama.cpp's name for a Hugging Face tensor name (llama/qwen2 family).
pub fn gguf_name(hf: &str) -> String {
    let top = [
        ("model.embed_tokens.", "token_embd."),
        ("model.norm.", "output_norm."),
        ("lm_head.", "output."),
    ];
    for (from, to) in top {
        if let Some(rest) = hf.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    if let Some(rest) = hf.strip_prefix("model.layers.") {
        let (idx, rest) = rest.split_once('.').unwrap_or((rest, ""));
        let parts = [
            ("input_layernorm.", "attn_norm."),
            ("post_attention_layernorm.", "ffn_norm."),
            ("self_attn.q_proj.", "attn_q."),
            ("self_attn.k_proj.", "attn_k."),
            ("self_attn.v_proj.", "attn_v."),
            ("self_attn.o_proj.", "attn_output."),
            ("mlp.gate_proj.", "ffn_gate."),
            ("mlp.up_proj.", "ffn_up."),
            ("mlp.down_proj.", "ffn_down."),
            ("self_attn.q_norm.", "attn_q_norm."),
            ("self_attn.k_norm.", "attn_k_norm."),
            // The MoE router.
            ("mlp.gate.", "ffn_gate_inp."),
            // StarCoder2's plain MLP.
            ("mlp.c_fc.", "ffn_up."),
            ("mlp.c_proj.", "ffn_down."),
        ];
        for (from, to) in parts {
            if let Some(tail) = rest.strip_prefix(from) {
                return format!("blk.{idx}.{to}{tail}");
            }
        }
    }
    hf.to_string()
}

/// An expert's HF weight name (`model.layers.{i}.mlp.experts.{e}.gate_proj.weight`) → the
/// llama.cpp tensor stacking all experts of that projection (`blk.{i}.ffn_gate_exps.weight`)
/// and the expert's index in it.
pub fn gguf_expert_name(hf: &str) -> Option<(String, usize)> {
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once(".mlp.experts.")?;
    let (expert, rest) = rest.split_once('.')?;
    let proj = match rest {
        "gate_proj.weight" => "ffn_gate_exps",
        "up_proj.weight" => "ffn_up_exps",
        "down_proj.weight" => "ffn_down_exps",
        _ => return None,
    };
    Some((format!("blk.{layer}.{proj}.weight"), expert.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::gguf_file::Value;

    use super::*;
    use crate::loader::gguf::write_test_file;

    /// A GGUF file on disk with an F32 norm, an F16 vector, a Q8_0 matrix (lathe's kernels),
    /// a Q8_K matrix (an activation type no model file uses: neither lathe's nor candle's
    /// kernels run it) and an
    /// IQ2_XXS matrix (neither lathe's nor candle's).
    fn test_file(dir: &Path) -> std::path::PathBuf {
        let f32s: Vec<u8> = [1.0f32, -2.5, 3.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f16s: Vec<u8> = [0.5f32, 4.0]
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        // Q8_0 block: f16 scale 0.5, then 32 int8 weights 0..32 → weights 0, 0.5, 1, ...
        let mut q8 = Vec::new();
        for _ in 0..16 {
            q8.extend(half::f16::from_f32(0.5).to_le_bytes());
            q8.extend((0..32).map(|i| i as u8));
        }
        let bytes = write_test_file(
            &[("general.architecture", Value::String("llama".into()))],
            &[
                ("norm.weight", 0, vec![3], f32s),
                ("half.weight", 1, vec![2], f16s),
                ("q8.weight", 8, vec![16, 32], q8),
                ("q8k.weight", 15, vec![16, 256], vec![0; 16 * 292]),
                ("iq2.weight", 16, vec![16, 256], vec![0; 16 * 66]),
            ],
        );
        let path = dir.join("test.gguf");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn tensors_load_from_the_map_and_fallbacks_are_counted_by_type() {
        let dir = std::env::temp_dir().join(format!("lathe-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = GgufWeights::open(&test_file(&dir), &Device::Cpu).unwrap();
        let norm: Vec<f32> = w.dense("norm.weight").unwrap().to_vec1().unwrap();
        assert_eq!(norm, [1.0, -2.5, 3.25]);
        let h: Vec<f32> = w.dense("half.weight").unwrap().to_vec1().unwrap();
        assert_eq!(h, [0.5, 4.0]);
        let q8: Vec<Vec<f32>> = w.dense("q8.weight").unwrap().to_vec2().unwrap();
        assert_eq!((q8[3][0], q8[3][31]), (0.0, 15.5));

        // Q8_0 on lathe's kernels: x = e_31 picks column 31 of every row.
        let lin = w.linear("q8.weight", None).unwrap();
        assert_eq!(lin.out_features(), Some(16));
        let mut x = vec![0f32; 32];
        x[31] = 1.0;
        let y: Vec<Vec<f32>> = lin
            .forward(&Tensor::from_vec(x, (1, 32), &Device::Cpu).unwrap())
            .unwrap()
            .to_vec2()
            .unwrap();
        assert!(y[0].iter().all(|v| (v - 15.5).abs() < 0.1), "{y:?}");
        assert!(w.fallback_types().is_empty());

        // Every type a model file uses that candle runs has a lathe kernel, so nothing falls
        // back to candle's scalar path on the CPU (the log names it if that ever changes).
        for id in (0..=40).filter(|id| ![9, 15].contains(id)) {
            let t = GgmlType(id);
            if t.candle().is_some() {
                assert!(
                    lathe_format(t).is_some(),
                    "{} has no lathe kernel",
                    t.name()
                );
            }
        }
        // Q8_K (an activation type, in no model file): neither runs it; refused by name.
        let e = w.linear("q8k.weight", None).unwrap_err().to_string();
        assert!(e.contains("q8k.weight") && e.contains("Q8_K"), "{e}");

        // IQ2_XXS: refused, naming the tensor and the type.
        let e = w.linear("iq2.weight", None).unwrap_err().to_string();
        assert!(e.contains("iq2.weight") && e.contains("IQ2_XXS"), "{e}");
        let e = w.dense("iq2.weight").unwrap_err().to_string();
        assert!(e.contains("IQ2_XXS"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn hf_names_map_to_llama_cpp_names() {
        assert_eq!(gguf_name("model.embed_tokens.weight"), "token_embd.weight");
        assert_eq!(
            gguf_name("model.layers.12.self_attn.o_proj.weight"),
            "blk.12.attn_output.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.self_attn.q_proj.bias"),
            "blk.0.attn_q.bias"
        );
        assert_eq!(
            gguf_name("model.layers.3.mlp.down_proj.weight"),
            "blk.3.ffn_down.weight"
        );
        assert_eq!(gguf_name("lm_head.weight"), "output.weight");
        assert_eq!(
            gguf_name("model.layers.1.self_attn.k_norm.weight"),
            "blk.1.attn_k_norm.weight"
        );
        assert_eq!(
            gguf_name("model.layers.2.mlp.gate.weight"),
            "blk.2.ffn_gate_inp.weight"
        );
        assert_eq!(
            gguf_name("model.layers.2.mlp.c_fc.bias"),
            "blk.2.ffn_up.bias"
        );
        assert_eq!(
            gguf_expert_name("model.layers.4.mlp.experts.17.down_proj.weight"),
            Some(("blk.4.ffn_down_exps.weight".into(), 17))
        );
        assert_eq!(
            gguf_expert_name("model.layers.4.mlp.gate_proj.weight"),
            None
        );
    }
}

//! A grouped matmul: several matrices of one shape, each over its own consecutive rows of one
//! input — a mixture-of-experts step, where every expert multiplies only the tokens routed to
//! it. One activation quantization and one job list on the pool cover every group, so a MoE
//! layer costs one thread hand-off per projection instead of one per expert; each group's
//! output is bit-identical to its matrix's own [`QuantMatrix::matmul`] over its rows.

use super::{act, pool, tile_range, with_kind, Isa, OutPtr, QuantMatrix, Weights};

/// Activation rows per work item: enough rows per tile read to keep the kernels' weight reuse,
/// few enough that a prompt's large groups still spread over the threads.
const ROWS_PER_ITEM: usize = 64;

impl QuantMatrix {
    /// `out[starts[g]..starts[g+1]] = x[starts[g]..starts[g+1]] · parts[g]ᵀ`: `x` is
    /// `[M, cols]`, `out` `[M, rows]`, `starts` the `parts.len() + 1` row offsets (ascending,
    /// `starts[0] = 0`, last `M`). Every part has the same rows and cols (any formats). Panics
    /// on shapes that do not fit.
    pub fn matmul_grouped(parts: &[&QuantMatrix], starts: &[usize], x: &[f32], out: &mut [f32]) {
        Self::matmul_grouped_with(Isa::best(), parts, starts, x, out)
    }

    /// [`Self::matmul_grouped`] on a given path (panics if unsupported).
    pub fn matmul_grouped_with(
        isa: Isa,
        parts: &[&QuantMatrix],
        starts: &[usize],
        x: &[f32],
        out: &mut [f32],
    ) {
        assert!(isa.is_supported(), "{isa:?} is not supported by this CPU");
        let first = parts.first().expect("matmul_grouped needs a part");
        let (rows, cols) = (first.rows(), first.cols());
        assert!(
            parts.iter().all(|p| p.rows() == rows && p.cols() == cols),
            "matmul_grouped: parts of different shapes"
        );
        assert_eq!(
            starts.len(),
            parts.len() + 1,
            "one start per part, plus the end"
        );
        assert!(
            starts[0] == 0 && starts.windows(2).all(|w| w[0] <= w[1]),
            "starts must ascend from 0"
        );
        let m = starts[parts.len()];
        assert_eq!(x.len(), m * cols, "x must be [M, cols]");
        assert_eq!(out.len(), m * rows, "out must be [M, rows]");
        if m == 0 || rows == 0 {
            return;
        }
        let quantized = parts.iter().any(|p| matches!(p.w, Weights::Packed(_)));
        let a = quantized.then(|| act::quantize(isa, x, m, cols));
        // Work items: (group, row chunk, tile), groups without rows skipped.
        let tiles = first.tiles();
        let mut items: Vec<(usize, usize, usize)> = Vec::new();
        for (g, w) in starts.windows(2).enumerate() {
            for c0 in (w[0]..w[1]).step_by(ROWS_PER_ITEM) {
                items.push((g, c0, (c0 + ROWS_PER_ITEM).min(w[1])));
            }
        }
        let n = items.len() * tiles;
        let threads = pool::num_threads();
        // Same rule as `run_group`: one thread below ~128k multiply-adds, else ~6 chunks each.
        let chunk = if n * super::pack::TILE * cols * ROWS_PER_ITEM.min(m) < 1 << 17 {
            n
        } else {
            n.div_ceil(6 * threads)
        };
        let o = OutPtr(out.as_mut_ptr());
        let (items, a) = (&items, a.as_ref());
        let f = move |i0: usize, i1: usize| {
            let o = o;
            for i in i0..i1 {
                let ((g, c0, c1), t) = (items[i / tiles], i % tiles);
                let part = parts[g];
                // SAFETY: `isa` is supported (checked above); each item writes rows c0..c1 of
                // tile t, disjoint from every other item; `out` has m * rows elements.
                unsafe {
                    match &part.w {
                        Weights::Packed(p) => {
                            let a = a.expect("quantized activations");
                            with_kind!(part.format, K => tile_range::<K>(isa, p, a, c0, c1, t, t + 1, o.0, rows))
                        }
                        Weights::Dense(d) => d.tile_range(isa, x, c0, c1, t, t + 1, o.0, rows),
                    }
                }
            }
        };
        pool::parallel_for(n, chunk, &f);
    }
}

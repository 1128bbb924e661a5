//! Portable kernel over the packed layout: the same integer sums as the SIMD paths (exact),
//! the same per-group float update `f += isum * (d_w * d_x) [+ c * d_x * sum(q)]`.

use super::act::ActQ;
use super::pack::{q_get, scale_get, Kind, Packed, TILE};

/// The group sum of activation row `c` at group `g` (16- or 32-element groups).
#[inline(always)]
pub(crate) fn act_sum<K: Kind>(a: &ActQ, c: usize, g: usize) -> i32 {
    let nb = a.cols / 32;
    if K::G == 32 {
        a.s32[c * nb + g]
    } else {
        a.s16[c * 2 * nb + g]
    }
}

/// The offset factor `d_x * sum(q)` of activation row `c` at group `g` (asymmetric kinds).
#[inline(always)]
pub(crate) fn act_sd<K: Kind>(a: &ActQ, c: usize, g: usize) -> f32 {
    let nb = a.cols / 32;
    if K::G == 32 {
        a.sd32[c * nb + g]
    } else {
        a.sd16[c * 2 * nb + g]
    }
}

/// Computes `out[c * ldo + row]` for every activation row `c` in `c0..c1` and every row of tiles
/// `t0..t1`.
///
/// # Safety
/// `out` must point to `c1 * ldo` writable floats (`ldo >= p.rows`) not written by anyone else
/// for these rows.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tiles<K: Kind>(
    p: &Packed,
    a: &ActQ,
    c0: usize,
    c1: usize,
    t0: usize,
    t1: usize,
    out: *mut f32,
    ldo: usize,
) {
    let nb = a.cols / 32;
    for t in t0..t1 {
        let tile = p.tile(t);
        let nvalid = (p.rows - t * TILE).min(TILE);
        for c in c0..c1 {
            for r in 0..nvalid {
                let mut f = 0f32;
                for g in 0..p.groups {
                    let xq = &a.q[c * a.cols + g * K::G..][..K::G];
                    let mut isum = if K::ASYM {
                        0
                    } else {
                        K::BIAS * act_sum::<K>(a, c, g)
                    };
                    for (e, &x) in xq.iter().enumerate() {
                        isum += q_get::<K>(tile, g, r, e) as i32 * x as i32;
                    }
                    let dx = a.d[c * nb + g * K::G / 32];
                    f += isum as f32 * (scale_get::<K>(tile, g, 0, r) * dx);
                    if K::ASYM {
                        f += scale_get::<K>(tile, g, 1, r) * act_sd::<K>(a, c, g);
                    }
                }
                *out.add(c * ldo + t * TILE + r) = f;
            }
        }
    }
}

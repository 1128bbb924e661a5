//! AMX-INT8 kernels for the prompt (GEMM) path: one `tdpbsud` multiplies 16 activation rows by
//! a group of 16 weight rows (16 x 16 x G multiply-adds, 256x one `vpdpbusd`).
//!
//! The packed layout is already AMX's "B" layout: a group's step j holds, for weight row r,
//! bytes `[4r, 4r + 4)` = `u[r][4j..4j + 4]`, which is row j of a `(G/4) x 64`-byte B tile.
//! 4-bit kinds are unpacked (nibbles, high-bit planes, IQ4 table) into a 512-byte buffer first;
//! u8 kinds (Q8_0) load straight from the packed tile. The activations (`ActQ`, signed) are the
//! A tile, rows `cols` bytes apart, read in place.
//!
//! Scales differ per group, so each group's 16 x 16 integer sums go through memory to the same
//! float epilogue as the VNNI kernel, in the same order: the results are bit-identical to
//! [`super::avx512`]'s (the engine's batch invariance depends on it: a row may be computed
//! here in one batch and by the VNNI kernel in another). Rows of a call beyond a multiple of 16
//! go to the VNNI kernel.
//!
//! Linux hands out AMX's tile state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM)`), once
//! per process ([`supported`]); each thread loads the tile configuration before its first tile
//! instruction (`ldtilecfg`, tracked per thread).

use super::act::ActQ;
use super::avx512::{fold_group, high_plane, scales, unpack_step};
use super::formats::IQ4_U;
use super::pack::{q_off, Kind, Packed, TILE};
use super::scalar::act_sum;
use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::Cell;
use std::sync::OnceLock;

/// Activation rows per pass over a tile's weights (kept in L2 between tiles), as in avx512.rs.
const MB: usize = 256;

/// Whether the CPU has AMX-TILE and AMX-INT8 and the kernel granted this process the tile
/// state (asked once).
pub(crate) fn supported() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        // SAFETY: cpuid leaf 7 exists on every x86_64 CPU with AVX-512 (checked by callers
        // too); the syscall only changes this process's permitted xsave features.
        unsafe {
            let leaf7 = __cpuid_count(7, 0);
            let has = leaf7.edx & (1 << 24) != 0 && leaf7.edx & (1 << 25) != 0;
            has && request_tile_permission()
        }
    })
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; true when granted.
#[cfg(target_os = "linux")]
unsafe fn request_tile_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    const SYS_ARCH_PRCTL: usize = 158;
    let ret: isize;
    asm!(
        "syscall",
        inlateout("rax") SYS_ARCH_PRCTL as isize => ret,
        in("rdi") ARCH_REQ_XCOMP_PERM,
        in("rsi") XFEATURE_XTILEDATA,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack)
    );
    ret == 0
}

#[cfg(not(target_os = "linux"))]
unsafe fn request_tile_permission() -> bool {
    false
}

/// The 64-byte `ldtilecfg` operand: palette 1 and two sets of (A, B, C) tiles so that the next
/// group's product runs while the float epilogue of the current one does: tmm0 / tmm3 = A
/// (16 rows x G bytes), tmm1 / tmm4 = B (G/4 rows x 64 bytes), tmm2 / tmm5 = C (16 x 16 i32).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

thread_local! {
    /// The group size this thread's tile configuration was loaded for (0: none).
    static LOADED_G: Cell<usize> = const { Cell::new(0) };
}

#[inline(always)]
unsafe fn configure(g: usize) {
    if LOADED_G.with(|c| c.get()) == g {
        return;
    }
    let mut cfg = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [0; 16],
        rows: [0; 16],
    };
    for set in [0, 3] {
        (cfg.colsb[set], cfg.rows[set]) = (g as u16, 16);
        (cfg.colsb[set + 1], cfg.rows[set + 1]) = (64, (g / 4) as u8);
        (cfg.colsb[set + 2], cfg.rows[set + 2]) = (64, 16);
    }
    asm!("ldtilecfg [{}]", in(reg) &cfg as *const TileConfig, options(nostack, readonly));
    LOADED_G.with(|c| c.set(g));
}

/// `c[16][16] = a (16 rows, stride `lda` bytes) · b (G/4 rows of 64 bytes)` as i32, on tile
/// set 0 or 1.
macro_rules! tile_dot {
    ($name:ident, $a:literal, $b:literal, $c:literal) => {
        #[inline(always)]
        unsafe fn $name(a: *const i8, lda: usize, b: *const u8, c: *mut i32) {
            asm!(
                concat!("tilezero ", $c),
                concat!("tileloadd ", $a, ", [{a} + {lda} * 1]"),
                concat!("tileloadd ", $b, ", [{b} + {ldb} * 1]"),
                concat!("tdpbsud ", $c, ", ", $a, ", ", $b),
                concat!("tilestored [{c} + {ldb} * 1], ", $c),
                a = in(reg) a,
                lda = in(reg) lda,
                b = in(reg) b,
                ldb = in(reg) 64usize,
                c = in(reg) c,
                options(nostack)
            );
        }
    };
}
tile_dot!(tile_dot0, "tmm0", "tmm1", "tmm2");
tile_dot!(tile_dot1, "tmm3", "tmm4", "tmm5");

#[repr(C, align(64))]
struct Buf<T, const N: usize>([T; N]);

/// Bytes of one group's B tile (G/4 rows of 64 bytes).
const fn b_bytes<K: Kind>() -> usize {
    K::G / 4 * 64
}

/// Unpacks every group of `tile` into `b` (`groups * b_bytes` bytes) as u8 B tiles: nibbles,
/// high-bit planes and the IQ4 table applied. Done once per tile and pass, so the vector
/// stores are long retired when the tile loads read them.
#[inline(always)]
unsafe fn unpack_tile<K: Kind>(tile: *const u8, groups: usize, b: *mut u8) {
    let m4 = _mm512_set1_epi8(0x0f);
    let lut = _mm512_broadcast_i32x4(_mm_loadu_si128(IQ4_U.as_ptr() as *const __m128i));
    for g in 0..groups {
        let grp = tile.add(q_off::<K>(g));
        let b = b.add(g * b_bytes::<K>());
        let hp = high_plane::<K>(grp);
        for j in 0..K::G / 8 {
            let (lo, hi) = unpack_step::<K>(grp, hp, j, m4, lut);
            _mm512_storeu_si512(b.add(64 * j) as *mut _, lo);
            _mm512_storeu_si512(b.add(64 * (j + K::G / 8)) as *mut _, hi);
        }
    }
}

/// Group `g`'s B tile: in `unpacked` for the 4-bit kinds, in place for u8 ones.
#[inline(always)]
unsafe fn b_tile<K: Kind>(tile: *const u8, unpacked: *const u8, g: usize) -> *const u8 {
    if K::NIBBLE {
        unpacked.add(g * b_bytes::<K>())
    } else {
        tile.add(q_off::<K>(g))
    }
}

/// Starts group `g`'s product into `c` (256 i32) on tile set `g % 2`.
#[inline(always)]
unsafe fn issue<K: Kind>(
    tile: *const u8,
    unpacked: *const u8,
    g: usize,
    a: &ActQ,
    c0: usize,
    c: *mut i32,
) {
    let bp = b_tile::<K>(tile, unpacked, g);
    let x = a.q.as_ptr().add(c0 * a.cols + g * K::G);
    if g.is_multiple_of(2) {
        tile_dot0(x, a.cols, bp, c);
    } else {
        tile_dot1(x, a.cols, bp, c);
    }
}

/// Group `g`'s integer sums `c` into the 16 row accumulators: the VNNI kernel's epilogue,
/// operation for operation (see the module docs).
#[inline(always)]
unsafe fn epilogue<K: Kind>(
    tile: *const u8,
    g: usize,
    a: &ActQ,
    c0: usize,
    c: *const i32,
    f: &mut [__m512; 16],
) {
    let dw = scales::<K>(tile, g, 0);
    let cw = if K::ASYM { scales::<K>(tile, g, 1) } else { dw };
    for (r, fr) in f.iter_mut().enumerate() {
        let mut acc = _mm512_load_si512(c.add(16 * r) as *const _);
        if !K::ASYM {
            let bias = K::BIAS * act_sum::<K>(a, c0 + r, g);
            acc = _mm512_add_epi32(acc, _mm512_set1_epi32(bias));
        }
        *fr = fold_group::<K>(*fr, acc, dw, cw, a, c0 + r, g);
    }
}

/// Tile `tile` against activation rows `c0..c0 + 16`; writes `mask` lanes of each output row.
/// Group g + 1's tile product is issued before group g's epilogue (double-buffered).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<K: Kind>(
    tile: *const u8,
    unpacked: *const u8,
    groups: usize,
    a: &ActQ,
    c0: usize,
    out: *mut f32,
    ldo: usize,
    mask: __mmask16,
) {
    let mut c = Buf::<i32, 512>([0; 512]);
    let cp = c.0.as_mut_ptr();
    let mut f = [_mm512_setzero_ps(); 16];
    issue::<K>(tile, unpacked, 0, a, c0, cp);
    for g in 0..groups {
        let next = g + 1;
        if next < groups {
            let h = next % 2;
            issue::<K>(tile, unpacked, next, a, c0, cp.add(256 * h));
        }
        epilogue::<K>(tile, g, a, c0, cp.add(256 * (g % 2)), &mut f);
    }
    for (r, v) in f.iter().enumerate() {
        _mm512_mask_storeu_ps(out.add((c0 + r) * ldo), mask, *v);
    }
}

/// See [`super::scalar::tiles`]; requires AVX-512F/BW/VNNI and [`supported`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
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
    let full = c0 + (c1 - c0) / 16 * 16;
    if full > c0 {
        configure(K::G);
        let mut unpacked = Vec::new();
        if K::NIBBLE {
            unpacked.resize(p.groups * b_bytes::<K>(), 0u8);
        }
        for mb in (c0..full).step_by(MB) {
            let me = (mb + MB).min(full);
            for t in t0..t1 {
                let tile = p.tile(t).as_ptr();
                if K::NIBBLE {
                    unpack_tile::<K>(tile, p.groups, unpacked.as_mut_ptr());
                }
                let nvalid = (p.rows - t * TILE).min(TILE);
                let mask = ((1u32 << nvalid) - 1) as __mmask16;
                for c in (mb..me).step_by(16) {
                    block::<K>(
                        tile,
                        unpacked.as_ptr(),
                        p.groups,
                        a,
                        c,
                        out.add(t * TILE),
                        ldo,
                        mask,
                    );
                }
            }
        }
    }
    if full < c1 {
        super::avx512::tiles_vnni::<K>(p, a, full, c1, t0, t1, out, ldo);
    }
}

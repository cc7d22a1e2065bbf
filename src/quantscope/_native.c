/* Native CPU kernels of quantscope: rounding onto a format, and dot products that round after
 * every multiply and every add.
 *
 * Every function here mirrors, operation for operation in IEEE arithmetic, the PyTorch kernels of
 * quantscope/quantization.py (`_quantize_fixed`, `_quantize_wrap`, `_quantize_float_grid`,
 * `_round_`, `_stochastic_`) and quantscope/arith/kernel.py (`sequential`), so both paths give the
 * same bits; the tests compare them on every case. Nothing here decides semantics: the Python side
 * (quantscope/native.py) describes the grid, the rounding mode and the work type.
 *
 * Functions are single-threaded and release the GIL; native.py runs them on a thread pool over
 * independent slices. Vector code comes from GCC's auto-vectorizer; `target_clones` builds an
 * AVX2 variant next to the baseline one and picks at load time, so the module runs on any x86-64.
 * Compiled with -ffp-contract=off: a fused multiply-add would skip a rounding the emulation needs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { NEAREST = 0, FLOOR = 1, TOWARD_ZERO = 2, STOCHASTIC = 3 };
/* GRID_FLOAT: symmetric, saturating, with subnormals and >= 1 mantissa bit (the common case, kept
 * lean); GRID_FLOAT_ANY: any other float grid (flush to zero, asymmetric, no mantissa bits);
 * GRID_FLOAT_INF: IEEE overflow to infinity. */
enum { GRID_FLOAT = 0, GRID_FIXED = 1, GRID_WRAP = 2, GRID_FLOAT_INF = 3, GRID_FLOAT_ANY = 4 };
#define GRID_KINDS 5

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif
#define INLINE static inline __attribute__((always_inline))

/* A grid and how to round onto it (see native.py's `grid_tuple` for every field). */
typedef struct {
    int kind;          /* one of the GRID_ kinds above */
    int man, emin;     /* float grid: mantissa bits, exponent of the smallest normal */
    int subnormals;    /* float grid: values below 2**emin on the 2**(emin - man) grid */
    double lo, hi;     /* the clamp range (float grid with overflow to inf: hi is the largest finite value) */
    int frac;          /* fixed: values are integers times 2**-frac */
    int bits;          /* wrapping fixed: code width */
    double kmin, kmax; /* wrapping fixed: smallest and largest code */
} grid_t;

static uint64_t mix64(uint64_t z) {
    /* splitmix64's output function; must equal native._mix in PyTorch */
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
#define GOLDEN 0x9E3779B97F4A7C15ULL

/* ------------------------------------------------------------------------------------------
 * The rounding of one value, once for float and once for double. T is the work type, U the
 * unsigned integer of its width; a grid is first turned into loop-invariant constants of type T
 * and U (`prep`), so that loops over values have no branches and vectorize. Mirrors
 * quantization.py; the comments name the function mirrored.
 * ------------------------------------------------------------------------------------------ */
#define DEFINE_ROUNDING(T, U, I, S, MANT, BIAS, EXPMASK, FLOORF, TRUNCF, CEILF, RINTF, COPYSIGNF, FABSF)  \
    INLINE U bits_##S(T x) { U u; memcpy(&u, &x, sizeof u); return u; }                                    \
    INLINE T value_##S(U u) { T x; memcpy(&x, &u, sizeof x); return x; }                                   \
                                                                                                           \
    /* exponent fields as signed integers: the sign bit is masked off, and AVX2 compares signed */      \
    typedef struct {                                                                                       \
        T lo, hi, scale, unscale, min_normal;                                                              \
        T period, modulus, kmax1, kmin; /* wrapping fixed point */                                         \
        I emin_bits, top_bits, man_bits, below_limit;                                                      \
    } prep_##S;                                                                                            \
                                                                                                           \
    static prep_##S prepare_##S(const grid_t *g) {                                                         \
        prep_##S p;                                                                                        \
        int inf = g->kind == GRID_FLOAT_INF;                                                               \
        p.lo = inf ? (T)-INFINITY : (T)g->lo;                                                              \
        p.hi = inf ? (T)INFINITY : (T)g->hi;                                                               \
        p.scale = (T)ldexp(1.0, g->frac);                                                                  \
        p.unscale = (T)ldexp(1.0, -g->frac);                                                               \
        p.period = (T)ldexp(1.0, g->bits - g->frac);                                                       \
        p.modulus = (T)ldexp(1.0, g->bits);                                                                \
        p.kmax1 = (T)(g->kmax + 1.0);                                                                      \
        p.kmin = (T)g->kmin;                                                                               \
        p.emin_bits = (I)(g->emin + BIAS) << MANT;                                                         \
        p.top_bits = (I)(2 * BIAS) << MANT;                                                                \
        p.min_normal = value_##S((U)p.emin_bits);                                                          \
        p.man_bits = (I)g->man << MANT;                                                                    \
        p.below_limit = (!g->subnormals && g->man != 0) ? p.emin_bits : 0;                                 \
        return p;                                                                                          \
    }                                                                                                      \
                                                                                                           \
    /* _round_ and _stochastic_: t to an integer, u the uniform in [0, 1) for stochastic */                \
    INLINE T round_##S(T t, int mode, T u) {                                                               \
        if (mode == NEAREST) return RINTF(t);                                                              \
        if (mode == FLOOR) return FLOORF(t);                                                               \
        if (mode == TOWARD_ZERO) return TRUNCF(t);                                                         \
        T low = FLOORF(t);                                                                                 \
        T up = CEILF((t - low) - u);                                                                       \
        return COPYSIGNF(low + up, low);                                                                   \
    }                                                                                                      \
                                                                                                           \
    INLINE T clamp_##S(T x, T lo, T hi) {                                                                  \
        x = x > hi ? hi : x; /* NaN compares false and stays NaN, as in torch.clamp */                     \
        return x < lo ? lo : x;                                                                            \
    }                                                                                                      \
                                                                                                           \
    /* kernel.sum_to_odd: a + b exactly, or its neighbour with an odd last bit on the side of the */       \
    /* exact sum (two-sum gives the error; an overflowed sum, with a NaN error, stays inf) */              \
    INLINE T sum_odd_##S(T a, T b) {                                                                       \
        T s = a + b;                                                                                       \
        T bb = s - a;                                                                                      \
        T err = (a - (s - bb)) + (b - bb);                                                                 \
        U sb = bits_##S(s);                                                                                \
        U fix = (U)(err != 0) & (U)(err - err == 0) & ~sb & 1; /* inexact, finite error, even last bit */  \
        U toward = (((bits_##S(err) ^ sb) >> (8 * sizeof(U) - 1)) << 1) - 1; /* -1: grow |s|, 1: shrink */ \
        return value_##S(sb - fix * toward);                                                               \
    }                                                                                                      \
                                                                                                           \
    /* _quantize_fixed: clamp, scale by 2**frac, round, scale back (a tiny negative floors to -1) */       \
    INLINE T fixed_##S(T x, prep_##S p, int mode, T u) {                                                   \
        x = clamp_##S(x, p.lo, p.hi);                                                                      \
        int negative = mode == FLOOR && x < 0;                                                             \
        x = round_##S(x * p.scale, mode, u);                                                               \
        x = (negative && x == 0) ? (T)-1 : x;                                                              \
        return x * p.unscale;                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* _quantize_float_grid with _quantum: x / 2**(e - man), rounded, times the quantum; the clamp   */    \
    /* after rounding changes nothing on a symmetric grid and keeps an asymmetric one inside itself */     \
    INLINE T float_##S(T x, prep_##S p, int mode, T u) {                                                   \
        x = clamp_##S(x, p.lo, p.hi);                                                                      \
        int negative = mode == FLOOR && x < 0;                                                             \
        I e = (I)(bits_##S(x) & (U)(EXPMASK));                                                             \
        I below = e < p.below_limit;                                                                       \
        e = e < p.emin_bits ? p.emin_bits : e;                                                             \
        e = e > p.top_bits ? p.top_bits : e;                                                               \
        e = below ? p.emin_bits : e - p.man_bits;                                                          \
        T quantum = value_##S((U)e);                                                                       \
        /* x / quantum as x * 2**(1 - k) * 0.5: both factors normal, each product exact or rounded */      \
        /* once like the quotient (dividing is several times slower) */                                   \
        T twice_inverse = value_##S((U)((((I)(2 * BIAS + 1)) << MANT) - e));                               \
        x = round_##S(x * twice_inverse * (T)0.5, mode, u);                                                \
        x = (negative && x == 0) ? (T)-1 : x;                                                              \
        return clamp_##S(x * quantum, p.lo, p.hi);                                                         \
    }                                                                                                      \
                                                                                                           \
    /* GRID_FLOAT: x is clamped to a finite range, so its exponent field is below the top one, and    */  \
    /* with man >= 1 the reciprocal 2**(emax_field - e) of the quantum is a normal number */               \
    INLINE T float_lean_##S(T x, prep_##S p, int mode, T u) {                                              \
        x = clamp_##S(x, p.lo, p.hi);                                                                      \
        int negative = mode == FLOOR && x < 0;                                                             \
        /* the exponent field of max(|x|, 2**emin): a float max, one instruction where AVX2 has */          \
        /* no 64-bit integer max */                                                                        \
        T magnitude = FABSF(x);                                                                            \
        magnitude = magnitude > p.min_normal ? magnitude : p.min_normal;                                   \
        I e = (I)(bits_##S(magnitude) & (U)(EXPMASK)) - p.man_bits;                                        \
        T inverse = value_##S((U)((((I)(2 * BIAS)) << MANT) - e));                                         \
        x = round_##S(x * inverse, mode, u);                                                               \
        x = (negative && x == 0) ? (T)-1 : x;                                                              \
        return x * value_##S((U)e);                                                                        \
    }                                                                                                      \
                                                                                                           \
    /* the same with IEEE overflow (_overflow_to_inf_): nearest goes to +-inf past max; directed */        \
    /* modes clamp to +-max, floor sends negative overflow to -inf, infinite inputs stay */                \
    INLINE T float_inf_##S(T x, prep_##S p, T max, int mode, T u) {                                        \
        T x_in = x;                                                                                        \
        x = float_##S(x, p, mode, u);                                                                      \
        if (mode == NEAREST) return (x > max || x < -max) ? COPYSIGNF((T)INFINITY, x) : x;                 \
        x = clamp_##S(x, -max, max);                                                                       \
        x = (mode == FLOOR && x_in < -max) ? (T)-INFINITY : x;                                             \
        return isinf(x_in) ? x_in : x;                                                                     \
    }

DEFINE_ROUNDING(float, uint32_t, int32_t, f32, 23, 127, 0x7F800000u, floorf, truncf, ceilf, rintf, copysignf, fabsf)
DEFINE_ROUNDING(double, uint64_t, int64_t, f64, 52, 1023, 0x7FF0000000000000ull, floor, trunc, ceil, rint, copysign, fabs)

/* _fmod_pow2: x - P trunc(x / P), 0 where only the quotient overflowed */
INLINE double fmod_pow2(double x, double period) {
    double r = x - trunc(x / period) * period;
    int only_quotient = (x - x == 0) & (r - r != 0); /* x finite, r not: x a multiple of P past 2**1023 P */
    return only_quotient ? 0.0 : r;
}

/* _quantize_wrap: modular two's complement, always in double */
INLINE double wrap_f64(double x, prep_f64 p, int mode, double u) {
    double r = fmod_pow2(x, p.period);
    int negative = (mode == FLOOR) & (r < 0);
    r = round_f64(r * p.scale, mode, u);
    r = (negative && r == 0) ? -1.0 : r;
    r = fmod_pow2(r, p.modulus);
    r = r - (r >= p.kmax1 ? p.modulus : 0.0);
    r = r + (r < p.kmin ? p.modulus : 0.0);
    r = r * p.unscale;
    return r == 0 ? copysign(0.0, x) : r;
}

INLINE float quantize_one_f32(float x, const grid_t *g, prep_f32 p, int kind, int mode, float u) {
    if (kind == GRID_FLOAT) return float_lean_f32(x, p, mode, u);
    if (kind == GRID_FIXED) return fixed_f32(x, p, mode, u);
    if (kind == GRID_FLOAT_INF) return float_inf_f32(x, p, (float)g->hi, mode, u);
    return float_f32(x, p, mode, u);
}

INLINE double quantize_one_f64(double x, const grid_t *g, prep_f64 p, int kind, int mode, double u) {
    if (kind == GRID_FLOAT) return float_lean_f64(x, p, mode, u);
    if (kind == GRID_FIXED) return fixed_f64(x, p, mode, u);
    if (kind == GRID_WRAP) return wrap_f64(x, p, mode, u);
    if (kind == GRID_FLOAT_INF) return float_inf_f64(x, p, g->hi, mode, u);
    return float_f64(x, p, mode, u);
}

/* ------------------------------------------------------------------------------ quantize
 * Elementwise, `rows` runs of n values: in (float or double) -> work type -> out (same type as in),
 * run r read from in + offsets[r] (offsets NULL: packed) and written packed to out. `uniform` (the
 * work type, packed like out) holds stochastic rounding's draws, NULL otherwise. */
#define QUANTIZE_CASES(NAME, kind)                                                                         \
    case kind * 4 + NEAREST: NAME##_body(in, out, uniform, rows, n, offsets, g, kind, NEAREST); break;     \
    case kind * 4 + FLOOR: NAME##_body(in, out, uniform, rows, n, offsets, g, kind, FLOOR); break;         \
    case kind * 4 + TOWARD_ZERO: NAME##_body(in, out, uniform, rows, n, offsets, g, kind, TOWARD_ZERO);    \
        break;                                                                                             \
    case kind * 4 + STOCHASTIC: NAME##_body(in, out, uniform, rows, n, offsets, g, kind, STOCHASTIC); break;

#define DEFINE_QUANTIZE(NAME, TIN, TW, S)                                                                  \
    INLINE void NAME##_body(const TIN *in, TIN *out, const TW *uniform, int64_t rows, int64_t n,           \
                            const int64_t *offsets, const grid_t *g, int kind, int mode) {                 \
        prep_##S p = prepare_##S(g);                                                                       \
        for (int64_t r = 0; r < rows; r++) {                                                               \
            const TIN *src = in + (offsets ? offsets[r] : r * n);                                          \
            TIN *dst = out + r * n;                                                                        \
            const TW *uni = uniform ? uniform + r * n : NULL;                                              \
            for (int64_t i = 0; i < n; i++) {                                                              \
                TW u = mode == STOCHASTIC ? uni[i] : (TW)0;                                                \
                dst[i] = (TIN)quantize_one_##S((TW)src[i], g, p, kind, mode, u);                           \
            }                                                                                              \
        }                                                                                                  \
    }                                                                                                      \
    CLONES static void NAME(const TIN *in, TIN *out, const TW *uniform, int64_t rows, int64_t n,           \
                            const int64_t *offsets, const grid_t *g, int mode) {                           \
        switch (g->kind * 4 + mode) {                                                                      \
            QUANTIZE_CASES(NAME, GRID_FLOAT)                                                               \
            QUANTIZE_CASES(NAME, GRID_FLOAT_ANY)                                                           \
            QUANTIZE_CASES(NAME, GRID_FLOAT_INF)                                                           \
            QUANTIZE_CASES(NAME, GRID_FIXED)                                                               \
            QUANTIZE_CASES(NAME, GRID_WRAP)                                                                \
        }                                                                                                  \
    }

DEFINE_QUANTIZE(quantize_f32_f32, float, float, f32)
DEFINE_QUANTIZE(quantize_f32_f64, float, double, f64)
DEFINE_QUANTIZE(quantize_f64_f64, double, double, f64)

/* ----------------------------------------------------------------------------------- dot
 * out[g, m, o] = sequential sum over k of q(q(a[g, m, k] * w[g, k, o])) in the work type T:
 *     total = 0; for k: total = q(total + q(a * w))
 * a is (G, M, K), w is (G, K, Opad) with Opad a multiple of LANES (zero columns past O), out is
 * (G, M, Opad). Only rows [row0, row1) of the flattened (G, M) are computed.
 *
 * Stochastic rounding draws u = (mix64(key + counter * GOLDEN) >> (64 - ubits)) * 2**-ubits with
 * counter = (index * K + k) * 2 + site (site 0 for the product, 1 for the sum) and index =
 * offset + g * stride_g + m * stride_m + o * stride_o, the element's position in the caller's
 * whole result: draws do not depend on tiling, threads or the order of the operands. ubits is 23
 * for float32 operands and 52 for float64 ones, whatever the lane type. */
#define TILE_ROWS 4

typedef struct {
    uint64_t key;
    int ubits;
    int64_t offset, stride_g, stride_m, stride_o;
} draws_t;

#define DEFINE_DOT(NAME, T, S, LANES)                                                                      \
    INLINE T NAME##_uniform(const draws_t *d, uint64_t counter) {                                          \
        return (T)(mix64(d->key + counter * GOLDEN) >> (64 - d->ubits)) * (T)ldexp(1.0, -d->ubits);         \
    }                                                                                                      \
    /* ROWS rows by LANES outputs, every running sum in a register-sized array */                          \
    INLINE void NAME##_tile(const T *a, const T *w, T *out, const int ROWS, int64_t K, int64_t O,          \
                            const grid_t *g, prep_##S p, int kind, int odd, int mode, const draws_t *d,    \
                            int64_t index, int64_t o0) {                                                   \
        T total[TILE_ROWS][LANES];                                                                         \
        for (int r = 0; r < ROWS; r++)                                                                     \
            for (int v = 0; v < LANES; v++) total[r][v] = 0;                                               \
        for (int64_t k = 0; k < K; k++) {                                                                  \
            const T *wk = w + k * O + o0;                                                                  \
            for (int r = 0; r < ROWS; r++) {                                                               \
                T av = a[r * K + k];                                                                       \
                for (int v = 0; v < LANES; v++) {                                                          \
                    T up = 0, us = 0;                                                                      \
                    if (mode == STOCHASTIC) {                                                              \
                        uint64_t at = (uint64_t)(index + r * d->stride_m + (o0 + v) * d->stride_o);        \
                        uint64_t c = (at * (uint64_t)K + (uint64_t)k) * 2u;                                \
                        up = NAME##_uniform(d, c);                                                         \
                        us = NAME##_uniform(d, c + 1u);                                                    \
                    }                                                                                      \
                    T prod = quantize_one_##S(av * wk[v], g, p, kind, mode, up);                           \
                    T sum = odd ? sum_odd_##S(total[r][v], prod) : total[r][v] + prod;                     \
                    total[r][v] = quantize_one_##S(sum, g, p, kind, mode, us);                             \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
        for (int r = 0; r < ROWS; r++)                                                                     \
            for (int v = 0; v < LANES; v++) out[r * O + o0 + v] = total[r][v];                             \
    }                                                                                                      \
    INLINE void NAME##_body(const T *a, const T *w, T *out, int64_t M, int64_t K, int64_t O,               \
                            int64_t row0, int64_t row1, const grid_t *g, int kind, int odd, int mode,      \
                            const draws_t *d) {                                                            \
        prep_##S p = prepare_##S(g);                                                                       \
        for (int64_t row = row0; row < row1;) {                                                            \
            int64_t gi = row / M, m = row % M;                                                             \
            int64_t left = M - m < row1 - row ? M - m : row1 - row;                                        \
            int full = left >= TILE_ROWS;                                                                  \
            const T *ag = a + (gi * M + m) * K, *wg = w + gi * K * O;                                      \
            T *og = out + (gi * M + m) * O;                                                                \
            int64_t index = d->offset + gi * d->stride_g + m * d->stride_m;                                \
            for (int64_t o0 = 0; o0 < O; o0 += LANES) {                                                    \
                if (full)                                                                                  \
                    NAME##_tile(ag, wg, og, TILE_ROWS, K, O, g, p, kind, odd, mode, d, index, o0);         \
                else                                                                                       \
                    NAME##_tile(ag, wg, og, 1, K, O, g, p, kind, odd, mode, d, index, o0);                 \
            }                                                                                              \
            row += full ? TILE_ROWS : 1;                                                                   \
        }                                                                                                  \
    }

#define DOT_CASE(NAME, kind, odd, mode)                                                                    \
    case ((kind) * 2 + (odd)) * 4 + (mode): NAME##_body(a, w, out, M, K, O, row0, row1, g, kind, odd, mode, d); break;
#define DOT_MODES(NAME, kind, odd)                                                                         \
    DOT_CASE(NAME, kind, odd, NEAREST) DOT_CASE(NAME, kind, odd, FLOOR) DOT_CASE(NAME, kind, odd, TOWARD_ZERO) \
    DOT_CASE(NAME, kind, odd, STOCHASTIC)

/* sums rounded to odd only on float grids (fixed-point sums are exact in the work type) */
#define DEFINE_DOT_ENTRY(NAME, T)                                                                          \
    CLONES static void NAME(const T *a, const T *w, T *out, int64_t M, int64_t K, int64_t O, int64_t row0,  \
                            int64_t row1, const grid_t *g, int mode, int odd, const draws_t *d) {          \
        switch ((g->kind * 2 + odd) * 4 + mode) {                                                          \
            DOT_MODES(NAME, GRID_FLOAT, 0)                                                                 \
            DOT_MODES(NAME, GRID_FLOAT, 1)                                                                 \
            DOT_MODES(NAME, GRID_FLOAT_ANY, 0)                                                             \
            DOT_MODES(NAME, GRID_FLOAT_ANY, 1)                                                             \
            DOT_MODES(NAME, GRID_FLOAT_INF, 0)                                                             \
            DOT_MODES(NAME, GRID_FLOAT_INF, 1)                                                             \
            DOT_MODES(NAME, GRID_FIXED, 0)                                                                 \
            DOT_MODES(NAME, GRID_WRAP, 0)                                                                  \
        }                                                                                                  \
    }

DEFINE_DOT(dot_f32, float, f32, 16)
DEFINE_DOT(dot_f64, double, f64, 8)
DEFINE_DOT_ENTRY(dot_f32, float)
DEFINE_DOT_ENTRY(dot_f64, double)

/* --------------------------------------------------------------------------- Python glue */
static int parse_grid(PyObject *t, grid_t *g) {
    if (!PyArg_ParseTuple(t, "iiiiddiidd;grid: (kind, man, emin, subnormals, lo, hi, frac, bits, kmin, kmax)", &g->kind,
                          &g->man, &g->emin, &g->subnormals, &g->lo, &g->hi, &g->frac, &g->bits, &g->kmin, &g->kmax))
        return 0;
    if (g->kind < 0 || g->kind >= GRID_KINDS) {
        PyErr_Format(PyExc_ValueError, "grid kind %d is not 0..%d", g->kind, GRID_KINDS - 1);
        return 0;
    }
    if (g->kind == GRID_FLOAT && !(g->man >= 1 && g->subnormals && g->lo == -g->hi && isfinite(g->hi))) {
        PyErr_Format(PyExc_ValueError, "grid kind 0 needs a symmetric finite range, subnormals and man >= 1");
        return 0;
    }
    return 1;
}

static int check_mode(int mode) {
    if (mode < NEAREST || mode > STOCHASTIC) {
        PyErr_Format(PyExc_ValueError, "rounding mode code %d is not 0..3", mode);
        return 0;
    }
    return 1;
}

/* quantize(variant, in, out, uniform, rows, n, offsets, grid, mode): `rows` runs of n values, run r
 * of the input at element offsets[r] (offsets 0: packed like out), out's (and uniform's) packed;
 * variant 0 float->float in float, 1 float in double, 2 double; pointers as integers (uniform 0
 * unless stochastic). */
static PyObject *py_quantize(PyObject *self, PyObject *args) {
    int variant, mode;
    unsigned long long pin, pout, puni, poffsets;
    long long rows, n;
    PyObject *grid;
    grid_t g;
    if (!PyArg_ParseTuple(args, "iKKKLLKOi", &variant, &pin, &pout, &puni, &rows, &n, &poffsets, &grid, &mode)) return NULL;
    if (!parse_grid(grid, &g) || !check_mode(mode)) return NULL;
    if ((mode == STOCHASTIC) != (puni != 0)) return PyErr_Format(PyExc_ValueError, "uniforms go with stochastic rounding only");
    if (g.kind == GRID_WRAP && variant == 0) return PyErr_Format(PyExc_ValueError, "wrapping grids work in double");
    const int64_t *offsets = (const int64_t *)poffsets;
    Py_BEGIN_ALLOW_THREADS
    if (variant == 0)
        quantize_f32_f32((const float *)pin, (float *)pout, (const float *)puni, rows, n, offsets, &g, mode);
    else if (variant == 1)
        quantize_f32_f64((const float *)pin, (float *)pout, (const double *)puni, rows, n, offsets, &g, mode);
    else
        quantize_f64_f64((const double *)pin, (double *)pout, (const double *)puni, rows, n, offsets, &g, mode);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* dot(double, a, w, out, M, K, O, row0, row1, grid, mode, odd, (key, ubits, offset, stride_g, stride_m, stride_o)) */
static PyObject *py_dot(PyObject *self, PyObject *args) {
    int is_double, mode, odd;
    unsigned long long pa, pw, pout;
    long long M, K, O, row0, row1;
    PyObject *grid;
    grid_t g;
    draws_t d;
    unsigned long long key;
    long long offset, sg, sm, so;
    if (!PyArg_ParseTuple(args, "iKKKLLLLLOii(KiLLLL)", &is_double, &pa, &pw, &pout, &M, &K, &O, &row0, &row1, &grid,
                          &mode, &odd, &key, &d.ubits, &offset, &sg, &sm, &so))
        return NULL;
    if (!parse_grid(grid, &g) || !check_mode(mode)) return NULL;
    if (g.kind == GRID_WRAP && !is_double) return PyErr_Format(PyExc_ValueError, "wrapping grids work in double");
    if (odd != 0 && (odd != 1 || g.kind == GRID_FIXED || g.kind == GRID_WRAP))
        return PyErr_Format(PyExc_ValueError, "sums rounded to odd are for float grids only");
    if (O % (is_double ? 8 : 16)) return PyErr_Format(PyExc_ValueError, "O must be padded to the lane count");
    if (d.ubits != 23 && d.ubits != 52) return PyErr_Format(PyExc_ValueError, "ubits must be 23 or 52");
    d.key = key;
    d.offset = offset;
    d.stride_g = sg;
    d.stride_m = sm;
    d.stride_o = so;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        dot_f64((const double *)pa, (const double *)pw, (double *)pout, M, K, O, row0, row1, &g, mode, odd, &d);
    else
        dot_f32((const float *)pa, (const float *)pw, (float *)pout, M, K, O, row0, row1, &g, mode, odd, &d);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"quantize", py_quantize, METH_VARARGS, "Round n values onto a grid (see quantscope.native)."},
    {"dot", py_dot, METH_VARARGS, "Sequential rounded dot products over a range of rows (see quantscope.native)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "quantscope's native CPU kernels.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *all = Py_BuildValue("[ss]", "quantize", "dot");
    if (!all || PyModule_AddObject(m, "__all__", all) < 0) {
        Py_XDECREF(all);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

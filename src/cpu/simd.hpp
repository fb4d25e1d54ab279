#pragma once
// The vector vocabulary of the CPU kernels: 8 doubles per vector whatever the instruction
// set, loads and stores, and the vector exp and log. Only for the kernel files, which
// compile each kernel once per instruction-set level (CUEM_CLONES).
#include <cmath>

// One clone per instruction-set level, chosen by the loader (ifunc). Helpers below are
// always inlined, so each clone gets them compiled for its own level; nothing compiled for
// a higher level is ever shared with the baseline (no ODR hazard).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) && \
    !defined(CUEM_NO_TARGET_CLONES)
#define CUEM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define CUEM_HAVE_CLONES 1
#else
#define CUEM_CLONES
#endif
#define CUEM_INLINE inline __attribute__((always_inline))
#define CUEM_INLINE_LAMBDA __attribute__((always_inline))

// The helpers pass 64-byte vectors by value; they are always inlined, so the baseline
// clone's different calling convention for them never matters.
#pragma GCC diagnostic ignored "-Wpsabi"


namespace cuem::cpu::simd {

using v8d = double __attribute__((vector_size(64)));
using v8l = long long __attribute__((vector_size(64)));
using v8ul = unsigned long long __attribute__((vector_size(64)));
using v8d_u = double __attribute__((vector_size(64), aligned(8)));  // unaligned access

CUEM_INLINE v8d load(const double* p) { return *reinterpret_cast<const v8d_u*>(p); }
CUEM_INLINE void store(double* p, v8d v) { *reinterpret_cast<v8d_u*>(p) = v; }
// For constants. GCC 12 builds a braced {x, x, ...} 512-bit vector from eight masked
// broadcasts, so this is a sum (folded for constants); hot loops rather write a scalar
// operand (`v * x`), which becomes an embedded broadcast ({1to8}) on AVX-512.
CUEM_INLINE v8d splat(double x) { return v8d{} + x; }
CUEM_INLINE v8d vmax(v8d a, v8d b) { return a > b ? a : b; }

// An 8 x 8 block transposed: out[j][r] = in[r][j], in three rounds of two-source shuffles.
CUEM_INLINE void transpose8x8(const v8d* in, v8d* out) {
  v8d t[8], u[8];
  for (int r = 0; r < 8; r += 2) {
    t[r] = __builtin_shuffle(in[r], in[r + 1], v8l{0, 8, 2, 10, 4, 12, 6, 14});
    t[r + 1] = __builtin_shuffle(in[r], in[r + 1], v8l{1, 9, 3, 11, 5, 13, 7, 15});
  }
  for (int h = 0; h < 8; h += 4)
    for (int o = 0; o < 2; ++o) {
      u[h + o] = __builtin_shuffle(t[h + o], t[h + o + 2], v8l{0, 1, 8, 9, 4, 5, 12, 13});
      u[h + o + 2] = __builtin_shuffle(t[h + o], t[h + o + 2], v8l{2, 3, 10, 11, 6, 7, 14, 15});
    }
  // u[0]: columns 0 and 4 of rows 0-3, u[1]: 1 and 5, u[2]: 2 and 6, u[3]: 3 and 7; u[4..7]
  // the same for rows 4-7.
  for (int c = 0; c < 4; ++c) {
    out[c] = __builtin_shuffle(u[c], u[c + 4], v8l{0, 1, 2, 3, 8, 9, 10, 11});
    out[c + 4] = __builtin_shuffle(u[c], u[c + 4], v8l{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// exp(t) for t <= 0, 0 below -708 (where exp would be subnormal) and for -inf.
// t = (8n + j) ln2 / 8 + r with j in 0..7 and |r| <= ln2 / 16 (Cody-Waite with a two-part
// ln2 / 8, exact products for |8n + j| < 2^13); exp(t) = 2^n 2^(j/8) exp(r), 2^(j/8) from
// an eight-entry table held in one vector (one permute), exp(r) - 1 by its Taylor polynomial
// of degree 8 (truncation below 2e-18 relative), 2^n built in the exponent bits.
CUEM_INLINE v8d exp_nonpositive(v8d t) {
  const v8d shifter = splat(0x1.8p52);  // adding it rounds to an integer held in the low bits
  const v8d kd = t * splat(11.541560327111707) + shifter;  // 8 / ln2
  const v8d n8 = kd - shifter;
  v8d r = t - n8 * splat(6.93147180369123816490e-01 / 8);
  r = r - n8 * splat(1.90821492927058770002e-10 / 8);
  v8d p = splat(1.0 / 40320.0);
  p = p * r + splat(1.0 / 5040.0);
  p = p * r + splat(1.0 / 720.0);
  p = p * r + splat(1.0 / 120.0);
  p = p * r + splat(1.0 / 24.0);
  p = p * r + splat(1.0 / 6.0);
  p = p * r + splat(0.5);
  p = p * r + splat(1.0);
  const v8d em1 = p * r;  // exp(r) - 1: added last, to the table's value, for less rounding
  // GCC's casts between vector types of one size reinterpret the bits. Unsigned: lanes
  // past -708 (masked below) hold anything, and signed overflow would be undefined.
  const v8ul ni = (v8ul)kd - (v8ul)shifter;  // NOLINT(google-readability-casting)  8n + j
  const v8d table = {0x1p0,
                     1.0905077326652577,  // 2^(1/8)
                     1.189207115002721,   // 2^(2/8)
                     1.2968395546510096,  // 2^(3/8)
                     1.4142135623730951,  // 2^(4/8)
                     1.5422108254079407,  // 2^(5/8)
                     1.6817928305074290,  // 2^(6/8)
                     1.8340080864093424};  // 2^(7/8)
  const v8ul bits = ((ni & ~7ULL) << 49) + (1023ULL << 52);  // (n + 1023) << 52
  const v8d scale = (v8d)bits;                                  // NOLINT(google-readability-casting)
  const v8d zero = splat(0.0);
  const v8d tj = __builtin_shuffle(table, (v8l)(ni & 7));  // NOLINT(google-readability-casting)
  return t < splat(-708.0) ? zero : (tj + tj * em1) * scale;
}

// log(s) for positive normal s: s = 2^e m with m in [sqrt(1/2), sqrt(2)), and
// log m = 2 atanh(f) = 2 (f + f^3/3 + ... + f^23/23), f = (m - 1) / (m + 1), |f| <= 0.172
// (truncation below 1e-18 relative).
CUEM_INLINE v8d log_positive(v8d s) {
  const v8l bits = (v8l)s;  // NOLINT(google-readability-casting)
  const v8l mant_mask = v8l{} + 0x000FFFFFFFFFFFFFLL;
  const v8l one_bits = v8l{} + 0x3FF0000000000000LL;
  v8l ex = (bits >> 52) - 1023;
  v8d m = (v8d)((bits & mant_mask) | one_bits);  // NOLINT(google-readability-casting)
  const v8l big = m > splat(1.4142135623730951);
  m = big ? m * splat(0.5) : m;
  ex = ex - big;  // a true comparison is -1
  const v8d f = (m - splat(1.0)) / (m + splat(1.0));
  const v8d f2 = f * f;
  v8d p = splat(1.0 / 23.0);
  p = p * f2 + splat(1.0 / 21.0);
  p = p * f2 + splat(1.0 / 19.0);
  p = p * f2 + splat(1.0 / 17.0);
  p = p * f2 + splat(1.0 / 15.0);
  p = p * f2 + splat(1.0 / 13.0);
  p = p * f2 + splat(1.0 / 11.0);
  p = p * f2 + splat(1.0 / 9.0);
  p = p * f2 + splat(1.0 / 7.0);
  p = p * f2 + splat(1.0 / 5.0);
  p = p * f2 + splat(1.0 / 3.0);
  const v8d logm = splat(2.0) * f + splat(2.0) * f * (f2 * p);
  const v8d e = __builtin_convertvector(ex, v8d);
  return e * splat(6.93147180369123816490e-01) + (logm + e * splat(1.90821492927058770002e-10));
}

}  // namespace cuem::cpu::simd

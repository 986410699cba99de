// Runs impasto's kernels on the host emulator (cuda_emu.h) against fp64 references written here, at small shapes
// that still take every path: vector and scalar elementwise, register and fallback layer norm, both RoPE sizes, the
// column-sum split, every dequantizer, the GEMV fast and slow paths, and the tensor-core and generic attention
// (forward and backward). Build and run: kernels/emu/run.sh. Exit status = number of failed checks.
#include "cuda_emu.h"
#include "../impasto.cu"

#include <cstdio>
#include <random>
#include <string>

static int failures = 0, checks = 0;

static void expect(const std::string& what, const std::vector<double>& got, const std::vector<double>& ref, double tol) {
  checks++;
  double num = 0, den = 0, worst = -1;
  size_t wi = 0;
  bool nan = false;
  for (size_t i = 0; i < ref.size(); i++) {
    if (!std::isfinite(got[i]) && std::isfinite(ref[i])) nan = true;
    double d = got[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    double e = std::isfinite(d) ? std::fabs(d) : 1e300;
    if (e > worst) { worst = e; wi = i; }
  }
  double rel = den == 0 ? (num == 0 ? 0 : 1e300) : std::sqrt(num / den);
  bool ok = !nan && rel <= tol;
  if (!ok) failures++;
  std::printf("%-4s %-60s rel %.3g (tol %.1g)%s", ok ? "ok" : "FAIL", what.c_str(), rel, tol, ok ? "\n" : "");
  if (!ok) std::printf("  worst [%zu] got %.9g ref %.9g\n", wi, got[wi], ref[wi]);
}

static std::mt19937_64 rng(1234);
static std::vector<double> gauss(size_t n, double s = 1) {
  std::normal_distribution<double> d(0, s);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

template <typename T> static T cvt(double v) { return from_f<T>((float)v); }
template <typename T> static std::vector<T> to_t(const std::vector<double>& v) {
  std::vector<T> o(v.size());
  for (size_t i = 0; i < v.size(); i++) o[i] = cvt<T>(v[i]);
  return o;
}
template <typename T> static std::vector<double> from_t(const std::vector<T>& v) {
  std::vector<double> o(v.size());
  for (size_t i = 0; i < v.size(); i++) o[i] = to_f(v[i]);
  return o;
}
template <typename T> static double rt(double v) { return to_f(cvt<T>(v)); }  // round to T

// ------------------------------------------------------------------------------------------------ elementwise

static void test_elementwise() {
  // bf16 add on a view [5, 37] of [5, 48] at column 8 (vectors of 8 + a tail of 5), and contiguous [3, 61]
  for (int pass = 0; pass < 2; pass++) {
    long rows = pass == 0 ? 5 : 3, cols = pass == 0 ? 37 : 61, ld = pass == 0 ? 48 : 61, off = pass == 0 ? 8 : 0;
    auto a = to_t<bf16>(gauss(rows * ld)), b = to_t<bf16>(gauss(rows * ld));
    std::vector<bf16> o(rows * ld, cvt<bf16>(7.0));
    emu_launch(impasto_add_bf16, dim(2), dim(256), 0, o.data() + off, ld, a.data() + off, ld, b.data() + off, ld, rows, cols);
    std::vector<double> got, ref;
    for (long r = 0; r < rows; r++)
      for (long c = 0; c < ld; c++) {
        got.push_back(to_f(o[r * ld + c]));
        bool in = c >= off && c < off + cols;
        ref.push_back(in ? rt<bf16>((double)to_f(a[r * ld + c]) + to_f(b[r * ld + c])) : 7.0);
      }
    expect("add bf16 " + std::to_string(rows) + "x" + std::to_string(cols) + (off ? " view" : ""), got, ref, 1e-6);
  }
  // f32 gelu + gelu_bwd (beta 1) + silu on [7, 13]
  {
    long n = 7 * 13;
    auto x = gauss(n, 2.5), g = gauss(n);
    std::vector<float> xf(x.begin(), x.end()), gf(g.begin(), g.end()), o(n), dx(n, 0.5f), s(n);
    emu_launch(impasto_gelu_f32, dim(1), dim(256), 0, o.data(), 13L, xf.data(), 13L, 7L, 13L);
    emu_launch(impasto_gelu_bwd_f32, dim(1), dim(256), 0, dx.data(), 13L, gf.data(), 13L, xf.data(), 13L, 7L, 13L, 1.0f);
    emu_launch(impasto_silu_f32, dim(1), dim(256), 0, s.data(), 13L, xf.data(), 13L, 7L, 13L);
    std::vector<double> go(o.begin(), o.end()), gd(dx.begin(), dx.end()), gs(s.begin(), s.end()), ro(n), rd(n), rs(n);
    const double C = std::sqrt(2 / M_PI);
    for (long i = 0; i < n; i++) {
      double v = xf[i], u = C * (v + 0.044715 * v * v * v), th = std::tanh(u);
      ro[i] = 0.5 * v * (1 + th);
      rd[i] = (double)gf[i] * (0.5 * (1 + th) + 0.5 * v * (1 - th * th) * C * (1 + 3 * 0.044715 * v * v)) + 0.5;
      rs[i] = v / (1 + std::exp(-v));
    }
    expect("gelu f32", go, ro, 1e-6);
    expect("gelu_bwd f32 beta 1", gd, rd, 1e-6);
    expect("silu f32", gs, rs, 1e-6);
  }
  // gated residual bf16 with per-batch gate (B 2, 3 rows each, D 20 with gate a view of [2, 60])
  {
    long b = 2, per = 3, d = 20;
    auto x = to_t<bf16>(gauss(b * per * d)), y = to_t<bf16>(gauss(b * per * d)), gate = to_t<bf16>(gauss(b * 60));
    std::vector<double> ref(x.size());
    for (long r = 0; r < b * per; r++)
      for (long c = 0; c < d; c++)
        ref[r * d + c] = rt<bf16>(to_f(x[r * d + c]) + (double)to_f(gate[(r / per) * 60 + 20 + c]) * to_f(y[r * d + c]));
    emu_launch(impasto_gated_residual_bf16, dim(1), dim(256), 0, x.data(), d, gate.data() + 20, 60L, y.data(), d, b * per, d, per);
    expect("gated_residual bf16", from_t(x), ref, 1e-6);
  }
  // column sums: dgate[b] = sum over b's rows of dx * y (B 2, 70 rows each, 37 columns, 3 splits)
  {
    long b = 2, per = 70, d = 37, splits = 3, chunk = (per + splits - 1) / splits;
    auto dx = to_t<float>(gauss(b * per * d)), y = to_t<float>(gauss(b * per * d));
    std::vector<float> partial(splits * b * d, NAN), out(b * d, NAN);
    emu_launch(impasto_colsum_product_f32, dim((d + 31) / 32, b, splits), dim(32, 8), 0, partial.data(), dx.data(), d, y.data(), d, d, per, chunk);
    emu_launch(impasto_colsum_finish_f32, dim(1), dim(256), 0, out.data(), d, (float*)nullptr, 0L, partial.data(), splits, b, d);
    std::vector<double> ref(b * d, 0.0), got(out.begin(), out.end());
    for (long r = 0; r < b * per; r++)
      for (long c = 0; c < d; c++) ref[(r / per) * d + c] += (double)dx[r * d + c] * y[r * d + c];
    expect("colsum_product + finish f32 (3 splits)", got, ref, 1e-6);
  }
  // mse with gradient, sum of squares, nonfinite
  {
    long rows = 9, cols = 11;
    auto p = to_t<float>(gauss(rows * cols)), t = to_t<float>(gauss(rows * cols));
    float loss = 0, ss = 0;
    std::vector<float> grad(rows * cols, NAN);
    emu_launch(impasto_mse_f32, dim(2), dim(256), 0, &loss, grad.data(), cols, p.data(), cols, t.data(), cols, rows, cols, 0.5f);
    emu_launch(impasto_sum_squares_f32, dim(2), dim(256), 0, &ss, p.data(), cols, rows, cols);
    double rl = 0, rss = 0;
    std::vector<double> rg(rows * cols), gg(grad.begin(), grad.end());
    for (long i = 0; i < rows * cols; i++) {
      double d = (double)p[i] - t[i];
      rl += d * d;
      rss += (double)p[i] * p[i];
      rg[i] = 0.5 * 2 * d / (rows * cols);
    }
    expect("mse loss", {loss}, {rl / (rows * cols)}, 1e-6);
    expect("mse grad", gg, rg, 1e-6);
    expect("sum_squares", {ss}, {rss}, 1e-6);
    int flag = 0;
    p[37] = INFINITY;
    emu_launch(impasto_nonfinite_f32, dim(2), dim(256), 0, &flag, p.data(), cols, rows, cols);
    expect("nonfinite finds inf", {(double)flag}, {1.0}, 0);
  }
}

// ------------------------------------------------------------------------------------------------ random

static void test_random() {
  // blocks from dev.impasto.tensor.Philox.block(counter, stream, 0x5eed1234abcd)
  struct { unsigned long long c; unsigned s; uint32_t v[4]; } ref[] = {
      {0ULL, 0, {0x61f923f7u, 0xe4ce1968u, 0x94efaed0u, 0xbb9347a2u}}, {0ULL, 1, {0xcd726936u, 0x4d814f4cu, 0xaf90ab4du, 0x47f5595au}},
      {1ULL, 0, {0x5cbb6620u, 0xa5ad98c2u, 0x9986359cu, 0xd2938cddu}}, {5ULL, 1, {0x48145738u, 0xe4326018u, 0x744f336eu, 0x50fd17bau}},
      {4294967299ULL, 0, {0xf479a81du, 0xd0017e48u, 0xb7b9ca55u, 0xbda3c56bu}},
      {4294967299ULL, 1, {0x5a360c2fu, 0x93a53960u, 0x09f1ec75u, 0xdcd9fd40u}}};
  std::vector<double> got, want;
  for (auto& r : ref) {
    uint4 b = philox4x32_10(r.c, r.s, 0x5eed1234abcdULL);
    uint32_t g[4] = {b.x, b.y, b.z, b.w};
    for (int i = 0; i < 4; i++) {
      got.push_back(g[i]);
      want.push_back(r.v[i]);
    }
  }
  expect("philox4x32_10 == Java Philox.block", got, want, 0);
  // Philox.normals(8 values, seed 42) from Java, on a strided [2, 4] view
  double normals[] = {-1.351092145, 0.270192088, -0.210754140, 0.328155554, -1.380854427, 2.625373605, -1.151983252, 0.340061173};
  std::vector<float> o(2 * 6, 9.f);
  emu_launch(impasto_randn_f32, dim(1), dim(256), 0, o.data() + 1, 6L, 2L, 4L, 42LL);
  std::vector<double> g2, w2;
  for (int r = 0; r < 2; r++)
    for (int c = 0; c < 6; c++) {
      g2.push_back(o[r * 6 + c]);
      w2.push_back(c >= 1 && c < 5 ? normals[r * 4 + c - 1] : 9.0);
    }
  expect("randn f32 view == Java Philox.normals", g2, w2, 1e-6);
  // dropout: keep = (bits >> 8) >= ceil(p 2^24) on the uniform stream
  {
    long n = 4 * 5;
    std::vector<float> x(n, 1.f), out(n);
    double p = 0.3;
    emu_launch(impasto_dropout_f32, dim(1), dim(256), 0, out.data(), 5L, x.data(), 5L, 4L, 5L, (int)std::ceil(p * 16777216.0), (float)(1 / (1 - p)), 77LL);
    std::vector<double> gd(out.begin(), out.end()), rd(n);
    for (long i = 0; i < n; i++) {
      uint4 b = philox4x32_10((uint64_t)(i / 4), 1, 77);
      uint32_t bits[4] = {b.x, b.y, b.z, b.w};
      double u = (bits[i % 4] >> 8) * 0x1p-24;
      rd[i] = u >= p ? 1 / (1 - p) : 0;
    }
    expect("dropout mask", gd, rd, 1e-6);
  }
}

// ------------------------------------------------------------------------------------------------ layer norm

template <typename T>
static void test_layernorm(long b, long per, long d, bool mod, const char* name) {
  long rows = b * per, ld = d + 8, mld = 3 * d;
  auto x = to_t<T>(gauss(rows * ld, 2)), m = to_t<T>(gauss(b * mld, 0.5)), dy = to_t<T>(gauss(rows * d));
  std::vector<T> o(rows * d, cvt<T>(NAN)), dx(rows * d, cvt<T>(NAN));
  std::vector<float> mean(rows), rstd(rows);
  const T* shift = mod ? m.data() : nullptr;
  const T* scale = mod ? m.data() + d : nullptr;
  auto fwd = [&](auto k) {
    emu_launch(k, dim(1), dim(256), 0, o.data(), d, mean.data(), rstd.data(), x.data() + 8, ld, shift, mld, scale, mld, rows, d, per);
  };
  auto bwd = [&](auto k) {
    emu_launch(k, dim(1), dim(256), 0, dx.data(), d, dy.data(), d, x.data() + 8, ld, mean.data(), rstd.data(), scale, mld, rows, d, per, 0.f);
  };
  if constexpr (sizeof(T) == 2) { fwd(impasto_ln_mod_bf16); bwd(impasto_ln_mod_bwd_bf16); }
  else { fwd(impasto_ln_mod_f32); bwd(impasto_ln_mod_bwd_f32); }
  std::vector<double> ro(rows * d), rdx(rows * d), rm(rows), rr(rows), dsh(b * d, 0), dsc(b * d, 0);
  for (long r = 0; r < rows; r++) {
    double mu = 0, var = 0;
    for (long c = 0; c < d; c++) mu += to_f(x[r * ld + 8 + c]);
    mu /= d;
    for (long c = 0; c < d; c++) var += std::pow(to_f(x[r * ld + 8 + c]) - mu, 2);
    double rs = 1 / std::sqrt(var / d + 1e-6);
    rm[r] = mu;
    rr[r] = rs;
    long bb = r / per;
    double mg = 0, mgn = 0;
    std::vector<double> n(d), gs(d);
    for (long c = 0; c < d; c++) {
      n[c] = (to_f(x[r * ld + 8 + c]) - (double)mean[r]) * rstd[r];
      double sc = mod ? to_f(m[bb * mld + d + c]) : 0, sh = mod ? to_f(m[bb * mld + c]) : 0;
      ro[r * d + c] = rt<T>((1 + sc) * ((to_f(x[r * ld + 8 + c]) - mu) * rs) + sh);
      gs[c] = to_f(dy[r * d + c]) * (1 + sc);
      mg += gs[c];
      mgn += gs[c] * n[c];
      dsh[bb * d + c] += to_f(dy[r * d + c]);
      dsc[bb * d + c] += to_f(dy[r * d + c]) * n[c];
    }
    mg /= d;
    mgn /= d;
    for (long c = 0; c < d; c++) rdx[r * d + c] = rt<T>(rstd[r] * (gs[c] - mg - n[c] * mgn));
  }
  double tol = sizeof(T) == 2 ? 1e-2 : 1e-5;
  expect(std::string("ln_mod ") + name, from_t(o), ro, tol);
  expect(std::string("ln_mod mean ") + name, std::vector<double>(mean.begin(), mean.end()), rm, 1e-5);
  expect(std::string("ln_mod rstd ") + name, std::vector<double>(rstd.begin(), rstd.end()), rr, 1e-5);
  expect(std::string("ln_mod_bwd dx ") + name, from_t(dx), rdx, tol);
  // parameter gradients through the split column sums
  long splits = 2, chunk = (per + splits - 1) / splits;
  std::vector<float> partial(2 * splits * b * d, NAN);
  std::vector<T> gsh(b * d, cvt<T>(NAN)), gsc(b * d, cvt<T>(NAN));
  if constexpr (sizeof(T) == 2) {
    emu_launch(impasto_ln_mod_bwd_params_bf16, dim((d + 31) / 32, b, splits), dim(32, 8), 0, partial.data(), dy.data(), d, x.data() + 8, ld, mean.data(), rstd.data(), d, per, chunk);
    emu_launch(impasto_colsum_finish_bf16, dim(1), dim(256), 0, gsh.data(), d, gsc.data(), d, partial.data(), splits, b, d);
  } else {
    emu_launch(impasto_ln_mod_bwd_params_f32, dim((d + 31) / 32, b, splits), dim(32, 8), 0, partial.data(), dy.data(), d, x.data() + 8, ld, mean.data(), rstd.data(), d, per, chunk);
    emu_launch(impasto_colsum_finish_f32, dim(1), dim(256), 0, gsh.data(), d, gsc.data(), d, partial.data(), splits, b, d);
  }
  for (auto& v : dsh) v = rt<T>(v);
  for (auto& v : dsc) v = rt<T>(v);
  expect(std::string("ln_mod_bwd dshift ") + name, from_t(gsh), dsh, tol);
  expect(std::string("ln_mod_bwd dscale ") + name, from_t(gsc), dsc, tol);
}

// ------------------------------------------------------------------------------------------------ rope

template <typename T>
static void test_rope(int heads, int dh, const char* name) {
  long b = 2, len = 3, ltot = 5, off = 1, hd = (long)heads * dh, ld = 3 * hd + 6;
  auto qkv = to_t<T>(gauss(b * len * ld)), qs = to_t<T>(gauss(dh, 0.3)), ks = to_t<T>(gauss(dh, 0.3)), g = to_t<T>(gauss(3 * b * ltot * hd));
  for (auto& v : qs) v = cvt<T>(1 + to_f(v));
  for (auto& v : ks) v = cvt<T>(1 + to_f(v));
  std::vector<float> pe(ltot * dh);
  for (size_t i = 0; i < pe.size(); i += 2) {
    double a = (double)(rng() % 10000) / 1000;
    pe[i] = (float)std::cos(a);
    pe[i + 1] = (float)std::sin(a);
  }
  std::vector<T> q(b * ltot * hd, cvt<T>(5)), k(q), v(q), dqkv(b * len * ld, cvt<T>(5));
  std::vector<float> qr(b * heads * len, NAN);
  const T* in = qkv.data() + 2;
  auto run = [&](auto f, auto fb) {
    emu_launch(f, dim(2), dim(256), 0, q.data(), k.data(), v.data(), qr.data(), (float*)nullptr, in, ld, qs.data(), ks.data(), pe.data(), b, len, ltot, heads, dh, off);
    emu_launch(fb, dim(2), dim(256), 0, dqkv.data() + 2, ld, g.data(), g.data() + b * ltot * hd, g.data() + 2 * b * ltot * hd, in, ld, qs.data(), ks.data(), pe.data(), b, len, ltot, heads, dh, off);
  };
  if constexpr (sizeof(T) == 2) run(impasto_qk_norm_rope_bf16, impasto_qk_norm_rope_bwd_bf16);
  else run(impasto_qk_norm_rope_f32, impasto_qk_norm_rope_bwd_f32);
  std::vector<double> rq(q.size(), 5), rk(k.size(), 5), rv(v.size(), 5), rr(qr.size()), rd(dqkv.size(), 5);
  for (long bb = 0; bb < b; bb++)
    for (long l = 0; l < len; l++)
      for (int h = 0; h < heads; h++) {
        long pos = off + l, orow = (bb * ltot + pos) * hd + h * dh, irow = (bb * len + l) * ld + 2 + h * dh;
        for (int part = 0; part < 3; part++) {
          const T* src = qkv.data() + irow + part * hd;
          if (part == 2) {
            for (int c = 0; c < dh; c++) rv[orow + c] = to_f(src[c]);
            for (int c = 0; c < dh; c++) rd[irow + 2 * hd + c] = to_f(g[2 * b * ltot * hd + orow + c]);
            continue;
          }
          const std::vector<T>& sc = part == 0 ? qs : ks;
          double ss = 0;
          for (int c = 0; c < dh; c++) ss += std::pow(to_f(src[c]), 2);
          double rs = 1 / std::sqrt(ss / dh + 1e-6);
          if (part == 0) rr[(bb * heads + h) * len + l] = rs;
          std::vector<double>& out = part == 0 ? rq : rk;
          std::vector<double> gn(dh);
          double dot = 0;
          for (int j = 0; j < dh / 2; j++) {
            double cs = pe[(pos * dh / 2 + j) * 2], sn = pe[(pos * dh / 2 + j) * 2 + 1];
            double y0 = to_f(src[2 * j]) * rs * to_f(sc[2 * j]), y1 = to_f(src[2 * j + 1]) * rs * to_f(sc[2 * j + 1]);
            out[orow + 2 * j] = rt<T>(cs * y0 - sn * y1);
            out[orow + 2 * j + 1] = rt<T>(sn * y0 + cs * y1);
            double g0 = to_f(g[part * b * ltot * hd + orow + 2 * j]), g1 = to_f(g[part * b * ltot * hd + orow + 2 * j + 1]);
            gn[2 * j] = (cs * g0 + sn * g1) * to_f(sc[2 * j]);
            gn[2 * j + 1] = (-sn * g0 + cs * g1) * to_f(sc[2 * j + 1]);
          }
          for (int c = 0; c < dh; c++) dot += gn[c] * to_f(src[c]);
          for (int c = 0; c < dh; c++) rd[irow + part * hd + c] = rt<T>(rs * gn[c] - rs * rs * rs * to_f(src[c]) * dot / dh);
        }
      }
  double tol = sizeof(T) == 2 ? 1e-2 : 1e-5;
  expect(std::string("qk_norm_rope q ") + name, from_t(q), rq, tol);
  expect(std::string("qk_norm_rope k ") + name, from_t(k), rk, tol);
  expect(std::string("qk_norm_rope v ") + name, from_t(v), rv, 0);
  expect(std::string("qk_norm_rope rstd ") + name, std::vector<double>(qr.begin(), qr.end()), rr, 1e-5);
  expect(std::string("qk_norm_rope_bwd ") + name, from_t(dqkv), rd, tol);
}

// ------------------------------------------------------------------------------------------------ quantized weights

static const float CODE[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
                               -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
                               0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                               0.7229568362236023f, 1.0f};

static std::vector<uint8_t> bytes(size_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = (uint8_t)rng();
  return b;
}

struct Nf4W {
  long n, k;
  std::vector<uint8_t> packed, codes;
  std::vector<float> absmax, nested, ncode;
  bool dq;
  float offset = 0.031f;
  float scale(long blk) const { return dq ? (ncode[codes[blk]] * nested[blk / 4]) + offset : absmax[blk]; }
  float at(long e) const {
    int b = packed[e >> 1];
    return CODE[(e & 1) ? (b & 15) : (b >> 4)] * scale(e / 32);
  }
};

static Nf4W nf4(long n, long k, bool dq) {
  Nf4W w{n, k};
  long numel = n * k, blocks = (numel + 31) / 32;
  w.packed = bytes((numel + 1) / 2);
  w.dq = dq;
  if (dq) {
    w.codes = bytes(blocks);
    for (long i = 0; i < (blocks + 3) / 4; i++) w.nested.push_back(0.01f + 0.001f * i);
    for (int i = 0; i < 256; i++) w.ncode.push_back((i - 127.5f) / 128);
  } else {
    for (long i = 0; i < blocks; i++) w.absmax.push_back(0.02f + 0.001f * (i % 17));
  }
  return w;
}

// The [n, k] values of an [n, ld] output; a padding column that is not NaN any more (written past k) is returned as a
// row of NaN so that the comparison fails.
static std::vector<double> strip_ld(const std::vector<double>& out, long n, long k, long ld) {
  std::vector<double> r(n * k);
  for (long i = 0; i < n; i++) {
    bool clobbered = false;
    for (long c = k; c < ld; c++) clobbered |= !std::isnan(out[i * ld + c]);
    for (long c = 0; c < k; c++) r[i * k + c] = clobbered ? NAN : out[i * ld + c];
  }
  return r;
}

static void test_quant() {
  // NF4 (blocksize 32, nested groups of 4), fast path (numel % 8 == 0) and generic (odd numel)
  for (bool dq : {false, true})
    for (long k : {64L, 13L}) {
      Nf4W w = nf4(5, k, dq);
      const void* am = dq ? (const void*)w.codes.data() : (const void*)w.absmax.data();
      std::vector<double> ref(5 * k);
      for (long e = 0; e < 5 * k; e++) ref[e] = rt<bf16>(w.at(e));
      // contiguous, then into the left k columns of rows 8 wider (the fused LoRA [W | s B] layout)
      for (long pad : {0L, 8L}) {
        long ld = k + pad;
        std::vector<bf16> out(5 * ld, cvt<bf16>(NAN));
        emu_launch(impasto_dequant_nf4_bf16, dim(1), dim(256), 0, out.data(), w.packed.data(), am, dq ? w.nested.data() : nullptr,
                   dq ? w.ncode.data() : nullptr, w.offset, 32, 4, 5 * k, k, ld);
        expect(std::string("dequant nf4") + (dq ? "-dq" : "") + " [5, " + std::to_string(k) + "] ld " + std::to_string(ld),
               strip_ld(from_t(out), 5, k, ld), ref, 0);
      }

      // GEMV, 3 rows of x (bucket 4), bias f32, beta 0.5
      long m = 3;
      auto x = to_t<bf16>(gauss(m * k));
      std::vector<float> bias(5);
      for (auto& v : bias) v = (float)gauss(1)[0];
      std::vector<bf16> o(m * 5);
      auto o0 = gauss(m * 5);
      for (long i = 0; i < m * 5; i++) o[i] = cvt<bf16>(o0[i]);
      std::vector<double> rg(m * 5);
      for (long r = 0; r < m; r++)
        for (long n = 0; n < 5; n++) {
          double acc = 0;
          for (long c = 0; c < k; c++) acc += (double)to_f(x[r * k + c]) * w.at(n * k + c);
          rg[r * 5 + n] = rt<bf16>(acc + bias[n] + 0.5 * to_f(o[r * 5 + n]));
        }
      emu_launch(impasto_gemv_nf4_m4_bf16, dim(1), dim(256), 0, o.data(), 5L, x.data(), k, (int)m, 5L, k, w.packed.data(), am,
                 dq ? w.nested.data() : nullptr, dq ? w.ncode.data() : nullptr, w.offset, 32, 4, (const void*)bias.data(), 1, 0.5f);
      expect(std::string("gemv nf4") + (dq ? "-dq" : "") + " M3 K" + std::to_string(k), from_t(o), rg, 1e-2);
    }
  // int8 [5, k]: fast (k 16) and generic (k 7); GEMV M1
  for (long k : {16L, 7L}) {
    long n = 5;
    auto q = bytes(n * k);
    std::vector<float> sc(n);
    for (long i = 0; i < n; i++) sc[i] = 0.01f * (i + 1);
    std::vector<double> ref(n * k);
    for (long e = 0; e < n * k; e++) ref[e] = (float)(int8_t)q[e] * sc[e / k];
    for (long pad : {0L, 8L}) {
      long ld = k + pad;
      std::vector<float> out(n * ld, NAN);
      emu_launch(impasto_dequant_int8_f32, dim(1), dim(256), 0, out.data(), (const int8_t*)q.data(), sc.data(), n, k, ld);
      expect("dequant int8 [5, " + std::to_string(k) + "] ld " + std::to_string(ld),
             strip_ld(std::vector<double>(out.begin(), out.end()), n, k, ld), ref, 0);
    }
    auto x = to_t<float>(gauss(k));
    std::vector<float> o(n, NAN);
    emu_launch(impasto_gemv_int8_m1_f32, dim(1), dim(256), 0, o.data(), n, x.data(), k, 1, n, k, (const int8_t*)q.data(), sc.data(),
               (const void*)nullptr, 0, 0.f);
    std::vector<double> rg(n, 0.0);
    for (long r = 0; r < n; r++)
      for (long c = 0; c < k; c++) rg[r] += (double)x[c] * ref[r * k + c];
    expect("gemv int8 M1 K" + std::to_string(k), std::vector<double>(o.begin(), o.end()), rg, 1e-6);
  }
  // int4 [4, k], group 8: fast (k 24) and generic (k 7)
  for (long k : {24L, 7L}) {
    long n = 4, gs = 8, gpr = (k + gs - 1) / gs, rb = (k + 1) / 2;
    auto p = bytes(n * rb);
    std::vector<float> sc(n * gpr), mn(n * gpr);
    for (long i = 0; i < n * gpr; i++) {
      sc[i] = 0.01f * (i + 1);
      mn[i] = -0.05f * (i % 3);
    }
    std::vector<double> ref(n * k);
    for (long r = 0; r < n; r++)
      for (long c = 0; c < k; c++) {
        int b = p[r * rb + c / 2], qv = (c & 1) ? (b & 15) : (b >> 4);
        long g = r * gpr + c / gs;
        ref[r * k + c] = mn[g] + qv * sc[g];
      }
    for (long pad : {0L, 8L}) {
      long ld = k + pad;
      std::vector<float> out(n * ld, NAN);
      emu_launch(impasto_dequant_int4_f32, dim(1), dim(256), 0, out.data(), p.data(), sc.data(), mn.data(), (int)gs, n, k, ld);
      expect("dequant int4 [4, " + std::to_string(k) + "] ld " + std::to_string(ld),
             strip_ld(std::vector<double>(out.begin(), out.end()), n, k, ld), ref, 0);
    }
    auto x = to_t<bf16>(gauss(2 * k));
    std::vector<bf16> o(2 * n);
    emu_launch(impasto_gemv_int4_m2_bf16, dim(1), dim(256), 0, o.data(), n, x.data(), k, 2, n, k, p.data(), sc.data(), mn.data(), (int)gs,
               (const void*)nullptr, 0, 0.f);
    std::vector<double> rg(2 * n, 0.0);
    for (long m = 0; m < 2; m++)
      for (long r = 0; r < n; r++) {
        for (long c = 0; c < k; c++) rg[m * n + r] += (double)to_f(x[m * k + c]) * ref[r * k + c];
        rg[m * n + r] = rt<bf16>(rg[m * n + r]);
      }
    expect("gemv int4 M2 K" + std::to_string(k), from_t(o), rg, 1e-2);
  }
  // GGUF: Q8_0, Q4_0 (2 blocks each) and Q4_K (one super-block), random bytes with sane f16 scales
  {
    auto f16bits = [](float v) { __half h = __float2half_rn(v); uint16_t u; std::memcpy(&u, &h, 2); return u; };
    auto put16 = [](std::vector<uint8_t>& b, size_t at, uint16_t u) { b[at] = u & 255; b[at + 1] = u >> 8; };
    auto h16 = [](const std::vector<uint8_t>& b, size_t at) { return __half2float(__ushort_as_half((uint16_t)(b[at] | b[at + 1] << 8))); };
    std::vector<uint8_t> q8 = bytes(2 * 34), q4 = bytes(2 * 18), qk = bytes(144);
    for (int i = 0; i < 2; i++) { put16(q8, i * 34, f16bits(0.01f * (i + 1))); put16(q4, i * 18, f16bits(-0.02f * (i + 1))); }
    put16(qk, 0, f16bits(0.003f));
    put16(qk, 2, f16bits(0.002f));
    std::vector<float> o8(64, NAN), o4(64, NAN), okk(256, NAN);
    emu_launch(impasto_dequant_q8_0_f32, dim(1), dim(256), 0, o8.data(), q8.data(), 64LL);
    emu_launch(impasto_dequant_q4_0_f32, dim(1), dim(256), 0, o4.data(), q4.data(), 64LL);
    emu_launch(impasto_dequant_q4_k_f32, dim(1), dim(256), 0, okk.data(), qk.data(), 256LL);
    std::vector<double> r8(64), r4(64), rk(256);
    for (int b = 0; b < 2; b++) {
      for (int j = 0; j < 32; j++) r8[b * 32 + j] = (float)(int8_t)q8[b * 34 + 2 + j] * h16(q8, b * 34);
      float d = h16(q4, b * 18);
      for (int j = 0; j < 16; j++) {
        int q = q4[b * 18 + 2 + j];
        r4[b * 32 + j] = ((q & 15) - 8) * d;
        r4[b * 32 + j + 16] = ((q >> 4) - 8) * d;
      }
    }
    float d = h16(qk, 0), mn = h16(qk, 2);
    const uint8_t* s = qk.data() + 4;
    auto smk = [&](int j, int& sc, int& m) {
      if (j < 4) { sc = s[j] & 63; m = s[j + 4] & 63; }
      else { sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4); m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4); }
    };
    for (int c = 0; c < 4; c++) {
      int sc1, m1, sc2, m2;
      smk(2 * c, sc1, m1);
      smk(2 * c + 1, sc2, m2);
      float d1 = d * sc1, mm1 = mn * m1, d2 = d * sc2, mm2 = mn * m2;
      for (int l = 0; l < 32; l++) {
        rk[c * 64 + l] = d1 * (qk[16 + 32 * c + l] & 15) - mm1;
        rk[c * 64 + 32 + l] = d2 * (qk[16 + 32 * c + l] >> 4) - mm2;
      }
    }
    expect("dequant q8_0", std::vector<double>(o8.begin(), o8.end()), r8, 0);
    expect("dequant q4_0", std::vector<double>(o4.begin(), o4.end()), r4, 0);
    expect("dequant q4_k", std::vector<double>(okk.begin(), okk.end()), rk, 0);
  }
  // NF4 quantization on the device: 4 full blocks (one all zero) and a partial one of 37 (odd: a lone last element),
  // against the host quantizer's rules; then a NaN and an infinity: the lowest index is reported
  {
    const float th[15] = {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
                          -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
                          0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                          0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
    auto code = [&](float x) { int c = 0; for (float t : th) c += x > t; return c; };
    const long n = 4 * 64 + 37, blocks = 5;
    auto wd = gauss(n, 0.05);
    for (long i = 64; i < 128; i++) wd[i] = 0;
    auto w = to_t<bf16>(wd);
    std::vector<uint8_t> packed((n + 1) / 2, 0xAA);
    std::vector<float> am(blocks, NAN);
    unsigned long long bad = ~0ull;
    emu_launch(impasto_quant_nf4_bf16, dim(1), dim(64), 0, packed.data(), am.data(), &bad, w.data(), n);
    std::vector<double> rp(packed.size()), ra(blocks), gp(packed.size()), ga(blocks);
    for (long b = 0; b < blocks; b++) {
      float m = 0;
      for (long i = b * 64; i < std::min(n, b * 64 + 64); i++) m = std::max(m, std::fabs(to_f(w[i])));
      ra[b] = m;
      float inv = 1.0f / m;
      for (long i = b * 64; i < std::min(n, b * 64 + 64); i += 2) {
        float v1 = i + 1 < n ? to_f(w[i + 1]) : 0.f;
        rp[i / 2] = (code(to_f(w[i]) * inv) << 4) | code(v1 * inv);
      }
    }
    for (size_t i = 0; i < packed.size(); i++) gp[i] = packed[i];
    for (long b = 0; b < blocks; b++) ga[b] = am[b];
    expect("quant nf4 codes (odd n, zero block)", gp, rp, 0);
    expect("quant nf4 absmax", ga, ra, 0);
    expect("quant nf4: finite weights report nothing", {(double)(bad == ~0ull)}, {1.0}, 0);
    w[150] = cvt<bf16>(INFINITY);
    w[100] = cvt<bf16>(NAN);
    emu_launch(impasto_quant_nf4_bf16, dim(2), dim(64), 0, packed.data(), am.data(), &bad, w.data(), n);
    expect("quant nf4: the first non-finite index", {(double)bad}, {100.0}, 0);
  }
  // GGUF GEMV: rows of whole blocks (Q8_0 / Q4_0 [3, 96], Q4_K [3, 512]), weights from the dequantizer checked above,
  // x rows 1, 2 and 3 (buckets 1, 2, 4), bias bf16, beta 0.5; a misaligned block pointer takes the element path
  {
    auto f16bits = [](float v) { __half h = __float2half_rn(v); uint16_t u; std::memcpy(&u, &h, 2); return u; };
    auto put16 = [](uint8_t* b, uint16_t u) { b[0] = u & 255; b[1] = u >> 8; };
    struct G { const char* name; long k, elems, bytes; };
    for (G g : {G{"q8_0", 96, 32, 34}, G{"q4_0", 96, 32, 18}, G{"q4_k", 512, 256, 144}}) {
      const long n = 3, k = g.k, nb = n * k / g.elems;
      std::vector<uint8_t> raw = bytes(nb * g.bytes + 8);
      uint8_t* blk = raw.data() + 8;  // 8-byte aligned copy at +8, 2-byte aligned copy at +2 below
      for (long b = 0; b < nb; b++) {
        put16(blk + b * g.bytes, f16bits(0.004f * (1 + b % 5) * (b % 2 ? -1 : 1)));
        if (g.elems == 256) put16(blk + b * g.bytes + 2, f16bits(0.003f * (1 + b % 3)));
      }
      std::vector<float> deq(n * k);
      if (g.elems == 256) emu_launch(impasto_dequant_q4_k_f32, dim(1), dim(256), 0, deq.data(), blk, n * k);
      else if (g.bytes == 34) emu_launch(impasto_dequant_q8_0_f32, dim(1), dim(256), 0, deq.data(), blk, n * k);
      else emu_launch(impasto_dequant_q4_0_f32, dim(1), dim(256), 0, deq.data(), blk, n * k);
      for (long m : {1L, 2L, 3L}) {
        for (bool shifted : {false, true}) {
          std::vector<uint8_t> moved(nb * g.bytes + 2);
          const uint8_t* w = blk;
          if (shifted) {  // Q4_K wants 8-byte aligned blocks: at +2 it must fall back to element by element
            std::memcpy(moved.data() + 2, blk, nb * g.bytes);
            w = moved.data() + 2;
            if (g.elems != 256) continue;
          }
          auto x = to_t<bf16>(gauss(m * k));
          std::vector<bf16> bias(n), o(m * n);
          for (long i = 0; i < n; i++) bias[i] = cvt<bf16>(gauss(1)[0]);
          auto o0 = gauss(m * n);
          for (long i = 0; i < m * n; i++) o[i] = cvt<bf16>(o0[i]);
          std::vector<double> rg(m * n);
          for (long r = 0; r < m; r++)
            for (long c = 0; c < n; c++) {
              double acc = 0;
              for (long e = 0; e < k; e++) acc += (double)to_f(x[r * k + e]) * deq[c * k + e];
              rg[r * n + c] = rt<bf16>(acc + to_f(bias[c]) + 0.5 * to_f(o[r * n + c]));
            }
          std::string nm = std::string(g.name);
          auto launch = [&](auto kern) {
            emu_launch(kern, dim(1), dim(256), 0, o.data(), n, x.data(), k, (int)m, n, k, w, (const void*)bias.data(), 2, 0.5f);
          };
          if (nm == "q8_0") m == 1 ? launch(impasto_gemv_q8_0_m1_bf16) : m == 2 ? launch(impasto_gemv_q8_0_m2_bf16) : launch(impasto_gemv_q8_0_m4_bf16);
          else if (nm == "q4_0") m == 1 ? launch(impasto_gemv_q4_0_m1_bf16) : m == 2 ? launch(impasto_gemv_q4_0_m2_bf16) : launch(impasto_gemv_q4_0_m4_bf16);
          else m == 1 ? launch(impasto_gemv_q4_k_m1_bf16) : m == 2 ? launch(impasto_gemv_q4_k_m2_bf16) : launch(impasto_gemv_q4_k_m4_bf16);
          expect("gemv " + nm + " M" + std::to_string(m) + (shifted ? " misaligned" : ""), from_t(o), rg, 4e-3);
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------ attention

struct AttnRef {
  std::vector<double> out, lse, dq, dk, dv;
};

// fp64 attention over [B, L, H D] operands with row stride ld (same ld for all), lse [B, H, Lq].
static AttnRef attn_ref(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v, const std::vector<double>& g,
                        int b, int h, int lq, int lk, int d, long ld) {
  AttnRef r;
  r.out.assign((size_t)b * lq * ld, 0);
  r.lse.assign((size_t)b * h * lq, 0);
  r.dq.assign((size_t)b * lq * ld, 0);
  r.dk.assign((size_t)b * lk * ld, 0);
  r.dv.assign((size_t)b * lk * ld, 0);
  double scale = 1 / std::sqrt((double)d);
  for (int bb = 0; bb < b; bb++)
    for (int hh = 0; hh < h; hh++) {
      auto Q = [&](int i, int c) { return q[((size_t)bb * lq + i) * ld + hh * d + c]; };
      auto K = [&](int j, int c) { return k[((size_t)bb * lk + j) * ld + hh * d + c]; };
      auto V = [&](int j, int c) { return v[((size_t)bb * lk + j) * ld + hh * d + c]; };
      auto G = [&](int i, int c) { return g[((size_t)bb * lq + i) * ld + hh * d + c]; };
      std::vector<std::vector<double>> P(lq, std::vector<double>(lk));
      for (int i = 0; i < lq; i++) {
        double mx = -1e300;
        for (int j = 0; j < lk; j++) {
          double s = 0;
          for (int c = 0; c < d; c++) s += Q(i, c) * K(j, c);
          P[i][j] = s * scale;
          mx = std::max(mx, P[i][j]);
        }
        double sum = 0;
        for (int j = 0; j < lk; j++) sum += (P[i][j] = std::exp(P[i][j] - mx));
        for (int j = 0; j < lk; j++) P[i][j] /= sum;
        r.lse[((size_t)bb * h + hh) * lq + i] = mx + std::log(sum);
        for (int c = 0; c < d; c++) {
          double o = 0;
          for (int j = 0; j < lk; j++) o += P[i][j] * V(j, c);
          r.out[((size_t)bb * lq + i) * ld + hh * d + c] = o;
        }
      }
      for (int i = 0; i < lq; i++) {
        double delta = 0;
        for (int c = 0; c < d; c++) delta += G(i, c) * r.out[((size_t)bb * lq + i) * ld + hh * d + c];
        for (int j = 0; j < lk; j++) {
          double dp = 0;
          for (int c = 0; c < d; c++) dp += G(i, c) * V(j, c);
          double ds = P[i][j] * (dp - delta) * scale;
          for (int c = 0; c < d; c++) {
            r.dq[((size_t)bb * lq + i) * ld + hh * d + c] += ds * K(j, c);
            r.dk[((size_t)bb * lk + j) * ld + hh * d + c] += ds * Q(i, c);
            r.dv[((size_t)bb * lk + j) * ld + hh * d + c] += P[i][j] * G(i, c);
          }
        }
      }
    }
  return r;
}

template <typename T, int D>
static void test_attention_mma(int b, int h, int l, const char* name) {
  long ld = (long)h * D;
  auto qd = gauss((size_t)b * l * ld), kd = gauss((size_t)b * l * ld), vd = gauss((size_t)b * l * ld), gd = gauss((size_t)b * l * ld);
  auto q = to_t<T>(qd), k = to_t<T>(kd), v = to_t<T>(vd), g = to_t<T>(gd);
  AttnRef ref = attn_ref(from_t(q), from_t(k), from_t(v), from_t(g), b, h, l, l, D, ld);
  std::vector<T> out(q.size(), cvt<T>(NAN)), dq(q.size(), cvt<T>(NAN)), dk(q.size(), cvt<T>(NAN)), dv(q.size(), cvt<T>(NAN));
  std::vector<float> lse((size_t)b * h * l, NAN), delta((size_t)b * h * l, NAN);
  float scale = 1 / std::sqrt((float)D);
  unsigned gq = (l + 63) / 64;
  size_t fs = (64 + 4 * 64) * D * 2, bs = (2 * 64 + 4 * 32) * D * 2;
  void (*fwd)(T*, i64, float*, const T*, i64, const T*, i64, const T*, i64, int, i64, i64, float);
  void (*bdq)(T*, i64, const T*, i64, const T*, i64, const T*, i64, const T*, i64, const float*, const float*, int, i64, i64, float);
  void (*bkv)(T*, i64, T*, i64, const T*, i64, const T*, i64, const T*, i64, const T*, i64, const float*, const float*, int, i64, i64, float);
  void (*dlt)(float*, const T*, i64, const T*, i64, i64, i64, int, int);
  if constexpr (std::is_same_v<T, bf16>) {
    if constexpr (D == 64) { fwd = impasto_attn_fwd_mma_d64_bf16; bdq = impasto_attn_bwd_dq_mma_d64_bf16; bkv = impasto_attn_bwd_dkdv_mma_d64_bf16; }
    else { fwd = impasto_attn_fwd_mma_d128_bf16; bdq = impasto_attn_bwd_dq_mma_d128_bf16; bkv = impasto_attn_bwd_dkdv_mma_d128_bf16; }
    dlt = impasto_attn_delta_bf16;
  } else {
    if constexpr (D == 64) { fwd = impasto_attn_fwd_mma_d64_f16; bdq = impasto_attn_bwd_dq_mma_d64_f16; bkv = impasto_attn_bwd_dkdv_mma_d64_f16; }
    else { fwd = impasto_attn_fwd_mma_d128_f16; bdq = impasto_attn_bwd_dq_mma_d128_f16; bkv = impasto_attn_bwd_dkdv_mma_d128_f16; }
    dlt = impasto_attn_delta_f16;
  }
  emu_launch(fwd, dim(gq, h, b), dim(128), fs, out.data(), ld, lse.data(), q.data(), ld, k.data(), ld, v.data(), ld, h, (i64)l, (i64)l, scale);
  std::vector<double> ro(ref.out.size());
  for (size_t i = 0; i < ro.size(); i++) ro[i] = rt<T>(ref.out[i]);
  expect(std::string("attention mma fwd out ") + name, from_t(out), ro, 1e-2);
  expect(std::string("attention mma fwd lse ") + name, std::vector<double>(lse.begin(), lse.end()), ref.lse, 1e-3);
  emu_launch(dlt, dim(4), dim(256), 0, delta.data(), g.data(), ld, out.data(), ld, (i64)b, (i64)l, h, D);
  emu_launch(bdq, dim(gq, h, b), dim(128), bs, dq.data(), ld, q.data(), ld, k.data(), ld, v.data(), ld, g.data(), ld, lse.data(), delta.data(), h, (i64)l, (i64)l, scale);
  emu_launch(bkv, dim(gq, h, b), dim(128), bs + 512, dk.data(), ld, dv.data(), ld, q.data(), ld, k.data(), ld, v.data(), ld, g.data(), ld, lse.data(), delta.data(), h, (i64)l, (i64)l, scale);
  expect(std::string("attention mma bwd dq ") + name, from_t(dq), ref.dq, 2e-2);
  expect(std::string("attention mma bwd dk ") + name, from_t(dk), ref.dk, 2e-2);
  expect(std::string("attention mma bwd dv ") + name, from_t(dv), ref.dv, 2e-2);
}

static void test_attention_generic(int b, int h, int lq, int lk, int d) {
  long ld = (long)h * d + 3;  // column views at offset 1
  auto q = to_t<float>(gauss((size_t)b * lq * ld)), k = to_t<float>(gauss((size_t)b * lk * ld)), v = to_t<float>(gauss((size_t)b * lk * ld)),
       g = to_t<float>(gauss((size_t)b * lq * ld));
  // the reference reads columns [1, 1 + h d) through a shifted copy
  auto shift = [&](const std::vector<float>& x) { std::vector<double> o(x.size()); for (size_t i = 0; i + 1 < x.size(); i++) o[i] = x[i + 1]; return o; };
  AttnRef ref = attn_ref(shift(q), shift(k), shift(v), shift(g), b, h, lq, lk, d, ld);
  std::vector<float> out(q.size(), 0), dq(q.size(), 0), dk(k.size(), 0), dv(k.size(), 0), lse((size_t)b * h * lq), delta((size_t)b * h * lq);
  float scale = 1 / std::sqrt((float)d);
  size_t fs = (3 * 16 * (d + 1) + 16 * 17) * 4, qs = (4 * 16 * (d + 1) + 16 * 17) * 4, ks = (4 * 16 * (d + 1) + 2 * 16 * 17) * 4;
  emu_launch(impasto_attn_fwd_generic_f32, dim((lq + 15) / 16, h, b), dim(256), fs, out.data() + 1, ld, lse.data(), q.data() + 1, ld, k.data() + 1, ld, v.data() + 1, ld, h, (i64)lq, (i64)lk, d, scale);
  emu_launch(impasto_attn_delta_f32, dim(2), dim(256), 0, delta.data(), g.data() + 1, ld, out.data() + 1, ld, (i64)b, (i64)lq, h, d);
  emu_launch(impasto_attn_bwd_dq_generic_f32, dim((lq + 15) / 16, h, b), dim(256), qs, dq.data() + 1, ld, q.data() + 1, ld, k.data() + 1, ld, v.data() + 1, ld, g.data() + 1, ld, lse.data(), delta.data(), h, (i64)lq, (i64)lk, d, scale);
  emu_launch(impasto_attn_bwd_dkdv_generic_f32, dim((lk + 15) / 16, h, b), dim(256), ks, dk.data() + 1, ld, dv.data() + 1, ld, q.data() + 1, ld, k.data() + 1, ld, v.data() + 1, ld, g.data() + 1, ld, lse.data(), delta.data(), h, (i64)lq, (i64)lk, d, scale);
  std::string nm = " f32 B" + std::to_string(b) + " H" + std::to_string(h) + " Lq" + std::to_string(lq) + " Lk" + std::to_string(lk) + " D" + std::to_string(d);
  expect("attention generic out" + nm, shift(out), ref.out, 1e-5);
  expect("attention generic lse" + nm, std::vector<double>(lse.begin(), lse.end()), ref.lse, 1e-6);
  expect("attention generic dq" + nm, shift(dq), ref.dq, 1e-5);
  expect("attention generic dk" + nm, shift(dk), ref.dk, 1e-5);
  expect("attention generic dv" + nm, shift(dv), ref.dv, 1e-5);
}


// ------------------------------------------------------------------------------------------------ the rest

static void test_misc() {
  // convert f32 -> bf16 into a view (vector path + tail), f16 -> f32 contiguous
  {
    long rows = 3, cols = 21, ld = 32;
    auto src = to_t<float>(gauss(rows * cols, 3));
    std::vector<bf16> dst(rows * ld, cvt<bf16>(4));
    emu_launch(impasto_convert_f32_bf16, dim(1), dim(256), 0, dst.data() + 8, ld, src.data(), cols, rows, cols);
    std::vector<double> ref(rows * ld, 4.0);
    for (long r = 0; r < rows; r++)
      for (long c = 0; c < cols; c++) ref[r * ld + 8 + c] = rt<bf16>(src[r * cols + c]);
    expect("convert f32 -> bf16 view", from_t(dst), ref, 0);
    auto h = to_t<f16>(gauss(50));
    std::vector<float> f(50);
    emu_launch(impasto_convert_f16_f32, dim(1), dim(256), 0, f.data(), 50L, h.data(), 50L, 1L, 50L);
    expect("convert f16 -> f32", std::vector<double>(f.begin(), f.end()), from_t(h), 0);
  }
  // concat / split along the sequence, batch 3
  {
    long b = 3, la = 2, lb = 3, d = 24;
    auto a = to_t<bf16>(gauss(b * la * d)), bb = to_t<bf16>(gauss(b * lb * d));
    std::vector<bf16> whole(b * (la + lb) * d, cvt<bf16>(NAN)), a2(a.size(), cvt<bf16>(NAN)), b2(bb.size(), cvt<bf16>(NAN));
    emu_launch(impasto_concat_seq_bf16, dim(1), dim(256), 0, whole.data(), d, a.data(), d, bb.data(), d, b, la, lb, d);
    std::vector<double> ref;
    for (long i = 0; i < b; i++) {
      for (long r = 0; r < la * d; r++) ref.push_back(to_f(a[i * la * d + r]));
      for (long r = 0; r < lb * d; r++) ref.push_back(to_f(bb[i * lb * d + r]));
    }
    expect("concat_seq bf16 B3", from_t(whole), ref, 0);
    emu_launch(impasto_split_seq_bf16, dim(1), dim(256), 0, whole.data(), d, a2.data(), d, b2.data(), d, b, la, lb, d);
    expect("split_seq a", from_t(a2), from_t(a), 0);
    expect("split_seq b", from_t(b2), from_t(bb), 0);
  }
  // flow mix with per-batch t
  {
    long b = 2, per = 3, d = 10;
    auto x0 = to_t<float>(gauss(b * per * d)), nz = to_t<float>(gauss(b * per * d));
    std::vector<float> t = {0.25f, 0.8f}, xt(x0.size()), tg(x0.size());
    emu_launch(impasto_flow_mix_f32, dim(1), dim(256), 0, xt.data(), d, tg.data(), d, x0.data(), d, nz.data(), d, t.data(), b * per, d, per);
    std::vector<double> rx(x0.size()), rtg(x0.size());
    for (long i = 0; i < b * per * d; i++) {
      double tb = t[i / (per * d)];
      rx[i] = (1 - tb) * x0[i] + tb * nz[i];
      rtg[i] = (double)nz[i] - x0[i];
    }
    expect("flow_mix xt", std::vector<double>(xt.begin(), xt.end()), rx, 1e-6);
    expect("flow_mix target", std::vector<double>(tg.begin(), tg.end()), rtg, 1e-6);
  }
  // timestep embedding, odd width
  {
    std::vector<float> t = {0.f, 0.37f, 1.f};
    long dimw = 9;
    std::vector<float> o(3 * dimw, NAN);
    emu_launch(impasto_timestep_embedding_f32, dim(3), dim(256), 0, o.data(), dimw, t.data(), 3, (int)dimw, 1000.f, 10000.f);
    std::vector<double> ref(3 * dimw);
    for (int b = 0; b < 3; b++) {
      float tf = (float)(1000.0 * t[b]);
      for (int i = 0; i < 4; i++) {
        float freq = (float)std::exp(-std::log(10000.0) * i / 4), arg = tf * freq;
        ref[b * dimw + i] = (float)std::cos((double)arg);
        ref[b * dimw + 4 + i] = (float)std::sin((double)arg);
      }
      ref[b * dimw + 8] = 0;
    }
    expect("timestep_embedding odd width", std::vector<double>(o.begin(), o.end()), ref, 1e-6);
  }
  // AdamW with clipping (gradNormSq 16, gradScale 0.5: norm 2 > 1)
  {
    long n = 300;
    auto p0 = gauss(n), g0 = gauss(n), m0 = gauss(n, 0.01);
    std::vector<float> p(p0.begin(), p0.end()), g(g0.begin(), g0.end()), m(m0.begin(), m0.end()), v(n);
    for (long i = 0; i < n; i++) v[i] = 1e-4f * (1 + i % 7);
    std::vector<float> pr = p, mr = m, vr = v;
    float normSq = 16;
    double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01, lr = 1e-3, bc1 = 1 - std::pow(b1, 3), bc2 = 1 - std::pow(b2, 3);
    emu_launch(impasto_adamw_f32, dim(1), dim(256), 0, p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, bc1, bc2, (const float*)&normSq, 1.0, 0.5);
    double norm = std::sqrt(16.0) * 0.5, clip = norm > 1 ? 1 / (norm + 1e-6) : 1;
    std::vector<double> rp(n), rm(n), rv(n);
    for (long i = 0; i < n; i++) {
      double gv = g[i] * clip * 0.5;
      rm[i] = (float)(b1 * mr[i] + (1 - b1) * gv);
      rv[i] = (float)(b2 * vr[i] + (1 - b2) * gv * gv);
      double pv = pr[i] * (1 - lr * wd);
      pv -= lr / bc1 * rm[i] / (std::sqrt(rv[i]) / std::sqrt(bc2) + eps);
      rp[i] = (float)pv;
    }
    expect("adamw p (clipped)", std::vector<double>(p.begin(), p.end()), rp, 1e-7);
    expect("adamw m", std::vector<double>(m.begin(), m.end()), rm, 1e-7);
    expect("adamw v", std::vector<double>(v.begin(), v.end()), rv, 1e-7);
    // the same update through the multi-tensor kernel, the tensor split into three work items plus a second tensor
    std::vector<float> p2(pr), m2(mr), v2(vr), q(37, 0.5f), gq(37, 0.25f), mq(37, 0.f), vq(37, 0.f);
    std::vector<AdamwWork> work = {{p2.data(), g.data(), m2.data(), v2.data(), 0, 100},
                                   {p2.data(), g.data(), m2.data(), v2.data(), 100, 257},
                                   {q.data(), gq.data(), mq.data(), vq.data(), 0, 37},
                                   {p2.data(), g.data(), m2.data(), v2.data(), 257, n}};
    emu_launch(impasto_adamw_multi_f32, dim(3), dim(64), 0, (const AdamwWork*)work.data(), (int)work.size(), lr, b1, b2, eps, wd, bc1,
               bc2, (const float*)&normSq, 1.0, 0.5);
    expect("adamw multi-tensor p == single", std::vector<double>(p2.begin(), p2.end()), std::vector<double>(p.begin(), p.end()), 0);
    expect("adamw multi-tensor v == single", std::vector<double>(v2.begin(), v2.end()), std::vector<double>(v.begin(), v.end()), 0);
    std::vector<float> q1(1, 0.5f), gq1(1, 0.25f), mq1(1, 0.f), vq1(1, 0.f);
    emu_launch(impasto_adamw_f32, dim(1), dim(32), 0, q1.data(), gq1.data(), mq1.data(), vq1.data(), 1L, lr, b1, b2, eps, wd, bc1, bc2,
               (const float*)&normSq, 1.0, 0.5);
    expect("adamw multi-tensor second tensor", std::vector<double>(q.begin(), q.end()), std::vector<double>(37, (double)q1[0]), 0);
  }
}

int main(int argc, char** argv) {
  std::string only = argc > 1 ? argv[1] : "";
  auto want = [&](const char* s) { return only.empty() || only == s; };
  if (want("elementwise")) test_elementwise();
  if (want("random")) test_random();
  if (want("misc")) test_misc();
  if (want("layernorm")) {
    test_layernorm<bf16>(2, 3, 3072, true, "bf16 B2x3 D3072 (registers)");
    test_layernorm<bf16>(2, 3, 61, true, "bf16 B2x3 D61 (fallback)");
    test_layernorm<float>(1, 4, 200, false, "f32 B1x4 D200 plain");
  }
  if (want("rope")) {
    test_rope<bf16>(2, 128, "bf16 H2 Dh128");
    test_rope<float>(3, 8, "f32 H3 Dh8");
  }
  if (want("quant")) test_quant();
  if (want("attention")) {
    test_attention_generic(2, 2, 21, 19, 40);
    test_attention_mma<bf16, 64>(1, 2, 70, "bf16 D64 B1 H2 L70");
    test_attention_mma<f16, 128>(2, 1, 33, "f16 D128 B2 H1 L33");
  }
  std::printf("%d checks, %d failed\n", checks, failures);
  return failures;
}

"""The native small-batch loop of the generalised-Euler kernel (``compile="native"``).

The TorchScript loop (:mod:`odenet.scripted`) still pays ATen's dispatch for three operator
calls per step: at batch 256, width 2 that alone costs more than the whole step.  Here the
L-step loop

    h_{k+1} = ε h_k + δ σ(W_l h_k + b_l),   l = k // r,   k = start … start + S - 1,

is one C++ function over raw contiguous pointers, templated on the scalar type (float,
double), built once with :func:`torch.utils.cpp_extension.load_inline` (cached under torch's
extensions directory: the first build takes tens of seconds, later loads are fast).  The state is
batch-last, (m, B), as in the kernel: per step z_i = Σ_j W_ij h_j + b_i by plain loops whose
inner loop runs over the contiguous batch axis (vectorised by the compiler; for widths from 16
on, or 8 with a batch of 1024 or more, MKL's GEMM where torch links it, measured faster there),
σ on the whole (m, B) block, then the axpy, in place.  tanh is the routine ATen's eager ``tanh_`` calls: MKL's
vector tanh (``vsTanh``/``vdTanh``, linked into libtorch_cpu on x86 builds; 5-8x faster than
SLEEF's here, and the same bits as eager ``torch.tanh``), else ATen's ``Vectorized<T>::tanh``
(SLEEF u10, AVX2 where the CPU has it); relu and identity are exact; softplus (β = 1, threshold 20, as ``torch.nn.functional.softplus``) uses ``std::log1p``.

Not bitwise equal to the eager path (another summation order than the BLAS ``addmm``, possibly
fused multiply-adds): within a few ulps per step, documented and tested in docs/solvers.md.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import operator
import os

import torch

from .activations import ACTIVATIONS, Activation

#: activation name -> the code of the C++ loop
NATIVE_ACTIVATIONS = {"tanh": 0, "relu": 1, "identity": 2, "softplus": 3}

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cpu/vec/vec.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

using at::vec::Vectorized;

#ifdef ODENET_MKL
// MKL, linked into libtorch_cpu: its vector tanh (what ATen's tanh kernel calls, at::vml::vtanh)
// and its GEMM (Fortran interface, 32-bit sizes)
extern "C" void VSTANH_(const int* n, const float* a, float* r);
extern "C" void VDTANH_(const int* n, const double* a, double* r);
extern "C" void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);
extern "C" void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                       const int*, const double*, const int*, const double*, double*, const int*);
static inline void mkl_tanh(float* z, int n) { VSTANH_(&n, z, z); }
static inline void mkl_tanh(double* z, int n) { VDTANH_(&n, z, z); }
static inline void mkl_gemm(int M, int N, int K, const float* A, const float* B, float* C) {
  const float one = 1; const char n = 'N';
  sgemm_(&n, &n, &M, &N, &K, &one, A, &M, B, &K, &one, C, &M);
}
static inline void mkl_gemm(int M, int N, int K, const double* A, const double* B, double* C) {
  const double one = 1; const char n = 'N';
  dgemm_(&n, &n, &M, &N, &K, &one, A, &M, B, &K, &one, C, &M);
}
#endif

// z = W h + b for W (m, m), b (m) or none (b == nullptr), h and z (m, B), row-major
template <typename T>
static inline void affine(const T* __restrict W, const T* __restrict b, const T* __restrict h, T* __restrict z,
                          int64_t m, int64_t B) {
#ifdef ODENET_MKL
  // wide layers: MKL's GEMM (z preset to b, beta = 1; column-major z^T = h^T W^T), measured faster
  // from width 16 on, and from width 8 on for large batches
  if ((m >= 16 || (m >= 8 && B >= 1024)) && m * B < INT32_MAX) {
    for (int64_t i = 0; i < m; ++i) std::fill(z + i * B, z + (i + 1) * B, b ? b[i] : T(0));
    mkl_gemm(static_cast<int>(B), static_cast<int>(m), static_cast<int>(m), h, W, z);
    return;
  }
#endif
  // narrow layers: blocks of CB batch columns accumulated in registers over j, the inner loop
  // over the contiguous batch axis (vectorised by the compiler)
  constexpr int CB = 256 / sizeof(T);
  for (int64_t i = 0; i < m; ++i) {
    const T* Wi = W + i * m;
    T* zi = z + i * B;
    const T bi = b ? b[i] : T(0);
    int64_t c0 = 0;
    for (; c0 + CB <= B; c0 += CB) {
      T acc[CB];
      for (int c = 0; c < CB; ++c) acc[c] = Wi[0] * h[c0 + c];
      for (int64_t j = 1; j < m; ++j) {
        const T w = Wi[j];
        const T* hj = h + j * B + c0;
        for (int c = 0; c < CB; ++c) acc[c] += w * hj[c];
      }
      for (int c = 0; c < CB; ++c) zi[c0 + c] = acc[c] + bi;
    }
    for (int64_t c = c0; c < B; ++c) {
      T a = Wi[0] * h[c];
      for (int64_t j = 1; j < m; ++j) a += Wi[j] * h[j * B + c];
      zi[c] = a + bi;
    }
  }
}

enum { TANH = 0, RELU = 1, IDENTITY = 2, SOFTPLUS = 3 };

// sigma in place on n contiguous values
template <typename T, int A>
static inline void activate(T* z, int64_t n) {
  using V = Vectorized<T>;
  if constexpr (A == IDENTITY) {
    return;
#ifdef ODENET_MKL
  } else if constexpr (A == TANH) {
    const int64_t chunk = int64_t(1) << 30;  // MKL's n is a 32-bit int
    for (int64_t i = 0; i < n; i += chunk) mkl_tanh(z + i, static_cast<int>(std::min(chunk, n - i)));
#endif
  } else if constexpr (A == SOFTPLUS) {
    for (int64_t i = 0; i < n; ++i) z[i] = z[i] > T(20) ? z[i] : std::log1p(std::exp(z[i]));
  } else {
    int64_t i = 0;
    for (; i + V::size() <= n; i += V::size()) {
      V v = V::loadu(z + i);
      v = (A == TANH) ? v.tanh() : at::vec::maximum(v, V(T(0)));
      v.store(z + i);
    }
    if (i < n) {
      V v = V::loadu(z + i, n - i);
      v = (A == TANH) ? v.tanh() : at::vec::maximum(v, V(T(0)));
      v.store(z + i, n - i);
    }
  }
}

// K independent loops (a member axis); W (K, L, m, m), b (K, L, m), h0 (K, m, B), all contiguous.
// out: (steps + 1, K, m, B) if keep, else (K, m, B).
template <typename T, int A>
static void run(const T* W, const T* b, const T* h0, T* out, int64_t K, int64_t L, int64_t m, int64_t B,
                T eps, T delta, int64_t refine, int64_t start, int64_t steps, bool keep) {
  std::vector<T> zbuf(m * B);
  T* z = zbuf.data();
  const int64_t mB = m * B;
  const bool unit = eps == T(1);
  for (int64_t k = 0; k < K; ++k) {
    const T* Wk = W + k * L * m * m;
    const T* bk = b + k * L * m;
    T* h = out + k * mB;
    std::memcpy(h, h0 + k * mB, sizeof(T) * mB);
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t l = (start + s) / refine;
      const T* Wl = Wk + l * m * m;
      const T* bl = bk + l * m;
      affine<T>(Wl, bl, h, z, m, B);
      activate<T, A>(z, mB);
      T* hn = keep ? h + K * mB : h;  // the next row of the record, or in place
      if (unit) {
        for (int64_t c = 0; c < mB; ++c) hn[c] = h[c] + delta * z[c];
      } else {
        for (int64_t c = 0; c < mB; ++c) hn[c] = eps * h[c] + delta * z[c];
      }
      h = hn;
    }
  }
}

// tangent_step for a compile-time width M <= 4: per column, the M entries of each tangent column
// J[:, p] in registers, W J and the combination unrolled; the loop over columns is vectorised.
template <typename T, int M>
static inline void tangent_step_small(const T* __restrict W, const T* __restrict ds, const T* __restrict J,
                                      T* __restrict Jn, int64_t n, int64_t w, T eps, T delta, bool unit) {
  T Wr[M][M];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < M; ++j) Wr[i][j] = W[i * M + j];
  const T e = unit ? T(1) : eps;  // ε J with ε = 1 is exact: the same bits as J
  for (int64_t p = 0; p < n; ++p) {
    const T* __restrict Jp = J + p * w;  // J[j, p, c] = Jp[j n w + c]
    T* __restrict Jnp = Jn + p * w;
#pragma GCC ivdep
    for (int64_t c = 0; c < w; ++c) {
      T x[M];
      for (int j = 0; j < M; ++j) x[j] = Jp[j * n * w + c];
      for (int i = 0; i < M; ++i) {
        T a = Wr[i][0] * x[0];
        for (int j = 1; j < M; ++j) a += Wr[i][j] * x[j];
        Jnp[i * n * w + c] = e * x[i] + delta * (ds[i * w + c] * a);
      }
    }
  }
}

// J_{k+1} = ε J_k + δ diag(σ') W J_k for J (m, n, w) into Jn (m, n, w), ds (m, w).  Narrow
// layers: one pass, W J accumulated in registers over blocks of CB columns and combined at once;
// wide layers: MKL's GEMM into Jn, then the combination in place.
template <typename T>
static inline void tangent_step(const T* __restrict W, const T* __restrict ds, const T* __restrict J,
                                T* __restrict Jn, int64_t m, int64_t n, int64_t w, T eps, T delta, bool unit) {
  const int64_t nw = n * w;
#ifdef ODENET_MKL
  if ((m >= 16 || (m >= 8 && nw >= 1024)) && m * nw < INT32_MAX) {
    affine<T>(W, nullptr, J, Jn, m, nw);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < n; ++p) {
        T* Jnip = Jn + (i * n + p) * w;
        const T* Jip = J + (i * n + p) * w;
        const T* dsi = ds + i * w;
        for (int64_t c = 0; c < w; ++c) Jnip[c] = (unit ? Jip[c] : eps * Jip[c]) + delta * (dsi[c] * Jnip[c]);
      }
    return;
  }
#endif
  switch (m) {  // the narrowest layers (the geometry's width-2 planes): unrolled, one pass
    case 1: return tangent_step_small<T, 1>(W, ds, J, Jn, n, w, eps, delta, unit);
    case 2: return tangent_step_small<T, 2>(W, ds, J, Jn, n, w, eps, delta, unit);
    case 3: return tangent_step_small<T, 3>(W, ds, J, Jn, n, w, eps, delta, unit);
    case 4: return tangent_step_small<T, 4>(W, ds, J, Jn, n, w, eps, delta, unit);
    default: break;
  }
  constexpr int CB = 128 / sizeof(T);  // 4 vector registers of accumulators (AVX2): no spills
  for (int64_t i = 0; i < m; ++i) {
    const T* Wi = W + i * m;
    const T* dsi = ds + i * w;
    for (int64_t p = 0; p < n; ++p) {
      const T* Jip = J + (i * n + p) * w;
      T* Jnip = Jn + (i * n + p) * w;
      int64_t c0 = 0;
      for (; c0 + CB <= w; c0 += CB) {
        T acc[CB];
        const T* J0p = J + p * w + c0;
        for (int c = 0; c < CB; ++c) acc[c] = Wi[0] * J0p[c];
        for (int64_t j = 1; j < m; ++j) {
          const T wij = Wi[j];
          const T* Jjp = J + (j * n + p) * w + c0;
          for (int c = 0; c < CB; ++c) acc[c] += wij * Jjp[c];
        }
        if (unit) {
          for (int c = 0; c < CB; ++c) Jnip[c0 + c] = Jip[c0 + c] + delta * (dsi[c0 + c] * acc[c]);
        } else {
          for (int c = 0; c < CB; ++c) Jnip[c0 + c] = eps * Jip[c0 + c] + delta * (dsi[c0 + c] * acc[c]);
        }
      }
      for (int64_t c = c0; c < w; ++c) {
        T a = Wi[0] * J[p * w + c];
        for (int64_t j = 1; j < m; ++j) a += Wi[j] * J[(j * n + p) * w + c];
        Jnip[c] = (unit ? Jip[c] : eps * Jip[c]) + delta * (dsi[c] * a);
      }
    }
  }
}

// The loop with tangents J_{k+1} = DF_k J_k = ε J_k + δ diag(σ'(z_k)) W_l J_k, z_k = W_l h_k + b_l.
// W (L, m, m), b (L, m), h0 (m, B), J0 (m, n, B), all contiguous; hout (steps + 1, m, B) and
// Jout (steps + 1, m, n, B) if keep, else (m, B) and (m, n, B); dsout (steps, m, B): σ'(z_k), if not
// null.  The batch is cut into chunks of
// CB columns that run all their steps before the next chunk starts, so a chunk's h, z, σ' and J
// stay in cache (J is read once and J_{k+1} written once per step); chunks are
// independent columns and run in parallel (torch's intra-op threads).
template <typename T, int A>
static void run_tangent(const T* W, const T* b, const T* h0, const T* J0, T* hout, T* Jout, T* dsout, int64_t L, int64_t m,
                        int64_t n, int64_t B, T eps, T delta, int64_t refine, int64_t start, int64_t steps,
                        bool keep) {
  constexpr int64_t CB = 256;
  const bool unit = eps == T(1);
  const int64_t mn = m * n;
  at::parallel_for(0, (B + CB - 1) / CB, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<T> buf((3 + 2 * n) * m * CB);
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      const int64_t c0 = chunk * CB, w = std::min(CB, B - c0);
      T* h = buf.data();
      T* z = h + m * w;
      T* ds = z + m * w;
      T* J = ds + m * w;
      T* Jn = J + mn * w;  // J_{k+1}, then swapped with J
      // rows of w columns: gather from / scatter to the (…, B) layout
      auto gather = [&](const T* src, T* dst, int64_t rows) {
        for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * w, src + r * B + c0, sizeof(T) * w);
      };
      auto scatter = [&](const T* src, T* dst, int64_t rows) {
        for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * B + c0, src + r * w, sizeof(T) * w);
      };
      gather(h0, h, m);
      gather(J0, J, mn);
      if (keep) {
        scatter(h, hout, m);
        scatter(J, Jout, mn);
      }
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t l = (start + s) / refine;
        affine<T>(W + l * m * m, b + l * m, h, z, m, w);
        // σ'(z) and σ(z) in place (tanh: σ' = 1 - σ², from the one evaluation)
        if constexpr (A == TANH) {
          activate<T, A>(z, m * w);
          for (int64_t c = 0; c < m * w; ++c) ds[c] = T(1) - z[c] * z[c];
        } else if constexpr (A == RELU) {
          for (int64_t c = 0; c < m * w; ++c) ds[c] = z[c] > T(0) ? T(1) : T(0);
          activate<T, A>(z, m * w);
        } else if constexpr (A == SOFTPLUS) {
          for (int64_t c = 0; c < m * w; ++c) ds[c] = T(1) / (T(1) + std::exp(-z[c]));
          activate<T, A>(z, m * w);
        } else {
          std::fill(ds, ds + m * w, T(1));
        }
        if (dsout) scatter(ds, dsout + s * m * B, m);
        if (n > 0) tangent_step<T>(W + l * m * m, ds, J, Jn, m, n, w, eps, delta, unit);
        std::swap(J, Jn);
        if (unit) {
          for (int64_t c = 0; c < m * w; ++c) h[c] += delta * z[c];
        } else {
          for (int64_t c = 0; c < m * w; ++c) h[c] = eps * h[c] + delta * z[c];
        }
        if (keep) {
          scatter(h, hout + (s + 1) * m * B, m);
          scatter(J, Jout + (s + 1) * mn * B, mn);
        }
      }
      if (!keep) {
        scatter(h, hout, m);
        scatter(J, Jout, mn);
      }
    }
  });
}

template <typename T>
static void dispatch(int64_t act, const T* W, const T* b, const T* h0, T* out, int64_t K, int64_t L, int64_t m,
                     int64_t B, T eps, T delta, int64_t refine, int64_t start, int64_t steps, bool keep) {
  switch (act) {
    case TANH: return run<T, TANH>(W, b, h0, out, K, L, m, B, eps, delta, refine, start, steps, keep);
    case RELU: return run<T, RELU>(W, b, h0, out, K, L, m, B, eps, delta, refine, start, steps, keep);
    case IDENTITY: return run<T, IDENTITY>(W, b, h0, out, K, L, m, B, eps, delta, refine, start, steps, keep);
    case SOFTPLUS: return run<T, SOFTPLUS>(W, b, h0, out, K, L, m, B, eps, delta, refine, start, steps, keep);
    default: TORCH_CHECK(false, "unknown activation code ", act);
  }
}

template <typename T>
static void dispatch_tangent(int64_t act, const T* W, const T* b, const T* h0, const T* J0, T* hout, T* Jout, T* dsout,
                             int64_t L, int64_t m, int64_t n, int64_t B, T eps, T delta, int64_t refine,
                             int64_t start, int64_t steps, bool keep) {
  switch (act) {
    case TANH: return run_tangent<T, TANH>(W, b, h0, J0, hout, Jout, dsout, L, m, n, B, eps, delta, refine, start, steps, keep);
    case RELU: return run_tangent<T, RELU>(W, b, h0, J0, hout, Jout, dsout, L, m, n, B, eps, delta, refine, start, steps, keep);
    case IDENTITY:
      return run_tangent<T, IDENTITY>(W, b, h0, J0, hout, Jout, dsout, L, m, n, B, eps, delta, refine, start, steps, keep);
    case SOFTPLUS:
      return run_tangent<T, SOFTPLUS>(W, b, h0, J0, hout, Jout, dsout, L, m, n, B, eps, delta, refine, start, steps, keep);
    default: TORCH_CHECK(false, "unknown activation code ", act);
  }
}

torch::Tensor euler_loop(torch::Tensor W, torch::Tensor b, torch::Tensor h0, double eps, double delta,
                         int64_t refine, int64_t start, int64_t steps, int64_t act, bool keep) {
  TORCH_CHECK(W.dim() == 4 && b.dim() == 3 && h0.dim() == 3, "W (K, L, m, m), b (K, L, m), h0 (K, m, B)");
  TORCH_CHECK(W.is_contiguous() && b.is_contiguous() && h0.is_contiguous(), "contiguous operands");
  TORCH_CHECK(W.scalar_type() == h0.scalar_type() && b.scalar_type() == h0.scalar_type(), "one dtype");
  TORCH_CHECK(W.device().is_cpu() && b.device().is_cpu() && h0.device().is_cpu(), "CPU tensors");
  const int64_t K = h0.size(0), m = h0.size(1), B = h0.size(2), L = W.size(1);
  TORCH_CHECK(W.size(0) == K && b.size(0) == K && W.size(2) == m && W.size(3) == m && b.size(1) == L &&
              b.size(2) == m, "shapes");
  TORCH_CHECK(refine >= 1 && start >= 0 && steps >= 0 && (start + steps) <= L * refine, "step range");
  auto out = keep ? torch::empty({steps + 1, K, m, B}, h0.options()) : torch::empty({K, m, B}, h0.options());
  if (K * m * B == 0) return out;
  pybind11::gil_scoped_release nogil;
  if (h0.scalar_type() == torch::kFloat) {
    dispatch<float>(act, W.data_ptr<float>(), b.data_ptr<float>(), h0.data_ptr<float>(), out.data_ptr<float>(),
                    K, L, m, B, static_cast<float>(eps), static_cast<float>(delta), refine, start, steps, keep);
  } else if (h0.scalar_type() == torch::kDouble) {
    dispatch<double>(act, W.data_ptr<double>(), b.data_ptr<double>(), h0.data_ptr<double>(),
                     out.data_ptr<double>(), K, L, m, B, eps, delta, refine, start, steps, keep);
  } else {
    TORCH_CHECK(false, "float32 or float64 only");
  }
  return out;
}

std::vector<torch::Tensor> euler_tangent_loop(torch::Tensor W, torch::Tensor b, torch::Tensor h0, torch::Tensor J0,
                                              double eps, double delta, int64_t refine, int64_t start, int64_t steps,
                                              int64_t act, bool keep, bool keep_ds) {
  TORCH_CHECK(W.dim() == 3 && b.dim() == 2 && h0.dim() == 2 && J0.dim() == 3, "W (L, m, m), b (L, m), h0 (m, B), J0 (m, n, B)");
  TORCH_CHECK(W.is_contiguous() && b.is_contiguous() && h0.is_contiguous() && J0.is_contiguous(), "contiguous operands");
  TORCH_CHECK(W.scalar_type() == h0.scalar_type() && b.scalar_type() == h0.scalar_type() &&
              J0.scalar_type() == h0.scalar_type(), "one dtype");
  TORCH_CHECK(W.device().is_cpu() && b.device().is_cpu() && h0.device().is_cpu() && J0.device().is_cpu(), "CPU tensors");
  const int64_t m = h0.size(0), B = h0.size(1), L = W.size(0), n = J0.size(1);
  TORCH_CHECK(W.size(1) == m && W.size(2) == m && b.size(0) == L && b.size(1) == m && J0.size(0) == m &&
              J0.size(2) == B, "shapes");
  TORCH_CHECK(refine >= 1 && start >= 0 && steps >= 0 && (start + steps) <= L * refine, "step range");
  auto hout = keep ? torch::empty({steps + 1, m, B}, h0.options()) : torch::empty({m, B}, h0.options());
  auto Jout = keep ? torch::empty({steps + 1, m, n, B}, h0.options()) : torch::empty({m, n, B}, h0.options());
  auto dsout = torch::empty({keep_ds ? steps : 0, m, B}, h0.options());  // σ'(z_k) of every step, if kept
  if (m * B == 0) return {hout, Jout, dsout};
  pybind11::gil_scoped_release nogil;
  if (h0.scalar_type() == torch::kFloat) {
    dispatch_tangent<float>(act, W.data_ptr<float>(), b.data_ptr<float>(), h0.data_ptr<float>(), J0.data_ptr<float>(),
                            hout.data_ptr<float>(), Jout.data_ptr<float>(), keep_ds ? dsout.data_ptr<float>() : nullptr,
                            L, m, n, B, static_cast<float>(eps),
                            static_cast<float>(delta), refine, start, steps, keep);
  } else if (h0.scalar_type() == torch::kDouble) {
    dispatch_tangent<double>(act, W.data_ptr<double>(), b.data_ptr<double>(), h0.data_ptr<double>(),
                             J0.data_ptr<double>(), hout.data_ptr<double>(), Jout.data_ptr<double>(),
                             keep_ds ? dsout.data_ptr<double>() : nullptr, L, m, n, B,
                             eps, delta, refine, start, steps, keep);
  } else {
    TORCH_CHECK(false, "float32 or float64 only");
  }
  return {hout, Jout, dsout};
}
"""


def check_native(act: Activation, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
    """ValueError unless the native loop runs ``act`` (a built-in of :data:`NATIVE_ACTIVATIONS`)
    and, where given, ``dtype`` (float32, float64) and ``device`` (the CPU)."""
    if act.name not in NATIVE_ACTIVATIONS or ACTIVATIONS.get(act.name) is not act:
        raise ValueError(f"compile='native' runs the built-in activations {sorted(NATIVE_ACTIVATIONS)} only; got "
                         f"an activation named {act.name!r}; use compile=False for it")
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise ValueError(f"compile='native' runs float32 and float64 only; got dtype {dtype}")
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"compile='native' runs on the CPU only; got device {device}; use compile=True there")


def _has_mkl() -> bool:
    """Whether libtorch_cpu exports MKL's vector tanh and GEMM (torch built with MKL: the x86 wheels)."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        return all(hasattr(lib, name) for name in ("VSTANH_", "VDTANH_", "sgemm_", "dgemm_"))
    except OSError:
        return False


def _build_flags() -> list[str]:
    """-O3; MKL's tanh and GEMM where torch links them; else flags that let ATen's ``Vectorized<T>`` use AVX2
    (and SLEEF's AVX2 tanh, exported by libtorch_cpu) when the CPU has it, by torch's own
    detection; none otherwise (a scalar fallback)."""
    flags = ["-O3"]
    if _has_mkl():
        flags.append("-DODENET_MKL")
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


@functools.cache
def native_module():
    """The built extension (built on first use, then loaded from torch's extensions cache);
    RuntimeError naming the cause when it cannot be built (no C++ compiler, no headers)."""
    return _build(_build_flags())


def _build(flags: list[str]):
    tag = hashlib.sha1((_SOURCE + " ".join(flags) + torch.__version__).encode()).hexdigest()[:12]
    try:
        from torch.utils import cpp_extension
        return cpp_extension.load_inline(name=f"odenet_native_{tag}", cpp_sources=[_SOURCE],
                                         functions=["euler_loop", "euler_tangent_loop"], extra_cflags=flags, verbose=False)
    except Exception as exc:  # any failure of the toolchain: say why, once, as one error type
        raise RuntimeError(f"compile='native' needs a C++ compiler to build odenet's native loop "
                           f"(torch.utils.cpp_extension.load_inline); the build failed: "
                           f"{type(exc).__name__}: {exc}") from exc


def _check_names(activation: str, record: str) -> None:
    if activation not in NATIVE_ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(NATIVE_ACTIVATIONS)}; got {activation!r}")
    if record not in ("all", "end"):
        raise ValueError(f"record must be 'all' or 'end'; got {record!r}")


def _check_steps(L: int, refine: int, start: int, steps: int) -> tuple[int, int, int]:
    """(refine, start, steps) as Python ints (NumPy integers too); ValueError unless they are
    integers with refine >= 1, 0 <= start, 0 <= steps and start + steps <= L · refine."""
    try:
        if any(isinstance(v, bool) for v in (refine, start, steps)):
            raise TypeError
        r, a, n = operator.index(refine), operator.index(start), operator.index(steps)
    except TypeError:
        r = a = n = -1
    if not (r >= 1 and 0 <= a and 0 <= n and a + n <= L * r):
        raise ValueError(f"need integers refine >= 1, 0 <= start, 0 <= steps, start + steps <= L * refine = "
                         f"{L * refine if r >= 1 else '?'}; got refine={refine!r}, start={start!r}, steps={steps!r}")
    return r, a, n


def native_euler_loop(W: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, eps: float, delta: float, refine: int,
                      start: int, steps: int, activation: str, record: str = "end") -> torch.Tensor:
    """Steps k = start … start + steps - 1 of h_{k+1} = ε h_k + δ σ(W_l h_k + b_l), l = k // refine,
    in C++ (module docstring), with no autograd.

    W (L, m, m), b (L, m), h0 batch-last (m, B); or with a member axis W (K, L, m, m),
    b (K, L, m), h0 (K, m, B); float32 or float64 on the CPU, one dtype.  ``activation``: a key
    of :data:`NATIVE_ACTIVATIONS`.  Returns every state (steps + 1, …, m, B) for
    ``record="all"``, else the last (…, m, B), batch-last like h0.  The arguments are checked
    (ValueError) before the build and the loop.
    """
    _check_names(activation, record)
    batched = h0.ndim == 3
    if h0.ndim not in (2, 3) or W.ndim != h0.ndim + 1 or b.ndim != h0.ndim:
        raise ValueError(f"need W (L, m, m), b (L, m), h0 (m, B), or with a member axis K in front of each; got "
                         f"shapes W {tuple(W.shape)}, b {tuple(b.shape)}, h0 {tuple(h0.shape)}")
    L, m = W.shape[-3], h0.shape[-2]
    if W.shape[-2:] != (m, m) or b.shape[-2:] != (L, m) or (batched and not W.shape[0] == b.shape[0] == h0.shape[0]):
        raise ValueError(f"shapes do not fit together: W {tuple(W.shape)}, b {tuple(b.shape)}, h0 {tuple(h0.shape)}")
    if not (W.dtype == b.dtype == h0.dtype):
        raise ValueError(f"W, b and h0 must share a dtype; got {W.dtype}, {b.dtype}, {h0.dtype}")
    check_native(ACTIVATIONS[activation], h0.dtype, h0.device)
    refine, start, steps = _check_steps(L, refine, start, steps)
    return run_euler_loop(W, b, h0, eps, delta, refine, start, steps, activation, record)


def run_euler_loop(W: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, eps: float, delta: float, refine: int,
                   start: int, steps: int, activation: str, record: str) -> torch.Tensor:
    """:func:`native_euler_loop` without its checks, for the kernel, which has made them (a
    small batch's loop costs tens of microseconds, as much as the checks)."""
    if h0.ndim == 2:  # no member axis: a member axis of one
        out = run_euler_loop(W[None], b[None], h0[None], eps, delta, refine, start, steps, activation, record)
        return out[:, 0] if record == "all" else out[0]
    return native_module().euler_loop(W.contiguous(), b.contiguous(), h0.contiguous(), float(eps), float(delta),
                                      int(refine), int(start), int(steps),  # NumPy integers as well
                                      NATIVE_ACTIVATIONS[activation], record == "all")


def native_tangent_loop(W: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, J0: torch.Tensor, eps: float,
                        delta: float, refine: int, start: int, steps: int, activation: str,
                        record: str = "end", derivatives: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`native_euler_loop` with tangents: also J_{k+1} = ε J_k + δ diag(σ'(W_l h_k + b_l)) W_l J_k.

    W (L, m, m), b (L, m), h0 (m, B), J0 (m, n, B), batch-last, no member axis; float32 or
    float64 on the CPU.  The batch runs in chunks of 256 columns, each through all its steps
    (its state and tangents stay in cache), the chunks in parallel on torch's intra-op threads;
    the columns are independent, so the result does not depend on the number of threads.
    Returns (states, tangents, derivatives): (steps + 1, m, B) and (steps + 1, m, n, B) for
    ``record="all"``, else the last, (m, B) and (m, n, B); with ``derivatives`` also σ'(W_l h_k +
    b_l) of every step, (steps, m, B) (from which DF_k follows), else None.  The arguments are
    checked (ValueError) before the build.
    """
    _check_names(activation, record)
    if W.ndim != 3 or b.ndim != 2 or h0.ndim != 2 or J0.ndim != 3:
        raise ValueError(f"need W (L, m, m), b (L, m), h0 (m, B), J0 (m, n, B); got shapes W {tuple(W.shape)}, "
                         f"b {tuple(b.shape)}, h0 {tuple(h0.shape)}, J0 {tuple(J0.shape)}")
    L, (m, B) = W.shape[0], h0.shape
    if W.shape[1:] != (m, m) or b.shape != (L, m) or J0.shape[0] != m or J0.shape[2] != B:
        raise ValueError(f"shapes do not fit together: W {tuple(W.shape)}, b {tuple(b.shape)}, h0 {tuple(h0.shape)}, "
                         f"J0 {tuple(J0.shape)}")
    if not (W.dtype == b.dtype == h0.dtype == J0.dtype):
        raise ValueError(f"W, b, h0 and J0 must share a dtype; got {W.dtype}, {b.dtype}, {h0.dtype}, {J0.dtype}")
    check_native(ACTIVATIONS[activation], h0.dtype, h0.device)
    refine, start, steps = _check_steps(L, refine, start, steps)
    states, tangents, ds = native_module().euler_tangent_loop(W.contiguous(), b.contiguous(), h0.contiguous(),
                                                              J0.contiguous(), float(eps), float(delta), refine, start,
                                                              steps, NATIVE_ACTIVATIONS[activation], record == "all",
                                                              bool(derivatives))
    return states, tangents, (ds if derivatives else None)

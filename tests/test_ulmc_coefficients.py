r"""Every coefficient of the underdamped-Langevin steps, against quadrature of their defining integrals.

The steps integrate :math:`dx = v\,dt,\ dv = (-\gamma v + c\,s)\,dt + \sigma\,dB` over one step of length
``h`` with the gradient term frozen (exponential integrator) or taken at a randomized midpoint ``a``:

* ``gupta_cai_chen.ulmc_ei_step`` / ``ulmc_rm_step`` and ``langevin.ULMC``: :math:`c = 1`,
  :math:`\sigma = \sqrt{2\gamma}`;
* ``langevin.ShenLee``: :math:`\gamma = 2`, :math:`c = u`, :math:`\sigma = 2\sqrt u`.

With :math:`E(r) = \int_0^r e^{-\gamma q}dq` the exact solution with a constant drift :math:`g` is

.. math::
   x(t) = x + E(t)v + g\int_0^t E(t-s)\,ds + \sigma\!\int_0^t E(t-s)\,dB_s,\qquad
   v(t) = e^{-\gamma t}v + g\int_0^t e^{-\gamma(t-s)}ds + \sigma\!\int_0^t e^{-\gamma(t-s)}dB_s,

and the randomized-midpoint step replaces :math:`\int_0^h K(h-s)\,g(x_s)\,ds` by
:math:`h\,K(h-a)\,g(x_a)` (:math:`K = E` for ``x``, :math:`e^{-\gamma\cdot}` for ``v``), with ``x_a`` the
frozen-gradient solution at ``a`` on the *same* Brownian path. Every one of these integrals (the
kernels, the drift weights, the 2x2 / 3x3 Brownian covariances) is computed below by
``scipy.integrate.quad`` (nested where the integrand is itself an integral), never from a closed form.

The step's coefficients are read off by probing the step code: a zero state, unit ``x``, unit ``v``,
unit gradient and one unit Gaussian draw per row (a fake noise object). Two probes: with a gradient that
does not depend on the state (reads the gradient weights directly) and with the non-zero affine gradient
:math:`s(x) = -\lambda(x - \mu)` (reads the composed affine map, midpoint included). Agreement to 1e-10
(relative, per coefficient; the largest measured error of the correct steps is 9.3e-15, in the RM noise
covariance at gamma h = 3). Control: an Euler-type gradient weight :math:`h^2/2` instead of
:math:`(h - E(h))/\gamma` differs by a relative 0.013 (gamma h = 0.04) to 1.2 (gamma h = 3), 1e8-1e10 times
the tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from experiments.samplers import get
from experiments.samplers.gupta_cai_chen import ou_pair, ulmc_ei_step, ulmc_rm_step

TOL = 1e-10
Q = dict(epsabs=1e-15, epsrel=1e-13, limit=200)

# (h, gamma, alpha, lam, mu): gamma h from 0.04 (the series branches of the step's helpers) to 3
CASES = [
    (0.5, 2.0, 0.3, 1.7, 0.4),
    (2.0, 0.7, 0.9, 0.3, -1.2),
    (0.02, 2.0, 0.5, 10.0, 0.8),
    (1.0, 3.0, 0.05, 2.5, 0.0),
    (0.3, 1.0, 0.999, 4.0, 2.0),
]


# -- quadrature of the defining integrals -------------------------------------------------------

class Integrals:
    """The kernels and weights of the linear SDE with friction gamma and noise scale sigma, by quadrature."""

    def __init__(self, gamma, sigma):
        self.gamma, self.sigma = gamma, sigma

    def quad(self, f, lo, hi):
        return integrate.quad(f, lo, hi, **Q)[0]

    def E(self, r):                      # x-kernel: int_0^r e^{-gamma q} dq
        return self.quad(lambda q: math.exp(-self.gamma * q), 0.0, r)

    def Kv(self, r):                     # v-kernel
        return math.exp(-self.gamma * r)

    def gx(self, t):                     # weight of a constant drift in x(t): int_0^t E(t - s) ds
        return self.quad(lambda s: self.E(t - s), 0.0, t)

    def gv(self, t):                     # weight of a constant drift in v(t): int_0^t e^{-gamma (t - s)} ds
        return self.quad(lambda s: self.Kv(t - s), 0.0, t)

    def cov(self, items):
        """Covariance of sigma int_0^{t_i} k_i(t_i - s) dB_s for items (kernel, t_i)."""
        n = len(items)
        C = np.empty((n, n))
        for i, (ki, ti) in enumerate(items):
            for j, (kj, tj) in enumerate(items):
                if j < i:
                    C[i, j] = C[j, i]
                    continue
                C[i, j] = self.sigma**2 * self.quad(lambda s: ki(ti - s) * kj(tj - s), 0.0, min(ti, tj))
        return C


def expected_ei(I, h, c):
    """Constant-gradient map of the EI step: rows (x', v'), columns (x, v, G); noise covariance of (x', v')."""
    A = np.array([[1.0, I.E(h), c * I.gx(h)],
                  [0.0, I.Kv(h), c * I.gv(h)]])
    return A, I.cov([(I.E, h), (I.Kv, h)])


def expected_rm(I, h, a, c):
    """Constant-gradient map of the RM step: rows (x_mid, x', v'), columns (x, v, G); noise covariance."""
    A = np.array([[1.0, I.E(a), c * I.gx(a)],
                  [1.0, I.E(h), c * h * I.E(h - a)],
                  [0.0, I.Kv(h), c * h * I.Kv(h - a)]])
    return A, I.cov([(I.E, a), (I.E, h), (I.Kv, h)])


def affine_ei(I, h, c, lam, mu):
    """EI step with s(x) = -lam (x - mu): (A on (x, v), b, noise cov) from the constant-gradient weights."""
    A3, C = expected_ei(I, h, c)
    # G = -lam x + lam mu
    A = A3[:, :2] + np.outer(A3[:, 2], [-lam, 0.0])
    b = A3[:, 2] * lam * mu
    return A, b, C


def affine_rm(I, h, a, c, lam, mu):
    """RM step with s(x) = -lam (x - mu), composed: x_mid from s(x), (x', v') from s(x_mid)."""
    A3, C3 = expected_rm(I, h, a, c)
    # x_mid = (1 - lam c gx(a)) x + E(a) v + c gx(a) lam mu + W1
    mid_A = np.array([A3[0, 0] - lam * A3[0, 2], A3[0, 1]])
    mid_b = A3[0, 2] * lam * mu
    # g_mid = -lam x_mid + lam mu; (x', v') = base + w g_mid + (W2, W3)
    w = A3[1:, 2]
    A = np.stack([A3[1, :2], A3[2, :2]]) + np.outer(w, -lam * mid_A)
    b = w * (-lam * mid_b + lam * mu)
    # noise: (x', v') = (W2, W3) - lam w W1
    M = np.array([[-lam * w[0], 1.0, 0.0], [-lam * w[1], 0.0, 1.0]])
    return np.vstack([mid_A, A]), np.concatenate([[mid_b], b]), C3, M @ C3 @ M.T


# -- probing the step code -----------------------------------------------------------------------

class ProbeNoise:
    """Gaussian draw k is a unit impulse on row ``first + k``; internal uniforms are ``alpha``."""

    mode = "sample"

    def __init__(self, rows, first, alpha=0.5):
        self.rows, self.first, self.k, self.alpha = rows, first, 0, alpha
        self.batch = rows

    def normal(self, n_columns):
        z = np.zeros((self.rows, n_columns))
        z[self.first + self.k] = 1.0
        self.k += 1
        return z

    def uniform(self, size=1):
        return np.full((self.rows, size), self.alpha)

    def begin_step(self):
        self.k = 0


def probe(step, n_inputs, n_draws, *, constant_gradient, lam=0.0, mu=0.0, alpha=0.5):
    """Run ``step(x, v, grad, noise)`` on impulse rows; return (coefficients, constant, noise map, mids).

    Rows: 0 zero; 1 unit x; 2 unit v; 3 unit gradient (constant-gradient probe only); then one row per
    Gaussian draw. ``coefficients`` is (outputs, inputs), ``noise map`` (outputs, draws).
    """
    rows = 1 + n_inputs + n_draws
    X, V, G = np.zeros((rows, 1)), np.zeros((rows, 1)), np.zeros((rows, 1))
    X[1], V[2] = 1.0, 1.0
    if constant_gradient:
        G[3] = 1.0
    calls = []

    def grad(y):
        calls.append(y.copy())
        return G.copy() if constant_gradient else -lam * (y - mu)

    out = step(X, V, grad, ProbeNoise(rows, 1 + n_inputs, alpha))
    outs = np.stack([o[:, 0] for o in ([calls[1]] if len(calls) == 2 else []) + list(out)])   # (n_out, rows)
    b = outs[:, 0]
    A = outs[:, 1:1 + n_inputs] - b[:, None]
    C = outs[:, 1 + n_inputs:] - b[:, None]
    return A, b, C


def close(got, exp, tol=TOL):
    """Largest relative error, each entry relative to its own size (entries below 1e-300 compared absolutely)."""
    got, exp = np.asarray(got, float), np.asarray(exp, float)
    scale = np.maximum(np.abs(exp), 1e-300)
    err = np.abs(got - exp) / scale
    return float(np.max(np.where(np.abs(exp) > 1e-300, err, np.abs(got))))


# the four steps, in the common signature step(x, v, grad, noise) -> (x', v')

def gcc_ei(h, gamma):
    return (lambda x, v, grad, noise: ulmc_ei_step(x, v, grad, h, gamma, noise)), 2, 1.0, math.sqrt(2 * gamma)


def gcc_rm(h, gamma, alpha):
    return ((lambda x, v, grad, noise: ulmc_rm_step(x, v, grad, h, gamma, np.full((x.shape[0], 1), alpha), noise)),
            4, 1.0, math.sqrt(2 * gamma))


def langevin_ulmc(h, gamma):
    k = get("ulmc").make(1, h=h, gamma=gamma)
    return (lambda x, v, grad, noise: k.step((x, v), {}, 0, noise, lambda y, t: grad(y))), 2, 1.0, math.sqrt(2 * gamma)


def shen_lee(h, u):
    k = get("shen_lee").make(1, h=h, u=u)
    return (lambda x, v, grad, noise: k.step((x, v), {}, 0, noise, lambda y, t: grad(y))), 3, u, 2.0 * math.sqrt(u)


def euler_weight_ei_step(x, v_, grad, h, gamma, noise):
    """Control: the EI step with an Euler-type gradient weight h^2/2 in x (everything else unchanged)."""
    g = grad(x)
    Eh = -math.expm1(-gamma * h) / gamma
    D, J = ou_pair(h, gamma, noise, x.shape[1])
    c = math.sqrt(2.0 * gamma)
    return x + Eh * v_ + (h * h / 2) * g + (c / gamma) * D, math.exp(-gamma * h) * v_ + Eh * g + c * J


# -- the tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("h,gamma,alpha,lam,mu", CASES)
@pytest.mark.parametrize("which", ["gcc_ei", "langevin_ulmc"])
def test_ei_step_every_coefficient(which, h, gamma, alpha, lam, mu):
    step, q, c, sigma = gcc_ei(h, gamma) if which == "gcc_ei" else langevin_ulmc(h, gamma)
    I = Integrals(gamma, sigma)
    A_exp, C_exp = expected_ei(I, h, c)
    # constant gradient: weights of x, v, G and the noise covariance
    A, b, C = probe(step, 3, q, constant_gradient=True)
    assert close(A, A_exp) < TOL, (A, A_exp)
    assert np.all(b == 0.0)
    assert close(C @ C.T, C_exp) < TOL, (C @ C.T, C_exp)
    # non-zero affine gradient s(x) = -lam (x - mu): the whole affine map
    A2_exp, b2_exp, _ = affine_ei(I, h, c, lam, mu)
    A2, b2, C2 = probe(step, 2, q, constant_gradient=False, lam=lam, mu=mu)
    assert close(A2, A2_exp) < TOL and close(b2, b2_exp) < TOL, (A2, A2_exp, b2, b2_exp)
    assert close(C2 @ C2.T, C_exp) < TOL


@pytest.mark.parametrize("h,gamma,alpha,lam,mu", CASES)
def test_rm_step_every_coefficient(h, gamma, alpha, lam, mu):
    step, q, c, sigma = gcc_rm(h, gamma, alpha)
    I = Integrals(gamma, sigma)
    a = alpha * h
    A_exp, C_exp = expected_rm(I, h, a, c)
    A, b, C = probe(step, 3, q, constant_gradient=True)         # rows: x_mid, x', v'
    assert close(A, A_exp) < TOL, (A, A_exp)
    assert np.all(b == 0.0)
    assert close(C @ C.T, C_exp) < TOL, (C @ C.T, C_exp)
    A2_exp, b2_exp, _, C2_exp = affine_rm(I, h, a, c, lam, mu)
    A2, b2, C2 = probe(step, 2, q, constant_gradient=False, lam=lam, mu=mu)
    assert close(A2, A2_exp) < TOL and close(b2, b2_exp) < TOL, (A2, A2_exp, b2, b2_exp)
    assert close(C2[1:] @ C2[1:].T, C2_exp) < TOL


@pytest.mark.parametrize("h,gamma,alpha,lam,mu", CASES)
def test_shen_lee_step_every_coefficient(h, gamma, alpha, lam, mu):
    """Shen & Lee's step (gamma = 2, gradient u s, noise 2 sqrt(u) dB); ``gamma`` of the case is used as u."""
    u = 1.0 / gamma
    step, q, c, sigma = shen_lee(h, u)
    I = Integrals(2.0, sigma)
    a = alpha * h
    stepa = lambda x, v, grad, noise: step(x, v, grad, ProbeNoiseAlpha(noise, alpha))   # noqa: E731
    A_exp, C_exp = expected_rm(I, h, a, c)
    A, b, C = probe(stepa, 3, q, constant_gradient=True)
    assert close(A, A_exp) < TOL, (A, A_exp)
    assert close(C @ C.T, C_exp) < TOL, (C @ C.T, C_exp)
    A2_exp, b2_exp, _, C2_exp = affine_rm(I, h, a, c, lam, mu)
    A2, b2, C2 = probe(stepa, 2, q, constant_gradient=False, lam=lam, mu=mu)
    assert close(A2, A2_exp) < TOL and close(b2, b2_exp) < TOL, (A2, A2_exp, b2, b2_exp)
    assert close(C2[1:] @ C2[1:].T, C2_exp) < TOL


class ProbeNoiseAlpha:
    """Pass-through with the internal uniform fixed at ``alpha``."""

    def __init__(self, base, alpha):
        self.base, self.alpha = base, alpha

    def normal(self, n):
        return self.base.normal(n)

    def uniform(self, size=1):
        return np.full((self.base.rows, size), self.alpha)


def test_rm_step_averaged_over_alpha_is_unbiased_for_the_drift_integral():
    """The midpoint weights h E(h - a), h e^{-gamma(h - a)} average (a ~ U[0, h]) to the EI weights gx(h), gv(h)."""
    h, gamma = 0.7, 1.3
    I = Integrals(gamma, math.sqrt(2 * gamma))
    nodes, weights = np.polynomial.legendre.leggauss(30)
    alphas = 0.5 * (nodes + 1.0)
    wx = wv = 0.0
    for al, wt in zip(alphas, weights, strict=True):
        A, _, _ = probe(gcc_rm(h, gamma, float(al))[0], 3, 4, constant_gradient=True)
        wx += 0.5 * wt * A[1, 2]
        wv += 0.5 * wt * A[2, 2]
    assert wx == pytest.approx(I.gx(h), rel=1e-12, abs=0) and wv == pytest.approx(I.gv(h), rel=1e-12, abs=0)


@pytest.mark.parametrize("h,gamma,alpha,lam,mu", CASES)
def test_control_euler_gradient_weight_is_detected(h, gamma, alpha, lam, mu):
    """h^2/2 instead of (h - E(h))/gamma. Measured relative difference of the gradient weight: 0.013
    (gamma h = 0.04), 0.10 (0.3), 0.36 (1), 0.52 (1.4), 1.20 (3), i.e. 1e8-1e10 times the tolerance; in
    the composed affine map with s = -lam (x - mu): 2.6e-5 .. 1.6 (2.6e5 times the tolerance at least).
    The correct EI step's largest relative error in the same comparison is 3.4e-16."""
    sigma = math.sqrt(2 * gamma)
    I = Integrals(gamma, sigma)
    A_exp, _ = expected_ei(I, h, 1.0)
    wrong = lambda x, v, grad, noise: euler_weight_ei_step(x, v, grad, h, gamma, noise)   # noqa: E731
    A, _, _ = probe(wrong, 3, 2, constant_gradient=True)
    rel = abs(A[0, 2] - A_exp[0, 2]) / A_exp[0, 2]
    z = gamma * h
    # (h^2/2) / ((h - E)/gamma) - 1 = z^2 / (2 (z - 1 + e^{-z})) - 1 ~ z/3 for small z
    assert rel == pytest.approx(z * z / (2 * (z + math.expm1(-z))) - 1.0, rel=1e-8, abs=0)
    assert rel > 1e6 * TOL, rel
    A2_exp, b2_exp, _ = affine_ei(I, h, 1.0, lam, mu)
    A2, b2, _ = probe(wrong, 2, 2, constant_gradient=False, lam=lam, mu=mu)
    assert close(A2, A2_exp) > 1e5 * TOL        # composed with lam: 2.6e-5 (gamma h = 0.04) .. 0.1
    # the correct step passes the identical comparison
    A_ok, _, _ = probe(gcc_ei(h, gamma)[0], 3, 2, constant_gradient=True)
    assert close(A_ok, A_exp) < TOL

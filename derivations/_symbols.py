"""The symbols the claims share, declared once with their domains.

SymPy symbols with the same name and assumptions are equal, so a claim that declares
its own copy gets the same symbol; declaring them here says which ones are shared. A
symbol used by one derivation only stays in its module.

* ``x``, ``z``: a real scalar, and a standard normal variable;
* ``q``: a variance (of the pre-activation :math:`x \\sim N(0, q)`); ``Q``: the random
  variance of a finite-width layer's pre-activations; ``s2``: the input's variance;
* ``n_prev``, ``n_t``: the widths :math:`n_{t-1}` and :math:`n_t` of layer :math:`t`;
  ``gamma``: the weight variance :math:`\\gamma_t`; ``v_prev``: the variance
  :math:`v_{t-1}` of the previous layer's outputs; ``mu_prev``: their mean;
* ``i``, ``j``: unit indices; ``h``, ``h_prev``, ``w``, ``g``, ``g_prev``: the indexed
  outputs :math:`h^t`, :math:`h^{t-1}`, weights :math:`w^t` and gradients :math:`g^t`,
  :math:`g^{t-1}` of layer :math:`t`;
* ``n``: a width (a count of units, or of a chi-square's degrees of freedom); ``k``: a
  count up to it (active units, summation index);
* ``mu``: a mean; ``s``: a standard deviation or scale; ``tau``: a positive parameter
  (a truncation point, a sum of squared weights); ``c``: a positive constant factor;
  ``u``: a real variable (a standardized one, or an activation's argument).
"""

from __future__ import annotations

import sympy as sp

x = sp.Symbol("x", real=True)
z = sp.Symbol("z", real=True)
q = sp.Symbol("q", positive=True)
Q = sp.Symbol("Q", positive=True)
s2 = sp.Symbol("s^2", positive=True)
n_prev = sp.Symbol("n_{t-1}", integer=True, positive=True)
n_t = sp.Symbol("n_t", integer=True, positive=True)
gamma = sp.Symbol("gamma_t", positive=True)
v_prev = sp.Symbol("v_{t-1}", positive=True)
mu_prev = sp.Symbol("mu_t-1", real=True)
i, j = sp.symbols("i j", integer=True, positive=True)
h = sp.IndexedBase("h^{t}")
h_prev = sp.IndexedBase("h^{t-1}")
w = sp.IndexedBase("w^{t}")
g = sp.IndexedBase("g^{t}")
g_prev = sp.IndexedBase("g^{t-1}")
n = sp.Symbol("n", integer=True, positive=True)
k = sp.Symbol("k", integer=True, positive=True)
mu = sp.Symbol("mu", real=True)
s = sp.Symbol("s", positive=True)
tau = sp.Symbol("tau", positive=True)
c = sp.Symbol("c", positive=True)
u = sp.Symbol("u", real=True)

"""Revenue-optimal (Myerson) reserve prices for the value distributions bidscape supports.

With independent private values drawn from a regular distribution ``F``, a second-price
(or any standard) auction with reserve ``r*`` maximises expected revenue among all
mechanisms, where ``r*`` solves ``r - (1 - F(r)) / f(r) = c`` for the seller's own value
``c`` (Myerson 1981). ``r*`` does not depend on the number of bidders, and it is the
monopoly price: the maximiser of ``(r - c) (1 - F(r))``.

>>> from bidscape.markets.distributions import Uniform
>>> myerson_reserve(Uniform(dist="uniform", low=0.0, high=1.0))
0.5
>>> myerson_reserve(Uniform(dist="uniform", low=0.0, high=1.0), seller_value=0.2)
0.6
>>> myerson_reserve({"dist": "uniform", "low": 0.0, "high": 1.0})  # as a scenario writes values
0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, Union

from pydantic import TypeAdapter, ValidationError

from bidscape.markets.distributions import Constant, Distribution, LogNormal, Uniform

_NORMAL = NormalDist()
_DISTRIBUTION: TypeAdapter[Distribution] = TypeAdapter(Distribution)


def as_distribution(values: Union[Distribution, Mapping[str, Any]]) -> Distribution:
    """``values`` as a typed distribution: a scenario's dict form (``{"dist": "uniform", ...}``) is
    validated as a population's ``values`` field is; a bad dict is a ``ValueError`` saying why."""
    if isinstance(values, (Constant, Uniform, LogNormal)):
        return values
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a distribution or its dict form, e.g. "
                        f'{{"dist": "uniform", "low": 0.0, "high": 1.0}} (got {type(values).__name__})')
    try:
        return _DISTRIBUTION.validate_python(dict(values))
    except ValidationError as error:
        # pydantic's location starts with the union member (the dist tag): name the key alone
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or ('dist' if 'tag' in e['type'] else 'values')}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in error.errors())
        raise ValueError(f"invalid values {dict(values)!r}: {problems} (dist is one of constant, uniform, "
                         "lognormal, with the keys a scenario's values take)") from None


def myerson_reserve(values: Union[Distribution, Mapping[str, Any]], seller_value: float = 0.0,
                    value_scale: float = 1.0) -> float:
    """The optimal reserve for bidders whose values are ``value_scale * v``, ``v ~ values``.

    Uniform and constant values have closed forms; for lognormal values the first-order
    condition ``r - (1 - F(r)) / f(r) = seller_value`` is solved to 1e-12 by bisection
    (its root is the maximiser of ``(r - c)(1 - F(r))``: ``tests/test_reserves.py``
    checks it against a fine grid). ``values`` may be the dict a scenario file writes.
    """
    values = as_distribution(values)
    if value_scale <= 0 or not math.isfinite(value_scale):
        raise ValueError(f"value_scale must be a positive number (got {value_scale})")
    if seller_value < 0 or not math.isfinite(seller_value):
        raise ValueError(f"seller_value must be a non-negative number (got {seller_value})")
    c = seller_value / value_scale  # solve in units of v, scale back at the end
    if isinstance(values, Constant):
        r = values.value if values.value > c else c
    elif isinstance(values, Uniform):
        # virtual value 2v - high; optimum (high + c) / 2, but never below the lowest value
        lo, hi = values.low, values.high
        r = c if hi <= c else max((hi + c) / 2, lo)
    elif isinstance(values, LogNormal):
        r = _lognormal_reserve(values.mean_, values.sigma, c)
    else:
        raise TypeError(f"no Myerson reserve for {type(values).__name__}")
    return r * value_scale


def virtual_value(values: Union[Distribution, Mapping[str, Any]], v: float) -> float:
    """``v - (1 - F(v)) / f(v)``: the marginal revenue of selling to a bidder of value ``v``."""
    values = as_distribution(values)
    if isinstance(values, Uniform):
        return 2 * v - values.high
    if isinstance(values, LogNormal):
        return _lognormal_virtual(values.mean_, values.sigma, v)
    raise TypeError(f"no density for {type(values).__name__}")


def _lognormal_virtual(mu: float, sigma: float, v: float) -> float:
    z = (math.log(v) - mu) / sigma
    survival = _NORMAL.cdf(-z)
    density = _NORMAL.pdf(z) / (v * sigma)
    return v - survival / density


def _lognormal_reserve(mu: float, sigma: float, c: float) -> float:
    if sigma == 0:
        value = math.exp(mu)
        return value if value > c else c
    lo, hi = math.exp(mu - 12 * sigma), math.exp(mu + 12 * sigma)
    if _lognormal_virtual(mu, sigma, lo) >= c:
        return lo
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if _lognormal_virtual(mu, sigma, mid) < c:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)

"""The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way") and the Gamma-Gamma spend
model (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"), on numpy arrays.

Per customer: `x` repeat purchases, `t_x` the time of the last purchase and `T` the time since the first, both from
the first purchase (here: weeks), and for Gamma-Gamma the mean value `m` of the repeat purchases. Parameters are
fitted by maximum likelihood with scipy.optimize (on their logarithms, which keeps them positive); identical rows
are collapsed into weights first, so the optimiser's cost grows with the distinct summaries, not the members.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass
class Fit:
    params: dict
    log_likelihood: float
    converged: bool
    message: str


def _collapse(*columns):
    """Distinct rows of the columns and how many times each occurs (sorted, then cut where any column changes:
    a tenth of the time of numpy's unique over rows)."""
    if not len(columns[0]):
        return [np.asarray(column, dtype=float) for column in columns], np.zeros(0)
    order = np.lexsort(columns[::-1])
    ordered = [np.asarray(column)[order] for column in columns]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = np.any([column[1:] != column[:-1] for column in ordered], axis=0)
    at = np.flatnonzero(starts)
    counts = np.diff(np.append(at, len(order)))
    return [column[at] for column in ordered], counts.astype(float)


def bgnbd_log_likelihood(params, x, t_x, T):
    """Each customer's log-likelihood under BG/NBD with params (r, alpha, a, b) (FHL 2005, equation 6)."""
    r, alpha, a, b = params
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    beta_part = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    still_alive = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    dropped_out = np.where(
        repeat,
        np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return common + beta_part + np.logaddexp(still_alive, dropped_out)


def _fit(negative_log_likelihood, start, names) -> Fit:
    """Minimise over the parameters' logarithms; `negative_log_likelihood` returns the value and its gradient."""
    bounds = [(-12, 12)] * len(start)
    options = {"method": "L-BFGS-B", "jac": True, "bounds": bounds}
    result = optimize.minimize(negative_log_likelihood, np.log(start), **options)
    if not result.success:  # a stop on a flat stretch (line search): one restart from there usually finishes
        again = optimize.minimize(negative_log_likelihood, result.x, **options)
        if again.fun <= result.fun:
            result = again
    params = dict(zip(names, np.exp(result.x).tolist(), strict=True))
    return Fit(
        params=params, log_likelihood=float(-result.fun), converged=bool(result.success), message=str(result.message)
    )


def _by_distinct(values):
    """The distinct values and, for each input, the position of its value among them: a function of `x` alone
    (gammaln, digamma) is computed once per distinct number of repeat purchases, not once per customer."""
    distinct, position = np.unique(values, return_inverse=True)
    return distinct, position.ravel()


def bgnbd_fit(x, t_x, T) -> Fit:
    (x, t_x, T), weights = _collapse(x, t_x, T)
    xs, at = _by_distinct(x)
    repeat = x > 0
    x_minus_1 = np.where(repeat, x - 1, 0.0)
    total = weights.sum()
    repeat_weight = weights[repeat]

    def negative(log_params):
        """Minus the weighted log-likelihood (FHL 2005, equation 6) and its gradient in the log-parameters."""
        r, alpha, a, b = np.exp(log_params)
        log_alive = -(r + x) * np.log(alpha + T)
        log_dropped = np.full_like(x, -np.inf)
        log_dropped[repeat] = np.log(a) - np.log(b + x_minus_1[repeat]) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
        mix = np.logaddexp(log_alive, log_dropped)
        share_alive = np.exp(log_alive - mix)
        share_dropped = 1.0 - share_alive
        per_x = (
            special.gammaln(r + xs) + special.gammaln(b + xs) - special.gammaln(a + b + xs),
            special.digamma(r + xs),
            special.digamma(b + xs),
            special.digamma(a + b + xs),
        )
        gamma_x, psi_r_x, psi_b_x, psi_a_b_x = (values[at] for values in per_x)
        value = weights @ (gamma_x + mix) + total * (
            -special.gammaln(r) + r * np.log(alpha) + special.gammaln(a + b) - special.gammaln(b)
        )
        d_r = weights @ (
            psi_r_x - share_alive * np.log(alpha + T) - share_dropped * np.log(alpha + np.where(repeat, t_x, T))
        ) + total * (np.log(alpha) - special.digamma(r))
        d_alpha = total * r / alpha - weights @ (
            (r + x) * (share_alive / (alpha + T) + share_dropped / (alpha + np.where(repeat, t_x, T)))
        )
        d_a = weights @ (share_dropped / a - psi_a_b_x) + total * special.digamma(a + b)
        d_b = (
            weights @ (psi_b_x - psi_a_b_x)
            - repeat_weight @ (share_dropped[repeat] / (b + x_minus_1[repeat]))
            + total * (special.digamma(a + b) - special.digamma(b))
        )
        gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -value, -gradient

    scale = max(float(np.average(T, weights=weights)), 1.0)
    return _fit(negative, [1.0, scale, 1.0, 1.0], ["r", "alpha", "a", "b"])


def gamma_gamma_log_likelihood(params, x, m):
    """Each repeat customer's log-likelihood of the mean spend `m` over `x` purchases (Fader & Hardie 2013)."""
    p, q, v = params
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )


def gamma_gamma_fit(x, m) -> Fit:
    keep = (x > 0) & (m > 0)
    (x, m), weights = _collapse(x[keep], m[keep])
    xs, at = _by_distinct(x)
    log_m, log_x, x_m = np.log(m), np.log(x), x * m
    total = weights.sum()
    log_m_weighted = weights @ log_m

    def negative(log_params):
        """Minus the weighted log-likelihood and its gradient in the log-parameters."""
        p, q, v = np.exp(log_params)
        log_x_m_v = np.log(x_m + v)
        per_x = (
            special.gammaln(p * xs + q) - special.gammaln(p * xs),
            special.digamma(p * xs + q),
            special.digamma(p * xs),
        )
        gamma_x, psi_px_q, psi_px = (values[at] for values in per_x)
        value = (
            weights @ (gamma_x + p * x * (log_m + log_x) - (p * x + q) * log_x_m_v)
            - log_m_weighted
            + total * (q * np.log(v) - special.gammaln(q))
        )
        d_p = weights @ (x * (psi_px_q - psi_px + log_m + log_x - log_x_m_v))
        d_q = weights @ (psi_px_q - log_x_m_v) + total * (np.log(v) - special.digamma(q))
        d_v = total * q / v - weights @ ((p * x + q) / (x_m + v))
        return -value, -np.array([d_p * p, d_q * q, d_v * v])

    return _fit(negative, [1.0, 1.0, max(float(np.average(m, weights=weights)), 1.0)], ["p", "q", "v"])


def p_alive(params, x, t_x, T):
    """P(alive | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    r, alpha, a, b = params
    repeat = x > 0
    odds = np.where(
        repeat,
        a / np.where(repeat, b + x - 1, 1.0) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))),
        0.0,
    )
    return 1.0 / (1.0 + odds)


def expected_purchases(params, t, x, t_x, T):
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, equation 10)."""
    r, alpha, a, b = params
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    head = (a + b + x - 1) / (a - 1)
    body = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyper
    repeat = x > 0
    tail = 1 + np.where(
        repeat,
        a / np.where(repeat, b + x - 1, 1.0) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))),
        0.0,
    )
    return head * body / tail


def expected_average_spend(params, x, m):
    """E[M | x, m] = (p (v + x m)) / (p x + q - 1); for x = 0 the population mean p v / (q - 1)."""
    p, q, v = params
    return p * (v + x * m) / (p * x + q - 1)


WEEKS_PER_MONTH = 365.25 / 12 / 7


def discounted_value(params_bgnbd, spend, x, t_x, T, *, horizon_weeks: float, monthly_rate: float):
    """CLV over the horizon: each month's expected purchases × the expected spend, discounted at the monthly rate
    (the month's purchases at its end), summed."""
    total = np.zeros_like(np.asarray(x, dtype=float))
    previous = np.zeros_like(total)
    month, end = 1, 0.0
    while end < horizon_weeks:
        end = min(month * WEEKS_PER_MONTH, horizon_weeks)
        cumulative = expected_purchases(params_bgnbd, end, x, t_x, T)
        total += (cumulative - previous) * spend / (1 + monthly_rate) ** month
        previous = cumulative
        month += 1
    return total, previous

#!/usr/bin/python3
"""Checks src/campaigns/stats.c against scipy, number by number.

Usage: test_stats_ref.py path/to/stats_ref [cases]

Generates edge cases and seeded random cases (HR_REF_SEED overrides the seed),
feeds them to the stats_ref driver (one case a line), and recomputes every
field independently:
  p-value          scipy.stats.chi2_contingency(correction=False) on the 2x2 table
  lift intervals   scipy.stats.norm quantiles, unpooled / delta-method errors
  chance to win    scipy.integrate.quad of Beta pdf x Beta cdf, and for small
                   counts Evan Miller's sum in exact rational arithmetic
  SRM              scipy.stats.chisquare against the weights
  planned size     the smallest n whose power (normal approximation of the
                   pooled test) reaches the target
Exits 1 with the case and the field on the first mismatches."""

import json
import math
import os
import random
import subprocess
import sys
from fractions import Fraction

try:
    import numpy as np
    from scipy import integrate, stats
except ImportError as e:
    sys.exit("test_stats_ref.py needs scipy (apt-get install python3-scipy, or "
             "scripts/bootstrap.sh): %s" % e)

DEFAULTS = {"mde": 0.2, "alpha": 0.05, "power": 0.8}

# (relative, absolute) tolerance for each field
TOL = {
    "rate": (1e-12, 0),
    "lift": (1e-9, 1e-14),
    "lift_ci": (1e-9, 1e-14),
    "relative_lift": (1e-9, 1e-14),
    "relative_lift_ci": (1e-9, 1e-12),
    "p_value": (1e-9, 1e-15),
    "chance_to_win": (0, 1e-10),
    "chance_exact": (1e-10, 1e-15),
    "srm_p": (1e-9, 1e-15),
}
worst = {k: 0.0 for k in TOL}


def reject_constant(name):
    raise ValueError("JSON contains %s" % name)


# ---------------------------------------------------------------- cases


def case(arms, mde=0, baseline=0, alpha=0, power=0, error=False):
    return {"opts": {"mde": mde, "baseline": baseline, "alpha": alpha, "power": power},
            "arms": [dict(zip(("name", "weight", "holdout", "n", "x"), a)) for a in arms],
            "error": error}


def edge_cases():
    c = []
    c.append(case([("a", 100, 0, 500, 40)]))                                   # single arm
    c.append(case([("a", 45, 0, 1000, 65), ("holdout", 10, 1, 1000, 50), ("b", 45, 0, 1000, 40)]))
    c.append(case([("holdout", 10, 1, 0, 0), ("a", 90, 0, 100, 5)]))           # empty control
    c.append(case([("control", 50, 0, 100, 5), ("a", 50, 0, 0, 0)]))           # empty variant
    c.append(case([("control", 50, 0, 0, 0), ("a", 50, 0, 0, 0)]))             # nothing yet
    c.append(case([("control", 50, 0, 300, 0), ("a", 50, 0, 310, 0)]))         # no conversions
    c.append(case([("control", 50, 0, 300, 300), ("a", 50, 0, 310, 310)]))     # all converted
    c.append(case([("control", 50, 0, 300, 300), ("a", 50, 0, 310, 200)]))
    c.append(case([("control", 50, 0, 300, 0), ("a", 50, 0, 310, 12)]))
    c.append(case([("control", 50, 0, 7, 1), ("a", 50, 0, 9, 2)]))             # < 8 units
    c.append(case([("control", 50, 0, 8, 1), ("a", 50, 0, 8, 2)]))             # exactly 8
    c.append(case([("control", 50, 0, 1000, 100), ("a", 50, 0, 1200, 120)]))   # skewed: flagged
    c.append(case([("control", 50, 0, 1000, 100), ("a", 50, 0, 1090, 120)]))   # p ~ 0.05: not
    c.append(case([("control", 50, 0, 1000, 100), ("a", 0, 0, 3, 1), ("b", 50, 0, 1010, 90)]))
    c.append(case([("h1", 10, 1, 900, 90), ("h2", 10, 1, 950, 80), ("a", 80, 0, 7000, 800)]))
    c.append(case([("control", 1, 0, 1, 0), ("a", 1, 0, 1, 1)]))
    c.append(case([("control", 1, 0, 1, 1), ("a", 1, 0, 1, 0)]))
    c.append(case([("control", 50, 0, 5000000, 2500000), ("a", 50, 0, 5000000, 2501000)]))
    c.append(case([("control", 50, 0, 10000000, 100000), ("a", 50, 0, 10000000, 101000)]))
    c.append(case([("control", 50, 0, 10000000, 10000), ("a", 50, 0, 10000000, 10250)]))
    c.append(case([("control", 50, 0, 1000000, 100000), ("a", 50, 0, 1000000, 200000)]))
    c.append(case([("control", 50, 0, 2000000, 1999990), ("a", 50, 0, 2000000, 1999950)]))
    c.append(case([("control", 50, 0, 2000000, 3), ("a", 50, 0, 2000000, 40)]))
    c.append(case([("control", 50, 0, 40000, 4000), ("a", 50, 0, 40000, 4000)]))  # p = 1
    c.append(case([("control", 50, 0, 100, 90), ("a", 50, 0, 100, 95)]))       # lift would pass 1
    c.append(case([("control", 50, 0, 100, 60), ("a", 50, 0, 100, 65)], mde=1.5))  # no plan
    c.append(case([("control", 50, 0, 100, 60), ("a", 50, 0, 100, 65)], mde=1.0))
    c.append(case([("control", 50, 0, 100, 0), ("a", 50, 0, 100, 3)], baseline=0.05))
    c.append(case([("control", 50, 0, 20000, 1000), ("a", 50, 0, 20000, 1300)], baseline=0.04,
                  mde=0.1, alpha=0.01, power=0.9))
    c.append(case([("control", 50, 0, 9000, 450), ("a", 50, 0, 9000, 560)]))   # significant
    c.append(case([("control", 50, 0, 9000, 450), ("a", 50, 0, 9000, 470)]))   # not significant
    c.append(case([("c", 1, 0, 5, 1), ("a", 1, 0, 5, 1), ("b", 1, 0, 5, 1), ("d", 1, 0, 5, 1),
                   ("e", 1, 0, 5, 1), ("f", 1, 0, 5, 1)]))
    # invalid input: the driver must report an error, not numbers
    c.append(case([("control", 50, 0, 10, 11)], error=True))
    c.append(case([("control", -1, 0, 10, 1)], error=True))
    c.append(case([("control", 50, 0, -1, 0)], error=True))
    c.append(case([("control", 50, 0, 10, 1)], alpha=1.5, error=True))
    c.append(case([("control", 50, 0, 10, 1)], baseline=1, error=True))
    c.append(case([("control", 50, 0, 10, 1)], mde=-0.1, error=True))
    c.append(case([("control", 50, 0, 10, 1)], power=0.3, error=True))
    return c


def random_cases(rng, count):
    out = []
    for _ in range(count):
        k = rng.choice([1, 2, 2, 2, 3, 3, 4, 5, 6])
        style = rng.random()
        if style < 0.4:
            weights = [1] * k
        else:
            weights = [rng.randint(1, 100) for _ in range(k)]
        if k > 2 and rng.random() < 0.1:
            weights[rng.randrange(k)] = 0
        holdout = rng.randrange(k) if rng.random() < 0.3 else -1
        total = int(10 ** rng.uniform(0, 7))
        wsum = sum(weights) or 1
        probs = [w / wsum for w in weights] if sum(weights) else [1 / k] * k
        if rng.random() < 0.15:  # a broken split
            probs[0] *= rng.uniform(1.02, 1.3)
            s = sum(probs)
            probs = [p / s for p in probs]
        nprng = np.random.default_rng(rng.randrange(1 << 30))
        ns = nprng.multinomial(total, probs)
        if rng.random() < 0.05:
            base = rng.choice([0.0, 1.0])
        else:
            base = 10 ** rng.uniform(-4, math.log10(0.95))
        arms = []
        for i in range(k):
            r = min(1.0, base * rng.uniform(0.7, 1.4)) if rng.random() < 0.9 else base
            n = int(ns[i])
            x = int(nprng.binomial(n, r)) if n else 0
            arms.append(("arm%d" % i, weights[i], int(i == holdout), n, x))
        if rng.random() < 0.5:
            opts = {}
        else:
            opts = {"mde": rng.choice([0, 0.05, 0.1, 0.3, 0.5]),
                    "alpha": rng.choice([0, 0.01, 0.1]),
                    "power": rng.choice([0, 0.9, 0.95]),
                    "baseline": rng.choice([0, 0, rng.uniform(0.001, 0.5)])}
        out.append(case(arms, **opts))
    return out


def line(c):
    o = c["opts"]
    parts = ["%r" % float(o[k]) for k in ("mde", "baseline", "alpha", "power")]
    for a in c["arms"]:
        parts += [a["name"], "%r" % float(a["weight"]), str(a["holdout"]), str(a["n"]), str(a["x"])]
    return " ".join(parts)


# ---------------------------------------------------------------- the reference


def chance_quad(ax, bx, ay, by):
    """P(X > Y), X ~ Beta(ax, bx), Y ~ Beta(ay, by): integral of f_X * F_Y."""
    X, Y = stats.beta(ax, bx), stats.beta(ay, by)
    lo, hi = max(0.0, X.ppf(1e-16)), min(1.0, X.isf(1e-16))
    pts = [p for p in (X.mean(), Y.mean(), Y.ppf(1e-9), Y.isf(1e-9)) if lo < p < hi]
    v, _ = integrate.quad(lambda t: X.pdf(t) * Y.cdf(t), lo, hi, points=pts or None,
                          epsabs=1e-14, epsrel=1e-12, limit=1000)
    return v


def beta_exact(a, b):
    return Fraction(math.factorial(a - 1) * math.factorial(b - 1), math.factorial(a + b - 1))


def chance_exact(ax, bx, ay, by):
    """Evan Miller's sum in exact rational arithmetic (small integer shapes)."""
    s = Fraction(0)
    for i in range(ax):
        s += (beta_exact(ay + i, by + bx)
              / ((bx + i) * beta_exact(1 + i, bx) * beta_exact(ay, by)))
    return float(s)


def power_at(n, p1, p2, alpha):
    za = stats.norm.isf(alpha / 2)
    pb = (p1 + p2) / 2
    return stats.norm.cdf((abs(p2 - p1) * math.sqrt(n) - za * math.sqrt(2 * pb * (1 - pb)))
                          / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))


def expected(c):
    o = dict(c["opts"])
    for k, v in DEFAULTS.items():
        if o[k] == 0:
            o[k] = v
    arms = c["arms"]
    ctrl = next((i for i, a in enumerate(arms) if a["holdout"]), 0)
    ca = arms[ctrl]
    nc, xc = ca["n"], ca["x"]
    z = stats.norm.ppf(1 - o["alpha"] / 2)

    p1 = o["baseline"] if o["baseline"] > 0 else (xc / nc if nc else 0.0)
    plan = None
    if 0 < p1 < 1:
        p2 = p1 * (1 + o["mde"])
        if p2 >= 1:
            p2 = p1 * (1 - o["mde"])
        if p2 >= 0:
            plan = (p1, p2)

    rows = []
    for i, a in enumerate(arms):
        nv, xv = a["n"], a["x"]
        r = {"variant": a["name"], "weight": a["weight"], "exposures": nv, "conversions": xv,
             "rate": xv / nv if nv else None, "lift": None, "lift_ci": None,
             "relative_lift": None, "relative_lift_ci": None, "p_value": None,
             "chance_to_win": None}
        if i == ctrl:
            r["status"] = "control"
            rows.append(r)
            continue
        r["chance_to_win"] = chance_quad(1 + xv, 1 + nv - xv, 1 + xc, 1 + nc - xc)
        if nv + nc <= 120:
            r["chance_exact"] = chance_exact(1 + xv, 1 + nv - xv, 1 + xc, 1 + nc - xc)
        if nv and nc:
            pv, pc = xv / nv, xc / nc
            se = math.sqrt(pv * (1 - pv) / nv + pc * (1 - pc) / nc)
            r["lift"] = pv - pc
            r["lift_ci"] = [pv - pc - z * se, pv - pc + z * se]
            try:
                res = stats.chi2_contingency([[xv, nv - xv], [xc, nc - xc]], correction=False)
                r["p_value"] = float(res[1])
            except ValueError:  # a zero expected count: nothing to test
                pass
            if pc > 0:
                ratio = pv / pc
                # delta method written as the ratio's coefficient of variation
                rse = (ratio * math.sqrt(pv * (1 - pv) / nv / pv ** 2 + (1 - pc) / (nc * pc))
                       if pv > 0 else math.sqrt(pv * (1 - pv) / nv) / pc)
                r["relative_lift"] = ratio - 1
                r["relative_lift_ci"] = [ratio - 1 - z * rse, ratio - 1 + z * rse]
        rows.append(r)

    weighted = [a for a in arms if a["weight"] > 0]
    srm = {"p_value": None, "flagged": False, "checked": False}
    if len(weighted) >= 2 and all(a["n"] >= 8 for a in weighted):
        obs = np.array([a["n"] for a in weighted], dtype=float)
        w = np.array([a["weight"] for a in weighted], dtype=float)
        p = float(stats.chisquare(obs, obs.sum() * w / w.sum()).pvalue)
        srm = {"p_value": p, "flagged": p < 0.001, "checked": True}
    return {"control": ca["name"], "plan": plan, "alpha": o["alpha"], "power": o["power"],
            "variants": rows, "srm": srm, "nc": nc}


# ---------------------------------------------------------------- comparison


class Mismatch(Exception):
    pass


def close(field, got, want, where):
    if want is None or got is None:
        if want is not got:
            raise Mismatch("%s %s: got %r, want %r" % (where, field, got, want))
        return
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            raise Mismatch("%s %s: got %r, want %r" % (where, field, got, want))
        for g, w in zip(got, want):
            close(field, g, w, where)
        return
    rel, ab = TOL[field]
    err = abs(got - want)
    allowed = max(rel * abs(want), ab)
    worst[field] = max(worst[field], err / allowed if allowed else (0 if err == 0 else math.inf))
    if not err <= allowed:
        raise Mismatch("%s %s: got %.17g, want %.17g (diff %.3g)" % (where, field, got, want, err))


def check(c, got):
    if c["error"]:
        if "error" not in got:
            raise Mismatch("expected an error, got a result")
        return
    if "error" in got:
        raise Mismatch("unexpected error %r" % got)
    want = expected(c)
    if got["control"] != want["control"]:
        raise Mismatch("control: got %r, want %r" % (got["control"], want["control"]))
    plan = want["plan"]
    planned = got["planned_per_variant"]
    if plan is None:
        if planned is not None:
            raise Mismatch("planned_per_variant: got %r, want null" % planned)
    else:
        if not isinstance(planned, int) or planned < 1:
            raise Mismatch("planned_per_variant: got %r" % planned)
        p1, p2 = plan
        # the smallest n reaching the power (slack for a raw size within
        # rounding of an integer)
        if power_at(planned, p1, p2, want["alpha"]) < want["power"] - 1e-9:
            raise Mismatch("planned %d does not reach power %g" % (planned, want["power"]))
        if planned > 1 and power_at(planned - 1, p1, p2, want["alpha"]) >= want["power"] + 1e-9:
            raise Mismatch("planned %d is not the smallest size" % planned)
    if len(got["variants"]) != len(want["variants"]):
        raise Mismatch("variant count")
    for g, w in zip(got["variants"], want["variants"]):
        where = "variant %s:" % w["variant"]
        for k in ("variant", "weight", "exposures", "conversions"):
            if g[k] != w[k]:
                raise Mismatch("%s %s: got %r, want %r" % (where, k, g[k], w[k]))
        for k in ("rate", "lift", "lift_ci", "relative_lift", "relative_lift_ci", "p_value",
                  "chance_to_win"):
            close(k, g[k], w[k], where)
        if "chance_exact" in w:
            close("chance_exact", g["chance_to_win"], w["chance_exact"], where)
        if w.get("status") == "control":
            status = "control"
        elif planned is None or g["exposures"] < planned or want["nc"] < planned:
            status = "collecting"
        elif w["p_value"] is not None and w["p_value"] < want["alpha"]:
            status = "significant"
        else:
            status = "not significant"
        if g["status"] != status:
            raise Mismatch("%s status: got %r, want %r" % (where, g["status"], status))
    gs, ws = got["srm"], want["srm"]
    if gs["checked"] != ws["checked"] or gs["flagged"] != ws["flagged"]:
        raise Mismatch("srm: got %r, want %r" % (gs, ws))
    close("srm_p", gs["p_value"], ws["p_value"], "srm:")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    seed = int(os.environ.get("HR_REF_SEED", "20240611"))
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 260
    cases = edge_cases() + random_cases(random.Random(seed), count)
    text = "".join(line(c) + "\n" for c in cases)
    proc = subprocess.run([sys.argv[1]], input=text, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        sys.exit("stats_ref exited %d: %s" % (proc.returncode, proc.stderr))
    outs = proc.stdout.splitlines()
    if len(outs) != len(cases):
        sys.exit("stats_ref printed %d lines for %d cases" % (len(outs), len(cases)))
    failures = 0
    for i, (c, out) in enumerate(zip(cases, outs)):
        try:
            got = json.loads(out, parse_constant=reject_constant)
            check(c, got)
        except (Mismatch, ValueError, KeyError, TypeError) as e:
            failures += 1
            print("FAIL case %d (seed %d): %s\n  input:  %s\n  output: %s"
                  % (i, seed, e, line(c), out))
            if failures >= 10:
                break
    print("largest error per field, as a fraction of its tolerance: " +
          ", ".join("%s %.2g" % (k, v) for k, v in worst.items()))
    if failures:
        sys.exit("%d of %d cases failed" % (failures, len(cases)))
    print("ok: %d cases (%d edge, %d random, seed %d)"
          % (len(cases), len(edge_cases()), count, seed))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Where the difference between two callgrind files goes, per unit, by function.

    cg-diff.py A B [--per UNITS] [--top 25] [--inclusive] [--full-names] [--callees FUNCTION]

Reads A and B (callgrind's format), sums each function's cost (over all the source files
callgrind attributes its code to: inlined code is reported under the file it came from),
and prints the top functions of (B - A) / UNITS as a markdown table with
their share of the total difference and how many times each was called per unit (calls
inlined away are not seen). With --inclusive, the costs are inclusive (a function
and everything it calls; shares then add up to more than 100%). With --callees FUNCTION
(a name as printed), what FUNCTION's calls cost instead, by callee.

With the files kept by scripts/callgrind-compare.sh (KEEP_CG=DIR), for example the windows
of the two message runs (the dump named "end" of each):

    scripts/cg-diff.py $(grep -l 'Trigger: dump end' DIR/rustircd.msg200.out.*) \\
        $(grep -l 'Trigger: dump end' DIR/rustircd.msg1200.out.*) --per 49000
"""
import argparse
import re
import sys


def costs(path, inclusive):
    """(total, {function: Ir}) of one callgrind file: self costs, or inclusive ones (self plus
    the cost of every call the function makes). Reads the format directly: callgrind_annotate
    3.19 reports the frames that were on the stack at a dump (`calls=0` lines) as self cost."""
    names = {"ob": {}, "fn": {}}
    obj, fn, total, after_call = "", None, 0, False
    cobj, cfn = None, None
    funcs, calls, edges = {}, {}, {}
    callee = None
    def ref(kind, text):
        m = re.match(r"^\((\d+)\)(?:\s+(.*))?$", text)
        if not m:
            return text
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), text)
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        c = line[0]
        if c.isdigit() or c in "+-*":
            parts = line.split()
            ir = int(parts[1]) if len(parts) > 1 else 0
            if after_call:
                after_call = False
                if inclusive and fn is not None:
                    funcs[fn] = funcs.get(fn, 0) + ir
                edges[(fn, callee)] = edges.get((fn, callee), 0) + ir
                continue
            total += ir
            if fn is not None:
                funcs[fn] = funcs.get(fn, 0) + ir
            continue
        key, _, val = line.partition("=")
        if key == "ob":
            obj = ref("ob", val)
            cobj = None
        elif key == "cob":
            cobj = ref("ob", val)
        elif key == "fn":
            fn = label(ref("fn", val), obj)
            cobj = None
        elif key == "cfn":
            cfn = ref("fn", val)
        elif key == "calls":
            after_call = True
            callee = label(cfn, cobj if cobj is not None else obj)
            calls[callee] = calls.get(callee, 0) + int(val.split()[0])
            cobj = None
    return total, funcs, calls, edges


def label(fn, obj):
    """The function's name, with its object's file name when it is not rustircd's."""
    base = obj.rsplit("/", 1)[-1]
    if base and not base.startswith("rustircd"):
        return fn + " [" + base + "]"
    return fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--per", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--inclusive", action="store_true")
    ap.add_argument("--full-names", action="store_true")
    ap.add_argument("--callees", metavar="FUNCTION",
                    help="instead: what FUNCTION's calls cost, by callee (FUNCTION as this script prints it)")
    a = ap.parse_args()
    ta, fa, ca, ea = costs(a.a, a.inclusive)
    tb, fb, cb, eb = costs(a.b, a.inclusive)
    if a.callees:
        # what one function's calls cost, by callee (inclusive), and its own cost
        _, sa, _, _ = costs(a.a, False)
        _, sb, _, _ = costs(a.b, False)
        own = (sb.get(a.callees, 0) - sa.get(a.callees, 0)) / a.per
        inc = (fb.get(a.callees, 0) - fa.get(a.callees, 0)) / a.per if a.inclusive else None
        d = {}
        for (caller, callee), v in eb.items():
            if caller == a.callees:
                d[callee] = d.get(callee, 0) + v
        for (caller, callee), v in ea.items():
            if caller == a.callees:
                d[callee] = d.get(callee, 0) - v
        print(f"`{a.callees}`: self {own:,.0f} per unit" + (f", inclusive {inc:,.0f}" if inc is not None else ""))
        print()
        print("| callee, inclusive Ir per unit | function |")
        print("|---:|---|")
        for k, v in sorted(d.items(), key=lambda kv: -kv[1])[: a.top]:
            print(f"| {v / a.per:,.0f} | `{k}` |")
        return 0
    total = (tb - ta) / a.per
    diff = {k: (fb.get(k, 0) - fa.get(k, 0)) / a.per for k in set(fa) | set(fb)}
    rows = sorted(diff.items(), key=lambda kv: -kv[1])[: a.top]
    kind = "inclusive" if a.inclusive else "self"
    print(f"total difference: {tb - ta:,} Ir; per unit ({a.per:g}): {total:,.0f}")
    print()
    print(f"| {kind} Ir per unit | share | calls per unit | function |")
    print("|---:|---:|---:|---|")
    for k, v in rows:
        shown = k if a.full_names or len(k) <= 110 else k[:107] + "..."
        n = (cb.get(k, 0) - ca.get(k, 0)) / a.per
        print(f"| {v:,.0f} | {100 * v / total if total else 0:.1f}% | {n:,.2f} | `{shown}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

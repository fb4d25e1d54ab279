#!/usr/bin/env python3
"""One line per test phase from a JUnit XML report (ctest --output-junit, pytest --junitxml).

Prints 'PHASE: N run, N passed, N failed, N skipped (reasons)' and exits non-zero when
the phase ran nothing, ran fewer tests than were registered (--expect), lacks a test that
must be there (--require), or had a failure. scripts/test.sh calls it after each phase.
"""
import argparse
import collections
import re
import sys
import xml.etree.ElementTree as ET


def skip_reason(case):
    """Why a test was skipped, in a few words: GoogleTest's GTEST_SKIP message, pytest's."""
    skipped = case.find("skipped")
    message = skipped.get("message", "") if skipped is not None else ""
    # GoogleTest's own XML: "file:line" then the message on the next line.
    m = re.match(r"\S+:\d+\n(.+)", message)
    if m:
        message = m.group(1)
    out = case.findtext("system-out") or ""
    # GoogleTest prints "file:line: Skipped" and the message on the next line(s).
    m = re.search(r":\d+: Skipped\n(.+)", out)
    if m:
        message = m.group(1)
    elif skipped is not None and skipped.text and not message:
        message = skipped.text
    message = re.sub(r"^(SKIPPED|Skipped)\s*\[?\d*\]?\s*", "", message.strip())
    # Per-case details (sizes, seeds) would split one reason into many.
    message = re.sub(r"\d+", "#", message)
    return (message.splitlines() or ["(no reason given)"])[0][:120] or "(no reason given)"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("junit", help="JUnit XML report")
    ap.add_argument("--phase", required=True, help="name printed at the start of the line")
    ap.add_argument("--expect", type=int, help="tests registered for this phase (ctest -N)")
    ap.add_argument("--require", default="", help="comma-separated test names that must have run")
    ap.add_argument("--out", help="append the line to this file too")
    args = ap.parse_args()

    try:
        root = ET.parse(args.junit).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"{args.phase}: no test report ({e}): FAILED")
        return 1
    cases = list(root.iter("testcase"))
    failed, skipped, passed = [], [], []
    for c in cases:
        status = c.get("status", "")
        if c.find("failure") is not None or c.find("error") is not None or status == "fail":
            failed.append(c.get("name"))
        elif c.find("skipped") is not None or status in ("notrun", "disabled"):
            skipped.append(c)
        else:
            passed.append(c.get("name"))

    problems = []
    if not cases:
        problems.append("no tests ran")
    if args.expect is not None and len(cases) < args.expect:
        problems.append(f"{len(cases)} ran of {args.expect} registered")
    names = {c.get("name") for c in cases}
    for req in filter(None, args.require.split(",")):
        if not any(n == req or n.startswith(req) for n in names):
            problems.append(f"'{req}' did not run")
    if failed:
        problems.append("failed: " + ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else ""))

    reasons = collections.Counter(skip_reason(c) for c in skipped)
    why = "; ".join(f"{n}: {r}" for r, n in reasons.most_common(4))
    if len(reasons) > 4:
        why += f"; {len(reasons) - 4} other reasons"
    line = (f"{args.phase}: {len(cases)} run, {len(passed)} passed, {len(failed)} failed, "
            f"{len(skipped)} skipped" + (f" ({why})" if why else ""))
    if problems:
        line += " -- FAILED: " + "; ".join(problems)
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Builds every test binary of the workspace once, runs each one from its package's folder (as
`cargo test` does), and prints a table of the time each binary took. Exits non-zero when a build or
any binary fails; the output of each binary is printed as it runs.

Usage: scripts/run-tests.py [cargo test options for the build, e.g. --locked]
"""
import json
import re
import os
import subprocess
import sys
import time


RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")


def main():
    extra = sys.argv[1:]
    started = time.monotonic()
    build = subprocess.run(
        ["cargo", "test", "--workspace", "--no-run", "--message-format=json-render-diagnostics", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    build_s = time.monotonic() - started
    if build.returncode != 0:
        print(f"build failed ({build_s:.0f} s)", file=sys.stderr)
        return build.returncode
    binaries = []
    for line in build.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("profile", {}).get("test"):
            continue
        exe = msg.get("executable")
        if not exe:
            continue
        target = msg["target"]
        package_dir = os.path.dirname(msg["manifest_path"])
        # "path+file:///dir#name@1.0", or "path+file:///dir/name#1.0" when the folder is the name.
        source, _, fragment = msg["package_id"].partition("#")
        package = fragment.split("@")[0] if "@" in fragment else source.rstrip("/").split("/")[-1]
        kind = target["kind"][0]
        name = "unit tests" if kind in ("lib", "bin") else target["name"]
        if kind == "bin":
            name = f"unit tests (bin {target['name']})"
        binaries.append((package, name, exe, package_dir))
    # Unique executables, engine first, in a stable order.
    seen, ordered = set(), []
    for b in sorted(binaries, key=lambda b: (b[0] != "pinpoint", b[0], b[1])):
        if b[2] not in seen:
            seen.add(b[2])
            ordered.append(b)

    rows, failed = [], []
    totals = [0, 0, 0]
    for package, name, exe, cwd in ordered:
        print(f"\n===== {package}: {name} ({os.path.basename(exe)})", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen([exe], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        counts = [0, 0, 0]
        for line in proc.stdout:
            sys.stdout.write(line)
            m = RESULT.search(line)
            if m:
                counts = [int(m.group(i)) for i in (1, 2, 3)]
        sys.stdout.flush()
        rc = proc.wait()
        seconds = time.monotonic() - t0
        for i in range(3):
            totals[i] += counts[i]
        rows.append((package, name, seconds, rc, counts))
        if rc != 0:
            failed.append(f"{package}: {name}")

    total = time.monotonic() - started
    width = max([len(f"{r[0]}: {r[1]}") for r in rows] + [len("(build of all test binaries)")] + [60])
    print("\nTime per test binary")
    print(f"  {'binary'.ljust(width)}  {'seconds':>8}  {'passed':>6}  {'failed':>6}  result")
    steps = []
    if os.environ.get("CI_STEPS") and os.path.exists(os.environ["CI_STEPS"]):
        with open(os.environ["CI_STEPS"]) as f:
            steps = [line.rstrip("\n").split("\t") for line in f if "\t" in line]
    for name, seconds in steps:
        print(f"  {name.ljust(width)}  {float(seconds):8.1f}")
    print(f"  {'(build of all test binaries)'.ljust(width)}  {build_s:8.1f}")
    for package, name, seconds, rc, (passed, failures, _) in rows:
        result = "ok" if rc == 0 else f"FAILED (exit {rc})"
        print(f"  {f'{package}: {name}'.ljust(width)}  {seconds:8.1f}  {passed:6}  {failures:6}  {result}")
    print(f"  {'total (build and tests)'.ljust(width)}  {total:8.1f}")
    # The closing line for the whole run (each binary printed its own above).
    print(f"\ntests: {totals[0]} passed, {totals[1] + len([r for r in rows if r[3] != 0 and r[4][1] == 0])} failed, {totals[2]} skipped")
    if failed:
        print("\nfailed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

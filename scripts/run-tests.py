#!/usr/bin/env python3
"""Builds every test binary of the workspace once, runs them (each from its package's folder, as
`cargo test` does), and prints a table of the time each binary took. Exits non-zero when the build
or any binary fails.

Two binaries run at a time (`--jobs N` to change): much of the desktop tests' time is waiting on a
window or a job, and a binary's last test leaves a core idle, so a second binary fills the gaps.
Each binary's output is printed whole when it ends, so logs stay readable. The slowest binaries
(the previous run's times in target/test-times.tsv, else those checked in as
.ci/test-times.tsv) start first. The table gives each binary's wall-clock and CPU seconds, and the
slowest tests by their own time.

Usage: scripts/run-tests.py [--jobs N] [--only NAME,...] [cargo test options for the build, e.g. --locked]
  --only runs just the named binaries (e.g. "locate,train"; "unit tests" for the engine's own).
"""
import json
import os
import re
import subprocess
import sys
import threading
import time

RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
# "test locate::x ... ok <12.345s>"
TEST_TIME = re.compile(r"^test (\S+) \.\.\. \w+ <([\d.]+)s>", re.M)
TIMES = "target/test-times.tsv"
# Measured times checked in, for a fresh clone's first run.
DEFAULT_TIMES = ".ci/test-times.tsv"


def test_binaries(build_stdout):
    binaries = []
    for line in build_stdout.splitlines():
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
        # "path+file:///dir#name@1.0", or "path+file:///dir/name#1.0" when the folder is the name.
        source, _, fragment = msg["package_id"].partition("#")
        package = fragment.split("@")[0] if "@" in fragment else source.rstrip("/").split("/")[-1]
        kind = target["kind"][0]
        if kind == "lib":
            name = "unit tests"
        elif kind == "bin":
            name = f"unit tests (bin {target['name']})"
        else:
            name = target["name"]
        binaries.append((package, name, exe, os.path.dirname(msg["manifest_path"])))
    unique, seen = [], set()
    for b in binaries:
        if b[2] not in seen:
            seen.add(b[2])
            unique.append(b)
    return unique


def previous_times():
    times = {}
    try:
        with open(TIMES if os.path.exists(TIMES) else DEFAULT_TIMES) as f:
            for line in f:
                key, _, seconds = line.rstrip("\n").rpartition("\t")
                times[key] = float(seconds)
    except (OSError, ValueError):
        pass
    return times


def run_binary(exe, cwd):
    """Runs one test binary; returns its exit code, wall and CPU seconds, test counts, output and
    each test's own time (libtest's --report-time, which stable binaries honour under
    RUSTC_BOOTSTRAP=1)."""
    t0 = time.monotonic()
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    proc = subprocess.Popen(
        [exe, "-Z", "unstable-options", "--report-time"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    counts = [0, 0, 0]
    for m in RESULT.finditer(output):
        counts = [int(m.group(i)) for i in (1, 2, 3)]
    tests = [(m.group(1), float(m.group(2))) for m in TEST_TIME.finditer(output)]
    return proc.returncode, time.monotonic() - t0, cpu, counts, output, tests


def main():
    args = sys.argv[1:]
    jobs = 2
    if "--jobs" in args:
        i = args.index("--jobs")
        jobs = max(1, int(args[i + 1]))
        del args[i : i + 2]
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = set(args[i + 1].split(","))
        del args[i : i + 2]
    started = time.monotonic()
    build = subprocess.run(
        ["cargo", "test", "--workspace", "--no-run", "--message-format=json-render-diagnostics", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    build_s = time.monotonic() - started
    if build.returncode != 0:
        print(f"build failed ({build_s:.0f} s)", file=sys.stderr)
        return build.returncode

    known = previous_times()
    binaries = [b for b in test_binaries(build.stdout) if only is None or b[1] in only]
    queue = sorted(binaries, key=lambda b: -known.get(f"{b[0]}: {b[1]}", 1e9))
    lock = threading.Lock()
    rows = []
    slow_tests = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                package, name, exe, cwd = queue.pop(0)
            rc, seconds, cpu, counts, output, tests = run_binary(exe, cwd)
            with lock:
                print(f"\n===== {package}: {name} ({os.path.basename(exe)}): {seconds:.1f} s", flush=True)
                sys.stdout.write(output)
                sys.stdout.flush()
                rows.append((package, name, seconds, rc, counts, cpu))
                slow_tests.extend((t, f"{package}: {name}", s) for t, s in tests)

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.monotonic() - started

    try:
        with open(TIMES, "w") as f:
            for package, name, seconds, *_ in rows:
                f.write(f"{package}: {name}\t{seconds:.1f}\n")
    except OSError:
        pass

    steps = []
    if os.environ.get("CI_STEPS") and os.path.exists(os.environ["CI_STEPS"]):
        with open(os.environ["CI_STEPS"]) as f:
            steps = [line.rstrip("\n").split("\t") for line in f if "\t" in line]
    rows.sort(key=lambda r: -r[2])
    width = max([len(f"{r[0]}: {r[1]}") for r in rows] + [len(s[0]) for s in steps] + [30])
    print(f"\nWhere the time went ({jobs} test binaries at a time; wall-clock seconds, and the CPU seconds")
    print(f"each binary used on all cores together)")
    print(f"  {'step or test binary'.ljust(width)}  {'seconds':>8}  {'CPU s':>8}  {'passed':>6}  {'failed':>6}  result")
    for name, seconds in steps:
        print(f"  {name.ljust(width)}  {float(seconds):8.1f}")
    print(f"  {'build of all test binaries'.ljust(width)}  {build_s:8.1f}")
    for package, name, seconds, rc, (passed, failures, _), cpu in rows:
        result = "ok" if rc == 0 else f"FAILED (exit {rc})"
        print(
            f"  {f'{package}: {name}'.ljust(width)}  {seconds:8.1f}  {cpu:8.1f}  {passed:6}  {failures:6}  {result}"
        )
    print(f"  {'all test binaries'.ljust(width)}  {total - build_s:8.1f}")
    print(f"  {'build and tests'.ljust(width)}  {total:8.1f}")
    slow_tests.sort(key=lambda t: -t[2])
    print("\nThe slowest tests (each test's own wall-clock time, while others ran beside it)")
    for test, binary, seconds in slow_tests[:15]:
        print(f"  {seconds:8.1f}  {binary}: {test}")
    passed = sum(r[4][0] for r in rows)
    failed_tests = sum(r[4][1] for r in rows)
    # A binary that failed without a failing test (a crash, a panic outside a test) counts once.
    failed_tests += len([r for r in rows if r[3] != 0 and r[4][1] == 0])
    skipped = sum(r[4][2] for r in rows)
    # The closing line for the whole run (each binary printed its own above).
    print(f"\ntests: {passed} passed, {failed_tests} failed, {skipped} skipped")
    failed = [f"{r[0]}: {r[1]}" for r in rows if r[3] != 0]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

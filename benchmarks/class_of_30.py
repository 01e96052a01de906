"""A class of 30 through the instructor's whole workflow, with the real grader (README, "For instructors").

    python benchmarks/class_of_30.py [--out /tmp/class_of_30] [--students 30] [--workers N]

1. builds N submissions of hw1_alexnet from the instructor notebook: about half honest (the solution with
   a short written answer), a quarter partial (one or two answers left as the stub or wrong), a few blank
   (the released notebook as it is), a few late; writes ``submissions/submissions.csv``;
2. ``release --check``, then ``grade`` with ``--deadline`` and ``--late-policy 10%/day,max=50%``;
3. ``manual``, fills every sheet (deterministic points and comments; a blank answer gets 0, "no answer"),
   ``finalize``;
4. ``report``, and screenshots of report.html in Chromium at 1280 and 390 px (full page) into
   ``_build/screenshots/class30_report_{1280,390}.png``;
5. the exports: Canvas (against a Canvas gradebook export written here, logins through ``--map``), dry run
   then ``--write``; Moodle; nbgrader; and the Gradescope autograder zip;
6. prints a summary: each step's command, seconds and the file it wrote, the distribution of ``final``,
   the statuses, the late students and their penalties, and the head of each dry run.

Every step runs the command line as a subprocess, exactly as an instructor types it; a step that fails
stops the script with a non-zero exit naming the step.
"""

from __future__ import annotations

import argparse
import csv
import io
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from autograder import defaults, release  # noqa: E402
from autograder.grade import _safe  # noqa: E402  the README's rule: the name the grader gives a file

HW = "hw1_alexnet"
SOURCE = REPO / "autograder" / "source" / f"{HW}.ipynb"
BLANK = REPO / "homework" / f"{HW}.ipynb"
SCREENSHOTS = REPO / "_build" / "screenshots"
MARKER = ".class_of_30"
DEADLINE = datetime(2026, 10, 1, 23, 59, tzinfo=timezone(timedelta(hours=2)))
POLICY = "10%/day,max=50%"
CANVAS_ASSIGNMENT = "HW1 AlexNet (12345)"

# (first, last): an accent (José, Zoë, Søren, Nguyễn), an apostrophe without a comma (O'Neill, D'Angelo).
NAMES = [("Amara", "Okafor"), ("José", "García"), ("Dara", "O'Neill"), ("Li", "Wei"), ("Priya", "Raman"),
         ("Tomás", "Novak"), ("Zoë", "Müller"), ("Kwame", "Mensah"), ("Hannah", "Schmidt"), ("Yuki", "Tanaka"),
         ("Omar", "Haddad"), ("Sofia", "Rossi"), ("Liam", "Murphy"), ("Mei", "Chen"), ("Lucas", "Silva"),
         ("Aisha", "Bello"), ("Noah", "Kim"), ("Elena", "Petrova"), ("Mateo", "López"), ("Freya", "Larsen"),
         ("Ravi", "Patel"), ("Chloé", "Dubois"), ("Ibrahim", "Diallo"), ("Anna", "Kowalska"), ("Jonas", "Berg"),
         ("Fatima", "Rahman"), ("Marco", "D'Angelo"), ("Ingrid", "Søren"), ("Thu", "Nguyễn"), ("Sam", "Taylor")]

# Wrong answers a student might hand in (the visible tests may still pass).
WRONG = {
    "q1": ("nn.Linear(1024, 1024)", "nn.Linear(1024, 1024, bias=False)"),           # fc7 without its bias
    "q2": ("// stride + 1", "// stride"),                                              # off by one
    "q3": ("kernel * kernel * c_in // groups * c_out + (c_out", "kernel * kernel * c_in * c_out + (c_out"),  # groups
}
WRITTEN = ["Most ReLU outputs are zero for about half the inputs, since pre-activations are symmetric around "
           "zero; a zero passes no gradient. With the paper's init fc6 and fc7 have dead units: the bias decides "
           "the sign when the signal is tiny.",
           "About half of each layer's outputs are zero. Under the default init the deeper layers shrink the "
           "signal, so whole units are zero for every image and those units do not learn until the biases move.",
           "Zeros mean no gradient for that example. Dead units (zero for the whole batch) appear in the fully "
           "connected layers with the paper's initialisation, which is why biases of 1 were used."]


# --------------------------------------------------------------------------- 1. the class

def plan(n: int) -> list[dict]:
    """Each student: name, file, kind (honest / partial / blank), what is broken, submission time."""
    if n > len(NAMES):
        raise SystemExit(f"--students at most {len(NAMES)}")
    n_blank = max(1, round(n * 0.1))
    n_partial = max(1, round(n * 0.25))
    n_late = max(1, round(n * 0.15))
    students = []
    breaks = [("q2",), ("q3", "q4"), ("q1",), ("q4",), ("q2", "q3"), ("q1", "q2"), ("q3",)]
    for i, (first, last) in enumerate(NAMES[:n]):
        file = f"{first.lower()}_{last.lower()}.ipynb".replace(" ", "_")
        if i % 10 == 9 and sum(s["kind"] == "blank" for s in students) < n_blank:
            kind = "blank"
        elif (i % 4 == 1 or i % 8 == 3) and sum(s["kind"] == "partial" for s in students) < n_partial:
            kind = "partial"
        else:
            kind = "honest"
        students.append({"first": first, "last": last, "file": file, "student": _safe(Path(file).stem),
                         "kind": kind, "broken": breaks[i % len(breaks)] if kind == "partial" else ()})
    # times: the last n_late students late by 1..3 days (one by minutes, one by 2 d 3 h, ...), one exactly
    # at the deadline, the rest hours before it; one time in UTC ("Z"), the rest in the course's zone
    lateness = [timedelta(minutes=7), timedelta(days=1, hours=5), timedelta(days=2, hours=20), timedelta(hours=30),
                timedelta(days=2, minutes=1)]
    for i, s in enumerate(students):
        if i >= n - n_late:
            s["submitted_at"] = DEADLINE + lateness[(i - (n - n_late)) % len(lateness)]
        elif i == n // 2:
            s["submitted_at"] = DEADLINE
        else:
            s["submitted_at"] = DEADLINE - timedelta(hours=1 + 3 * i, minutes=17 * i % 60)
    return students


def build(students: list[dict], folder: Path) -> None:
    source = nbformat.read(SOURCE, 4)
    solution = release.student_version(source, keep_solutions=True)   # the release, answers filled in
    blank = nbformat.read(BLANK, 4)
    stubs = {c.metadata["grader"]["id"]: c.source for c in blank.cells
             if c.metadata.get("grader", {}).get("kind") == "answer"}
    folder.mkdir(parents=True)
    partial = 0
    for i, s in enumerate(students):
        if s["kind"] == "blank":
            nb = nbformat.from_dict(nbformat.reads(nbformat.writes(blank), 4))
        else:
            nb = nbformat.from_dict(nbformat.reads(nbformat.writes(solution), 4))
            for cell in nb.cells:
                grader = cell.metadata.get("grader", {})
                q, kind = grader.get("id"), grader.get("kind")
                if kind == "answer" and q in s["broken"]:
                    j = s["broken"].index(q)   # alternate: a wrong answer (where there is one), the stub
                    if q in WRONG and (partial + j) % 2 == 0:
                        old, new = WRONG[q]
                        assert old in cell.source, (q, old)
                        cell.source = cell.source.replace(old, new)
                        s.setdefault("how", []).append(f"{q} wrong")
                    else:
                        cell.source = stubs[q]
                        s.setdefault("how", []).append(f"{q} stub")
                elif kind == "written":
                    cell.source = WRITTEN[i % len(WRITTEN)]
        partial += s["kind"] == "partial"
        nbformat.write(nb, folder / s["file"])
    with open(folder / "submissions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "file", "submitted_at"])
        for i, s in enumerate(students):
            t = s["submitted_at"]
            text = t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if i % 7 == 3 else t.isoformat()
            w.writerow([s["student"], s["file"], text])


def lms_files(students: list[dict], folder: Path) -> dict[str, Path]:
    """Canvas's gradebook export (its format: BOM, CRLF, Manual Posting and Points Possible rows, a test
    student), a Moodle grade export, an nbgrader roster, and the map grader name → login for each."""
    folder.mkdir(parents=True)
    def ascii_login(s: dict) -> str:   # José García -> jgarcia, Dara O'Neill -> doneill, Zoë Müller -> zmuller
        folded = unicodedata.normalize("NFKD", s["first"][0] + s["last"]).lower()
        return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())
    login = {s["student"]: ascii_login(s) for s in students}
    assert len(set(login.values())) == len(login), "logins must be unique"
    header = ("Student,ID,SIS User ID,SIS Login ID,Section,HW1 AlexNet (12345),HW2 VGG (12346),Current Points,"
              "Final Points,Current Score,Unposted Current Score,Final Score,Unposted Final Score")
    lines = [header, ",,,,,Manual Posting,,,,,,,",
             "    Points Possible,,,,,18.00,10.00,(read only),(read only),(read only),(read only),(read only),(read only)"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for i, s in enumerate(sorted(students, key=lambda s: (s["last"], s["first"]))):
        existing = "12.00" if i == 0 else ""    # one grade already entered by hand: the dry run shows it
        w.writerow([f"{s['last']}, {s['first']}", 2000 + i, f"S{2000 + i}", login[s["student"]],
                    f"Section 0{1 + i % 2}", existing, "8.00", "8.00", "8.00", "80.00", "80.00", "44.44", "44.44"])
    w.writerow(["Student, Test", 2999, "", "", "Section 01", "", "", "", "", "", "", "", ""])
    (folder / "canvas_export.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n" + buf.getvalue()).encode())
    with open(folder / "map.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "login"])
        w.writerows([s["student"], login[s["student"]]] for s in students)
    with open(folder / "moodle_export.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["First name", "Last name", "ID number", "Institution", "Department", "Email address",
                    f"Assignment: {HW} (Real)", "Last downloaded from this course"])
        for s in students:
            w.writerow([s["first"], s["last"], "", "", "", f"{login[s['student']]}@uni.example", "-", "1790000000"])
    with open(folder / "moodle_map.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([s["student"], f"{login[s['student']]}@uni.example"] for s in students)
    with open(folder / "nbgrader_roster.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "last_name", "first_name", "email"])
        w.writerows([login[s["student"]], s["last"], s["first"], f"{login[s['student']]}@uni.example"] for s in students)
    return {name: folder / name for name in ("canvas_export.csv", "map.csv", "moodle_export.csv", "moodle_map.csv",
                                             "nbgrader_roster.csv")}


# --------------------------------------------------------------------------- the steps

STEPS: list[dict] = []


def step(name: str, args: list, wrote, out: Path) -> str:
    """Runs ``python -m autograder ARGS`` in the repository, as an instructor would; stops on failure."""
    command = [sys.executable, "-m", "autograder", *map(str, args)]
    shown = "python -m autograder " + " ".join(shlex.quote(str(a).replace(str(out), "$OUT")) for a in args)
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {name}: {shown}", flush=True)
    start = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    log = out / "logs" / f"{len(STEPS) + 1:02d}_{name.replace(' ', '_')}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(f"$ {shown}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}\nexit {done.returncode}\n")
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"step {name!r} failed (exit {done.returncode}): {shown}\n(log: {log})")
    STEPS.append({"name": name, "command": shown, "seconds": seconds,
                  "wrote": str(wrote).replace(str(out), "$OUT") if wrote else "-"})
    return done.stdout


def fill_sheets(grades: Path, students: list[dict]) -> list[Path]:
    """Every sheet's points and comments, deterministic: honest 3, 2.5 or 2; partial 2 or 1.5; blank 0."""
    kind = {s["student"]: s["kind"] for s in students}
    comments = {3.0: "Clear and complete: both effects explained.", 2.5: "Good; the dead units need one more line.",
                2.0: "Right idea, but (b) is not tied to your table.", 1.5: "Only half answered: say why units die."}
    sheets = sorted((grades / "manual").glob("*.csv"))
    if not sheets:
        raise SystemExit("step 'manual' wrote no sheet")
    for sheet in sheets:
        text = sheet.read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        fields = list(rows[0]) if rows else ["student", "answer_file", "points", "comment"]
        for i, row in enumerate(rows):
            who = kind.get(row["student"])
            if who is None:
                raise SystemExit(f"step 'fill sheets': {sheet} names an unknown student {row['student']!r}")
            if who == "blank":
                row["points"], row["comment"] = "0", "no answer"
            else:
                points = [3.0, 2.5, 2.0][i % 3] if who == "honest" else [2.0, 1.5][i % 2]
                row["points"], row["comment"] = f"{points:g}", comments[points]
        with open(sheet, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    return sheets


def screenshots(report: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(headless=True, args=flags)
        except Exception:   # no bundled Chromium: the system's
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        headless=True, args=flags)
        for width in (1280, 390):
            phone = width < 960
            context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=phone,
                                          has_touch=phone, device_scale_factor=1)
            page = context.new_page()
            page.goto(report.resolve().as_uri())
            path = SCREENSHOTS / f"class30_report_{width}.png"
            page.screenshot(path=str(path), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                print(f"note: report.html at {width} px is {overflow} px wider than the window", flush=True)
            shots.append(path)
            context.close()
        browser.close()
    return shots


def head(report: str, items: int = 2) -> list[str]:
    """A dry run's report, compact: every heading line and the first ``items`` entries under each."""
    lines, shown, hidden = [], 0, 0
    for line in report.splitlines():
        if line.startswith("    "):
            if shown < items:
                lines.append(line)
                shown += 1
            else:
                hidden += 1
            continue
        if hidden:
            lines.append(f"    ... {hidden} more")
        lines.append(line)
        shown = hidden = 0
    if hidden:
        lines.append(f"    ... {hidden} more")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/class_of_30"))
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", type=int, default=defaults.WORKERS)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if out.exists():
        if not (out / MARKER).exists() and any(out.iterdir()):
            raise SystemExit(f"{out} exists and was not written by this script; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by benchmarks/class_of_30.py; removed at its next run\n")
    began = time.monotonic()

    students = plan(args.students)
    subs, grades, lms = out / "submissions", out / "grades", out / "lms"
    start = time.monotonic()
    build(students, subs)
    files = lms_files(students, lms)
    STEPS.append({"name": "build class", "command": f"(this script) {len(students)} notebooks + submissions.csv "
                  "+ LMS files", "seconds": time.monotonic() - start, "wrote": "$OUT/submissions/submissions.csv"})

    step("release check", ["release", "--check"], None, out)
    step("grade", ["grade", HW, subs, "--out", grades, "--workers", args.workers,
                   "--deadline", DEADLINE.isoformat(), "--late-policy", POLICY], grades / "grades.csv", out)
    step("manual", ["manual", grades], grades / "manual", out)
    start = time.monotonic()
    sheets = fill_sheets(grades, students)
    STEPS.append({"name": "fill sheets", "command": "(this script) points and comments into "
                  + ", ".join(p.name for p in sheets), "seconds": time.monotonic() - start,
                  "wrote": ", ".join(str(p).replace(str(out), "$OUT") for p in sheets)})
    step("finalize", ["finalize", grades], grades / "grades.csv", out)
    step("report", ["report", grades], grades / "report.html", out)
    start = time.monotonic()
    shots = screenshots(grades / "report.html")
    STEPS.append({"name": "screenshots", "command": "(this script) Playwright + Chromium, 1280 and 390 px, full page",
                  "seconds": time.monotonic() - start, "wrote": ", ".join(str(p.relative_to(REPO)) for p in shots)})

    canvas = ["export", "canvas", grades, "--gradebook", files["canvas_export.csv"],
              "--assignment", CANVAS_ASSIGNMENT, "--map", files["map.csv"]]
    dry = {"canvas": step("canvas dry run", canvas, None, out)}
    step("canvas write", canvas + ["--write"], grades / "canvas_import.csv", out)
    moodle = ["export", "moodle", grades, "--roster", files["moodle_export.csv"], "--map", files["moodle_map.csv"]]
    dry["moodle"] = step("moodle dry run", moodle, None, out)
    step("moodle write", moodle + ["--write"], grades / "moodle_import.csv", out)
    nbgrader = ["export", "nbgrader", grades, "--roster", files["nbgrader_roster.csv"], "--map", files["map.csv"],
                "--duedate", DEADLINE.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")]
    dry["nbgrader"] = step("nbgrader dry run", nbgrader, None, out)
    step("nbgrader write", nbgrader + ["--write"], grades / "nbgrader_grades.csv", out)
    step("gradescope zip", ["export", "gradescope", "--homework", HW, "--out", out / "hw1_gradescope.zip"],
         out / "hw1_gradescope.zip", out)
    for path in [grades / "canvas_import.csv", grades / "moodle_import.csv", grades / "nbgrader_grades.csv",
                 out / "hw1_gradescope.zip", *shots]:
        if not path.is_file() or path.stat().st_size == 0:
            raise SystemExit(f"expected file missing or empty: {path}")

    # ------------------------------------------------------------------ 6. summary
    rows = list(csv.DictReader(open(grades / "grades.csv", encoding="utf-8-sig")))
    print(f"\n=== class of {len(students)}: {HW}, deadline {DEADLINE.isoformat()}, policy {POLICY}, "
          f"workers {args.workers}; OUT = {out}")
    print(f"{'step':18} {'seconds':>8}  command  ->  wrote")
    for s in STEPS:
        print(f"{s['name']:18} {s['seconds']:8.1f}  {s['command']}  ->  {s['wrote']}")
    finals = [float(r["final"]) for r in rows if r.get("final") not in (None, "", "not graded")]
    maximum = rows[0].get("max", "?") if rows else "?"
    print(f"\nfinal (of {maximum}): min {min(finals):g}, median {statistics.median(finals):g}, max {max(finals):g} "
          f"over {len(finals)} graded; automatic mean "
          f"{statistics.mean(float(r['automatic']) for r in rows if r.get('automatic') not in ('', None)):.2f}")
    print("planned: " + ", ".join(f"{k} {v}" for k, v in Counter(s["kind"] for s in students).items())
          + "; partial: " + "; ".join(f"{s['student']} ({', '.join(s.get('how', []))})"
                                      for s in students if s["kind"] == "partial"))
    print("status: " + ", ".join(f"{k!r} {v}" for k, v in Counter(r["status"] for r in rows).most_common()))
    late = [r for r in rows if r.get("late_days") not in ("", "0", None)]
    print(f"late: {len(late)}" + "".join(f"\n    {r['student']}: {r['late_days']} day(s), submitted "
                                         f"{r['submitted_at']}, total {r['total']} - penalty {r['penalty']} "
                                         f"= final {r['final']}" for r in late))
    at = [r["student"] for r in rows if r.get("submitted_at") and r.get("late_days") == "0"
          and datetime.fromisoformat(r["submitted_at"].replace("Z", "+00:00")) == DEADLINE]
    print(f"exactly at the deadline (0 days late): {', '.join(at) or 'none'}")
    for name, text in dry.items():
        print(f"\n--- {name} dry run (first lines)")
        print("\n".join(head(text)))
    print(f"\nwall time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

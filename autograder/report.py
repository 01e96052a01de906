"""What grading writes: per-student JSON and Markdown feedback, grades.csv, a summary and a histogram."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def write_student(result: dict, out: Path) -> None:
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    partial = out / "results" / f"{result['student']}.json.partial"
    partial.write_text(json.dumps(result, indent=2, sort_keys=True))
    partial.replace(out / "results" / f"{result['student']}.json")
    (out / "feedback" / f"{result['student']}.md").write_text(feedback(result))


def feedback(result: dict) -> str:
    """Passed or failed per question, with the instructor's messages: never a judge's code, detail or inputs."""
    lines = [f"# Feedback on {result['homework']} for {result['student']}", "",
             f"**Score: {result['total']:g} / {result['max_points']:g}**", ""]
    if result["status"] != "ok":
        lines += [f"Note: {result['status']}.", ""]
    for qid, q in result["questions"].items():
        mark = "passed" if not q["failed"] else ("partly passed" if q["passed"] else "failed")
        lines.append(f"## {qid}: {q['points']:g} / {q['max']:g} ({mark})")
        for problem in q.get("rule_violations", []):
            lines.append(f"- Your answer breaks this question's own-code rule: {problem[:200]} (no points)")
        if q.get("answer_error"):
            lines.append(f"- Your answer cell raised an error: `{q['answer_error'][:300]}`")
        for failure in q["failed"]:
            lines.append(f"- {failure['message']} (−{failure['points']:g})")
        lines.append("")
    return "\n".join(lines)


def write_summary(results: list[dict], questions, out: Path) -> None:
    """grades.csv (one row per student), summary.json and a histogram of total scores."""
    ids = [q.id for q in questions]
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *ids, "total", "max", "status"])
        for r in results:
            writer.writerow([r["student"], *(f"{r['questions'][q]['points']:g}" for q in ids),
                             f"{r['total']:g}", f"{r['max_points']:g}", r["status"]])
    count = max(len(results), 1)
    summary = {
        "students": len(results),
        "mean_total": sum(r["total"] for r in results) / count,
        "max_points": sum(q.points for q in questions),
        "mean_per_question": {q: sum(r["questions"][q]["points"] for r in results) / count for q in ids},
        "max_per_question": {q.id: q.points for q in questions},
        "not_ok": {r["student"]: r["status"] for r in results if r["status"] != "ok"},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.hist([r["total"] for r in results], bins=range(0, int(summary["max_points"]) + 2), edgecolor="black", align="left")
    left.set(xlabel="total points", ylabel="students", title=f"{len(results)} submissions")
    right.bar(ids, [summary["mean_per_question"][q] for q in ids], label="mean")
    right.bar(ids, [summary["max_per_question"][q] for q in ids], fill=False, edgecolor="black", label="max")
    right.set(ylabel="points", title="mean score per question")
    right.legend()
    fig.tight_layout()
    fig.savefig(out / "histogram.png", dpi=100)
    plt.close(fig)

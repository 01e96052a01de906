"""What the Gradescope zip's run_autograder runs: grade ``ROOT/submission/*.ipynb`` with this grader and
write ``ROOT/results/results.json`` in Gradescope's format (``ROOT``: ``$GRADESCOPE_ROOT``, default
/autograder; the zip's files are in ``ROOT/source``).

results.json (Gradescope's autograder specification): ``score`` (the automatic total), ``execution_time``,
``output`` (the student's feedback, Markdown), ``output_format`` "md", ``stdout_visibility`` "hidden", and
one test per judged test: ``name``, ``number``, ``score``, ``max_score``, ``status`` ("passed"/"failed"),
``output`` (the instructor's message only) and ``visibility`` (``gradescope.json``'s hidden_visibility,
"after_published": the tests are hidden, so their results show once the grades are published).
Written answers are not tests: Gradescope's manual questions grade them; ``output`` lists them.

When nothing about the student can be said (the sandbox cannot start here, the instructor's solution
fails its self-check, or the grader failed twice on the run) the file has no ``score`` and no tests, only
``output`` saying "Not graded" and why, and ``extra_data.graded`` false; the exit status is 1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

RESULTS_SCHEMA = {   # written from Gradescope's "Autograder Specifications" (results.json)
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "score", "max_score", "status", "output", "visibility"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                "number": {"type": "string"},
                "score": {"type": "number"},
                "max_score": {"type": "number", "minimum": 0},
                "status": {"enum": ["passed", "failed"]},
                "output": {"type": "string"},
                "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
                "extra_data": {"type": "object"},
            }}},
        "leaderboard": {"type": "array"},
    },
    # Gradescope: "score" is optional but required if not on each test case; "tests" is optional.
    "anyOf": [{"required": ["score"]}, {"required": ["tests"], "properties": {"tests": {"minItems": 1}}},
              {"properties": {"extra_data": {"required": ["graded"], "properties": {"graded": {"const": False}}}},
               "required": ["output", "extra_data"]}],
}

NOT_GRADED = ("Not graded: {why}. This is not your score: the grader could not grade your submission here, "
              "for reasons of its own (not your code's). Your instructor has been told and will grade it again; "
              "you need not do anything.")


def root() -> Path:
    return Path(os.environ.get("GRADESCOPE_ROOT", "/autograder"))


def not_graded(why: str, seconds: float) -> dict:
    return {"output": NOT_GRADED.format(why=why), "output_format": "text", "execution_time": round(seconds, 2),
            "stdout_visibility": "hidden", "visibility": "visible", "extra_data": {"graded": False, "reason": why}}


def results_json(result, config: dict, source_questions, seconds: float, note: str = "") -> dict:
    """Gradescope's results.json for one graded ``Result``."""
    from ..report import feedback
    visibility = config.get("hidden_visibility", "after_published")
    tests = []
    for number, question in enumerate(source_questions, 1):
        scored = result.questions[question.id]
        failed = {f.test: f for f in scored.failed}
        for index, test in enumerate(question.tests, 1):
            passed = test.key in scored.passed
            lines = [] if passed else [failed[test.key].message if test.key in failed else test.message]
            if not passed and scored.rule_violations:
                lines.append("Your answer breaks this question's own-code rule (no points).")
            if not passed and scored.answer_error:
                lines.append(f"Your answer cell raised an error: {scored.answer_error[:300]}")
            tests.append({"name": f"{test.key} ({test.points:g} point{'s' * (test.points != 1)})",
                          "number": f"{number}.{index}", "score": test.points if passed else 0.0,
                          "max_score": test.points, "status": "passed" if passed else "failed",
                          "output": "\n".join(lines) or "Passed.", "visibility": visibility})
    output = (note + "\n\n" if note else "") + feedback(result)
    return {"score": result.total, "execution_time": round(seconds, 2), "output": output, "output_format": "md",
            "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"graded": True, "status": result.status, "homework": result.homework,
                           "manual_max": result.manual_max}}


def grade_here(base: Path) -> tuple[dict, int]:
    """Grade the one submission under ``base``; (results.json's object, exit status)."""
    start = time.monotonic()
    source = base / "source"
    config = json.loads((source / "gradescope.json").read_text())
    found = sorted((base / "submission").glob("*.ipynb"))
    from .. import grade, sandbox
    from ..grade import Assignment
    assignment = Assignment.read(source / config["notebook"])
    if not found:
        return ({"score": 0.0, "output": "No notebook (.ipynb) was submitted: hand in your "
                 f"{assignment.name}.ipynb.", "execution_time": 0.0, "stdout_visibility": "hidden",
                 "tests": [], "extra_data": {"graded": True, "status": "no notebook submitted"}}, 0)
    chosen = next((p for p in found if p.stem == assignment.name), found[0])
    note = f"Graded {chosen.name}; also submitted, not graded: {', '.join(p.name for p in found if p != chosen)}." \
        if len(found) > 1 else ""
    try:
        sandbox.check_available()
    except sandbox.SandboxUnavailable as error:
        why = f"the grading sandbox cannot start on this machine ({error})"
        print(why, file=sys.stderr)
        return not_graded("the grading sandbox cannot start on this machine", time.monotonic() - start) | {
            "extra_data": {"graded": False, "reason": why}}, 1
    with tempfile.TemporaryDirectory(prefix="gradescope-") as temp:
        folder = Path(temp) / "submission"
        folder.mkdir()
        (folder / chosen.name).write_bytes(chosen.read_bytes())
        try:
            [result] = grade.grade(str(source / config["notebook"]), [folder / chosen.name], Path(temp) / "out",
                                   workers=1, cell_timeout=float(config["cell_timeout"]), progress=False,
                                   key_file=source / "grader.key", check_first=bool(config.get("self_check", True)))
        except grade.SelfCheckFailed as error:
            print(error, file=sys.stderr)
            return not_graded("the instructor's own solution did not score full marks on this machine, so the "
                              "grader is broken here", time.monotonic() - start), 1
    if not result.scored:
        print(result.status, result.output_tail or "", file=sys.stderr, sep="\n")
        return not_graded(result.status, time.monotonic() - start), 1
    return results_json(result, config, assignment.questions, time.monotonic() - start, note), 0


def main() -> int:
    base = root()
    (base / "results").mkdir(parents=True, exist_ok=True)
    try:
        data, status = grade_here(base)
    except Exception as error:   # the grader itself broke: say so, never a zero
        import traceback
        traceback.print_exc()
        data, status = not_graded(f"the grader stopped with {type(error).__name__}", 0.0), 1
    partial = base / "results" / "results.json.partial"
    partial.write_text(json.dumps(data, indent=2))
    partial.replace(base / "results" / "results.json")
    said = f"score {data['score']:g}" if "score" in data else "not graded"
    print(f"wrote {base / 'results' / 'results.json'}: {said}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""The course autograder: ``release`` student notebooks, ``grade`` submissions with nbval.

Grading is a pipeline of small steps, each a function that can be tested alone:
collect → load → own-code rules → inject probes → run in the sandbox (pytest+nbval) → judge → score → report.
Probes run with the student's code; judges, which decide the points, run only in the trusted grader.

Modules: ``cells`` (the instructor notebook format and the table of cell kinds), ``release``,
``matching`` (which submitted cell is which), ``rules`` (own-code rules), ``inject``, ``sandbox`` and
``run`` (one sandboxed pytest+nbval run), ``probe`` (inside the sandbox) and ``judging`` (outside it),
``grade`` (one student and the batch), ``result`` (the typed, signed result), ``keys``, ``report``,
``merge``, ``items`` (the item analysis: report.html, items.csv), ``exports`` (Canvas, Moodle,
nbgrader, Gradescope), ``defaults`` and ``cli``; after grading, ``manual`` (hand-grading sheets,
``finalize``), ``late`` (deadlines, penalties), ``stored`` (kept exports) and ``rejudge``, their commands in
``handwork``. The sandbox sees only this file, ``probe`` and ``nbval_plugin``.
"""

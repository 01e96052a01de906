"""The course autograder: ``release`` student notebooks, ``grade`` submissions with nbval.

Grading is a pipeline of small steps, each a function that can be tested alone:
collect → load → own-code rules → inject probes → run in the sandbox (pytest+nbval) → judge → score → report.
Probes run with the student's code; judges, which decide the points, run only in the trusted grader.
"""

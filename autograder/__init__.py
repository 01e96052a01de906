"""The course autograder: ``release`` student notebooks, ``grade`` submissions with nbval.

Grading is a pipeline of small steps, each a function that can be tested alone:
collect → load → inject hidden tests → run under pytest+nbval → score → report.
"""

"""A pytest plugin loaded beside nbval while grading: it records, per cell, whether the kernel is
still alive after the cell. nbval reports a dead kernel only as a timeout; this tells them apart.
The verdict lands in the JUnit report as a ``kernel`` property of the cell's test case."""

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or report.passed:
        return
    kernel = getattr(item.parent, "kernel", None)
    if kernel is not None and not kernel.is_alive():
        item.user_properties.append(("kernel", "died"))  # JUnit reads the teardown report, made later

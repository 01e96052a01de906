"""Every default of a grading run, in one place: the command line's flags, ``grade.grade``, the sandbox's
``Limits`` and the tests read them from here, so that changing one changes it everywhere.

The caps on hostile input (``grade.SUBMISSION_CAP``, ``judging.EXPORT_CAP``, ...) are not here: they
guard the grader itself and are not meant to be tuned per class.
"""

WORKERS = 2                  # submissions graded at once (each run is one sandbox and one kernel)
CELL_TIMEOUT = 30.0          # seconds one cell may run
MEMORY = 4 << 30             # bytes of address space of one run (--memory-gib 4)
CPU_SECONDS = 600            # CPU time of one run
PROCESSES = 256              # processes and threads of one run's uid
FILE_SIZE = 64 << 20         # bytes of the largest file a run may write
OUTPUT_CAP = 1_000_000       # bytes of a run's stdout+stderr read before the run is stopped
KERNEL_STARTUP_SECONDS = 90  # generous: on a busy machine a kernel that imports torch takes a while
RUN_SLACK_SECONDS = 30       # a whole run may take kernel start-up + this + the cell timeout per code cell

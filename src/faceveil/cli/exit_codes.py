"""Process exit codes of the `faceveil` command (documented in ``faceveil --help``)."""

OK = 0
INPUT_FAILED = 1
USAGE = 2
MODEL = 3
INTERRUPTED = 130

EPILOG = """exit codes:
  0    every input was processed
  1    at least one input failed (the others were still processed; see the messages);
       for verify: a check failed (each one is named)
  2    invalid command line or option value
  3    a detection model could not be loaded or run
  130  interrupted (Ctrl-C); no partial output is left behind
"""

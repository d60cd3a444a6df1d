"""The instructor's side of the course: nbgrader's configuration and the steps around it.

    python -m autograder generate   # solutions/ -> the student notebooks in notebooks/
    python -m autograder release    # a zip per assignment for the LMS
    python -m autograder collect    # an LMS bulk download -> one folder per student
    python -m autograder grade      # nbgrader in parallel, sandboxed, re-checked for integrity
    python -m autograder feedback   # HTML feedback that never shows a hidden test

Run it from the course root (autograder/README.md is the instructor's guide). `course` knows the
folder layout; the other modules do one step each.
"""

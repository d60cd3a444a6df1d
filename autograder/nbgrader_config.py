"""nbgrader configuration for "How LLMs Actually Work".

The course's commands (`python -m autograder ...`) pass it to nbgrader. To run nbgrader by hand,
do it from the repository root and name this file (nbgrader 0.9 ignores --config):

    nbgrader generate_feedback 00_onramp --NbGrader.config_file=autograder/nbgrader_config.py

(there is deliberately no nbgrader_config.py at the top level, whose layout is fixed). Every path
comes from autograder/course.py, computed from its location, so the commands behave the same from
any working directory, and a copy of the course elsewhere (the tests grade in a temporary copy)
grades itself.

Environment variables read here (the grading scripts and tests set them; all optional):
    COURSE_CELL_TIMEOUT    seconds one cell may run before nbgrader interrupts it (default 300)
    COURSE_ANSWER_TIMEOUT  the same for cells the learner writes (answer cells); default: as above.
                           A short value catches an infinite loop early without cutting short the
                           instructor's slow cells (model loading, training).
    COURSE_FAST            set to 1 here unless already set: every long run in course_lib shrinks.
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import (AssignLatePenalties, ClearSolutions, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)

# nbgrader puts its working directory, the course root, on the path: this package is found there.
from autograder import course
from autograder.feedback import HideHiddenTests
from autograder.generate import ClearSolutionsRunAllSafe
from autograder.sandbox import GuardedExecute

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

# --- where things live ------------------------------------------------------------------------
c.CourseDirectory.root = str(course.ROOT)
c.CourseDirectory.course_id = course.COURSE_ID
c.CourseDirectory.source_directory = course.SOLUTIONS  # solutions/<assignment>/<assignment>.ipynb
c.CourseDirectory.release_directory = course.NOTEBOOKS  # notebooks/<assignment>/<assignment>.ipynb
c.CourseDirectory.submitted_directory = course.SUBMITTED  # .../<student>/<assignment>/
c.CourseDirectory.autograded_directory = course.AUTOGRADED
c.CourseDirectory.feedback_directory = course.FEEDBACK
c.CourseDirectory.solution_directory = course.RELEASE_SOLUTION
c.CourseDirectory.source_with_tests_directory = course.SOURCE_WITH_TESTS
c.CourseDirectory.db_url = f"sqlite:///{course.ROOT / course.GRADEBOOK}"

# --- execution while autograding --------------------------------------------------------------
# Every long run in course_lib (training, sweeps, generation loops) shrinks under this flag. The
# kernels nbgrader starts inherit this process's environment, so setting it here is enough.
if not os.environ.get("COURSE_FAST"):
    os.environ["COURSE_FAST"] = "1"
# A failed check raises under grading (nbgrader scores the test cell zero); in a learner's notebook it
# shows a panel and the notebook runs on (course_lib/exercises/__init__.py).
os.environ["COURSE_GRADING"] = "1"
# Grading must never depend on a GPU being present or absent.
os.environ.setdefault("COURSE_DEVICE", "cpu")

CELL_TIMEOUT = int(os.environ.get("COURSE_CELL_TIMEOUT") or 300)
ANSWER_TIMEOUT = int(os.environ.get("COURSE_ANSWER_TIMEOUT") or CELL_TIMEOUT)


def _cell_timeout(cell):
    """Seconds a cell may run: answer cells (nbgrader 'solution' cells) get ANSWER_TIMEOUT."""
    if cell.get("metadata", {}).get("nbgrader", {}).get("solution", False):
        return ANSWER_TIMEOUT
    return CELL_TIMEOUT


c.Execute.timeout = CELL_TIMEOUT
c.Execute.timeout_func = _cell_timeout
# On a timeout, interrupt the kernel (KeyboardInterrupt in the learner's loop), record a
# CellTimeoutError in that cell, and go on with the next cells, which are still graded (nbgrader's
# Execute always runs on after errors).
c.Execute.interrupt_on_timeout = True
c.Execute.execute_retries = 0
# An autograded notebook keeps the outputs, not the widgets' live state: each plotly FigureWidget
# carries its 5 MB plotly.js bundle there, and every later step would read it again.
c.Execute.store_widget_state = False
# Kernel start-up on a busy 2-core CI runner can be slow.
c.Execute.startup_timeout = 120

# nbgrader's autograde steps, with its Execute replaced by GuardedExecute (sandbox.py): the kernel
# starts in the sandbox that grade.py describes in $COURSE_SANDBOX, each cell's output is capped,
# and a kernel that dies marks its cell and every later one as failed instead of failing the run.
c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties,
                                       CheckCellMetadata]
# A deleted grade cell is put back from the source and graded, never silently worth nothing
# (grade.py reports it). Locked cells (tests, instructor code) are restored by OverwriteCells.
c.OverwriteCells.add_missing_cells = True

# Feedback never shows a hidden test (feedback.py).
c.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]

# Keep runaway output (a print in a loop) out of the gradebook and the feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# --- generating the student notebooks ----------------------------------------------------------
# nbgrader's ClearOutput already drops outputs and execution counts; `python -m autograder generate`
# additionally strips widget state and volatile metadata before and after generation.
c.GenerateAssignment.preprocessors = [ClearSolutionsRunAllSafe if p is ClearSolutions else p
                                      for p in GenerateAssignment.class_traits()["preprocessors"].default()]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

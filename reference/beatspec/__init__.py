"""beatspec: the Celery beat + RedBeat Redis schedule layout as a versioned contract.

The package is the reference implementation of ``spec/beatspec-1.md``: one codec
(:mod:`beatspec.codec`), the rule catalogue (:mod:`beatspec.rules`), document validation
(:mod:`beatspec.validate`) and the JSON Schemas (:mod:`beatspec.schemas`).
"""

from beatspec.findings import Finding, Outcome, Report
from beatspec.rules import RULES, Level, Rule
from beatspec.validate import Kind, validate_document

__version__ = "0.1.0"
SPEC_VERSION = "1.0"

__all__ = [
    "RULES",
    "SPEC_VERSION",
    "Finding",
    "Kind",
    "Level",
    "Outcome",
    "Report",
    "Rule",
    "__version__",
    "validate_document",
]

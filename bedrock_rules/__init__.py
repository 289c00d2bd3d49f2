"""bedrock-rules: price usage against declarative rule files, exactly.

    rules = bedrock_rules.load()            # the bundled Amazon Bedrock ruleset
    bill = rules.evaluate({"usage": [...]})  # a frozen Bill; raises UsageError
"""

from __future__ import annotations

from .bill import Bill, Charge, ItemBill, dump, render_table
from .errors import BedrockRulesError, Diagnostic, Problem, RuleFileError, UsageError
from .ruleset import Ruleset, load

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it (hatch's dynamic version)

__all__ = [
    "BedrockRulesError",
    "Bill",
    "Charge",
    "Diagnostic",
    "ItemBill",
    "Problem",
    "RuleFileError",
    "Ruleset",
    "UsageError",
    "__version__",
    "dump",
    "load",
    "render_table",
]

"""bedrock-rules: price usage against declarative rule files, exactly.

    rules = bedrock_rules.load()            # the bundled Amazon Bedrock ruleset
    bill = rules.evaluate({"usage": [...]})  # a frozen Bill; raises UsageError
"""

from __future__ import annotations

from .bill import Bill, Charge, ItemBill, dump, render_table
from .errors import BedrockRulesError, Diagnostic, Problem, RuleFileError, UsageError
from .ruleset import Ruleset, load

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
    "dump",
    "load",
    "render_table",
]

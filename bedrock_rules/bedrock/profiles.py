"""Application inference profiles: the user's mapping of a profile ARN or ID to its model.

A record made through an application inference profile names the profile, not the
model. `aws bedrock get-inference-profile` says which model it routes to; its output
(one profile, a list of them, or `list-inference-profiles`' `inferenceProfileSummaries`)
or a plain `{profile ARN or ID: model ID}` mapping, in JSON or YAML, resolves them.
"""

from __future__ import annotations

from typing import Any

import yaml

from .. import limits
from ..errors import Problem, UsageError


def load_profiles(path: str) -> dict[str, str]:
    """Profile ARN and ID to model ID; UsageError naming the file and the entry when wrong."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read(limits.MAX_DOCUMENT_CHARS + 1)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise UsageError([Problem(f"cannot read inference profiles: {reason}", source=path)]) from None
    if len(text) > limits.MAX_DOCUMENT_CHARS:
        raise UsageError([Problem("inference profiles: file too large", source=path)])
    profiles: dict[str, str] = {}
    problems: list[Problem] = []
    if isinstance(data, dict) and isinstance(data.get("inferenceProfileSummaries"), list):
        data = data["inferenceProfileSummaries"]
    if isinstance(data, dict) and "inferenceProfileArn" not in data and "inferenceProfileId" not in data:
        for key, value in data.items():
            if isinstance(key, str) and isinstance(value, str) and value:
                profiles[key] = value
            else:
                problems.append(Problem(f"entry {key!r}: expected a profile ARN or ID mapped to a model ID", source=path))
    else:
        for number, entry in enumerate(data if isinstance(data, list) else [data], 1):
            model = _model_of(entry)
            given = [entry.get(k) for k in ("inferenceProfileArn", "inferenceProfileId")] if isinstance(entry, dict) else []
            names: list[str] = [n for n in given if isinstance(n, str) and n]
            if model is None or not names:
                problems.append(Problem(
                    f"profile {number}: expected inferenceProfileArn or inferenceProfileId and models "
                    "[{modelArn}] naming one model",
                    source=path,
                ))
                continue
            profiles.update(dict.fromkeys(names, model))
    if problems:
        raise UsageError(problems)
    return profiles


def _model_of(entry: Any) -> str | None:
    """The one model a profile routes to (its copies in several regions are one model)."""
    models = entry.get("models") if isinstance(entry, dict) else None
    if not isinstance(models, list) or not models:
        return None
    names = {m.get("modelArn") for m in models if isinstance(m, dict)}
    ids = {n.rsplit("/", 1)[-1] for n in names if isinstance(n, str)}
    return next(iter(ids)) if len(ids) == 1 and None not in names else None

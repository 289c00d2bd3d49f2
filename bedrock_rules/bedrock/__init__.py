"""Amazon Bedrock's own formats: model invocation logs, their containers and groupings.

Everything that names a field of a Bedrock record lives in this package; the engine
below it knows pricing only.
"""

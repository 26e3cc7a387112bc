"""Rule files: schema, loader and validation, producing the rule model every engine runs."""

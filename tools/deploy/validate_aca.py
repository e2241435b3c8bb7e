"""Validate rendered Container Apps Job YAML against deploy/schema/aca-job.schema.json.

Usage: python validate_aca.py SCHEMA FILE.yaml...   (every document of every file)
Prints one line per problem and exits 1 if there is any; 0 and a count otherwise.
Runs from the venv scripts/ensure-deps.sh makes (jsonschema, PyYAML).
"""
import json
import sys

import jsonschema
import yaml


def main() -> int:
    schema_path, *files = sys.argv[1:]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    problems = 0
    checked = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                checked += 1
                name = doc.get("name") if isinstance(doc, dict) else None
                for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
                    print(f"{path}: job {name}: {where}: {err.message}")
                    problems += 1
    if checked == 0:
        print("no documents to check")
        return 1
    print(f"{checked} document(s) checked, {problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

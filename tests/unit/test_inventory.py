"""The resources each stack x target registers (type, name, parent), committed under
tests/unit/inventory/<stack>-<target>.txt, so a pull request shows every change to the graph.

After an intended change, regenerate the files and commit them with the change:

    UPDATE_INVENTORY=1 .venv/bin/pytest tests/unit/test_inventory.py

(the variable makes this test rewrite the files instead of comparing).
"""

from __future__ import annotations

import os

import pytest

from tests.unit.harness import STACKS, TARGETS, inventory_text, matrix_case

INVENTORY = os.path.join(os.path.dirname(__file__), "inventory")
CASES = [(s, t) for s in STACKS for t in TARGETS]


@pytest.mark.parametrize(("stack", "target"), CASES)
def test_inventory_matches(stack, target):
    result = matrix_case(stack, target)
    assert result["error"] is None, result["error"]
    text = inventory_text(result)
    path = os.path.join(INVENTORY, f"{stack}-{target}.txt")
    if os.environ.get("UPDATE_INVENTORY"):
        os.makedirs(INVENTORY, exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
        return
    assert os.path.exists(path), (
        f"{path} is missing: run UPDATE_INVENTORY=1 .venv/bin/pytest tests/unit/test_inventory.py"
    )
    with open(path) as fh:
        committed = fh.read()
    assert text == committed, (
        f"the resource graph of {stack} on {target} changed; if intended, run "
        "UPDATE_INVENTORY=1 .venv/bin/pytest tests/unit/test_inventory.py and commit the diff"
    )

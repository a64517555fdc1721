"""Images of the production values files are pinned by digest (issue 18, item 1): every
third-party image carries a real published digest (docs/KUBERNETES_DEPLOYMENT.md lists where
each comes from), so `IfNotPresent` always runs exactly that image."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import CHART, REPO, all_containers, pod_template, render

# Images no public registry source gives a digest for: the team sets them per stack.
TEAM_BUILT = ("pganalytics/", "rclone/rclone:")
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_every_third_party_image_is_pinned_by_digest(stack):
    values = {"volumeSnapshots": {"enabled": True, "className": "snap"}}
    objs = render(f"values-{stack}.yaml", values=values)
    images = set()
    for obj in objs:
        template = pod_template(obj)
        if template:
            images |= {c["image"] for c in all_containers(template["spec"])}
    third_party = {i for i in images if not any(t in i for t in TEAM_BUILT)}
    assert len(third_party) >= 4, images
    for image in sorted(third_party):
        digest = image.partition("@")[2]
        assert DIGEST.fullmatch(digest), f"{stack}: {image} is not pinned by digest"


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_every_shipped_digest_is_documented_with_its_source(stack):
    values = yaml.safe_load((CHART / f"values-{stack}.yaml").read_text())
    digests = set(re.findall(r"sha256:[a-f0-9]{64}", yaml.safe_dump(values)))
    doc = (REPO / "docs" / "KUBERNETES_DEPLOYMENT.md").read_text()
    for digest in digests:
        short = f"{digest[:15]}"
        assert short in doc, f"{digest} of values-{stack}.yaml is not in the digest table"

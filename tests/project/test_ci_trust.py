"""The CI trust set-up as documented (docs/CI_CD.md) is the one the workflows use: the same
GitHub environments, OIDC subjects, purposes and branches on every cloud, and the supply-chain
rules a security review asked for (pinned actions, no template expansion in shell, minimal
permissions, secrets only inside environments, deploys only from main after the tests)."""

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
CLOUD_LOGIN = "./.github/actions/cloud-login"
DOC = ROOT / "docs" / "CI_CD.md"
SUBJECT = "repo:<org>/<repo>:environment:{}"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
STACKS = ("dev", "prod", "enterprise")


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(workflow: dict) -> dict:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {key: {} for key in on}
    return {k: v or {} for k, v in on.items()}


def jobs():
    """(workflow file name, workflow, job id, job) for every job."""
    for path in WORKFLOWS:
        workflow = load(path)
        for job_id, job in workflow["jobs"].items():
            yield path.name, workflow, job_id, job


def dispatch_choices(workflow: dict, name: str) -> list[str]:
    spec = triggers(workflow).get("workflow_dispatch", {}).get("inputs", {}).get(name)
    assert spec and spec.get("type") == "choice", f"input {name} is not a choice"
    return list(spec["options"])


def resolve(value: str, workflow: dict, job: dict) -> set[str]:
    """Every value an `environment:` can take, for the expression forms the workflows use."""
    options = []
    for expression in EXPRESSION.findall(value):
        if m := re.fullmatch(r"matrix\.(\w+)", expression):
            options.append(job["strategy"]["matrix"][m.group(1)])
        elif m := re.fullmatch(r"inputs\.([\w-]+)(?:\s*\|\|\s*'([\w-]+)')?", expression):
            choices = dispatch_choices(workflow, m.group(1))
            options.append(choices + ([m.group(2)] if m.group(2) else []))
        else:
            pytest.fail(f"teach this test the environment expression {expression!r}")
    literals = EXPRESSION.split(value)[::2]  # the text around the expressions
    return {
        "".join(itertools.chain.from_iterable(zip(literals, [*map(str, combo), ""], strict=True)))
        for combo in itertools.product(*options)
    }


def environments_of(workflow: dict, job: dict) -> set[str]:
    env = job.get("environment")
    if env is None:
        return set()
    name = env["name"] if isinstance(env, dict) else env
    return resolve(name, workflow, job)


def logs_in(job: dict) -> bool:
    return any(step.get("uses") == CLOUD_LOGIN for step in job.get("steps", []))


def login_environments() -> dict[str, set[str]]:
    """environment -> the workflow files whose logging-in jobs run in it."""
    found: dict[str, set[str]] = {}
    for name, workflow, _, job in jobs():
        if logs_in(job):
            for env in environments_of(workflow, job):
                found.setdefault(env, set()).add(name)
    return found


def doc_table() -> dict[str, dict[str, str]]:
    """The `<!-- environments -->` table of docs/CI_CD.md: environment -> its columns."""
    text = DOC.read_text()
    block = text.split("<!-- environments -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = [
        [c.strip().strip("`") for c in line.strip("|").split("|")] for line in block.splitlines()
    ]
    header, _, *body = rows
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def doc_section(title: str) -> str:
    text = DOC.read_text()
    m = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"docs/CI_CD.md has no '## {title}' section"
    return m.group(1)


def shell_texts():
    """(where, run text) of every shell step in the workflows and the composite actions."""
    for path in [*WORKFLOWS, *sorted(GITHUB.glob("actions/*/action.yml"))]:
        data = load(path)
        groups = [data["runs"].get("steps", [])] if "runs" in data else []
        groups += [job.get("steps", []) for job in data.get("jobs", {}).values()]
        for steps in groups:
            for step in steps:
                if "run" in step:
                    yield f"{path.name}: {step.get('name', step['run'][:40])}", step["run"]


# --- docs and workflows agree ----------------------------------------------------------------


def test_the_documented_environments_are_those_the_workflows_log_in_from():
    assert set(doc_table()) == set(login_environments())


def test_each_environment_has_its_own_subject_purpose_and_stack():
    used = login_environments()
    for env, row in doc_table().items():
        assert row["OIDC subject"] == SUBJECT.format(env), row
        purpose = "preview" if used[env] == {"preview.yml"} else "deploy"
        assert used[env] in ({"preview.yml"}, {"deploy.yml"}), (env, used[env])
        assert row["purpose"] == purpose, (env, row["purpose"], purpose)
        stack = env.removesuffix("-preview")
        assert row["stack"] == stack and stack in STACKS, row


@pytest.mark.parametrize("cloud", ["AWS", "GCP", "Azure"])
def test_each_cloud_trusts_every_environment_by_its_exact_subject(cloud):
    section = doc_section(cloud)
    subjects = set(re.findall(r"repo:<org>/<repo>:[^\s`'\"|]+", section))
    assert subjects == {SUBJECT.format(env) for env in doc_table()}, cloud
    # No wildcard and no subject that is not an environment (pull_request, a branch ref).
    assert "*" not in "".join(subjects)


def test_gcp_binds_the_subject_not_the_whole_repository():
    section = doc_section("GCP")
    assert "google.subject=assertion.sub" in section
    assert "assertion.environment in [" in section
    for env in doc_table():
        assert (
            f"principal://iam.googleapis.com/projects/<number>/locations/global/"
            f"workloadIdentityPools/github/subject/{SUBJECT.format(env)}" in section
        )
    members = re.findall(r"--member='?([^'\s]+)", section)
    assert members and all(m.startswith("principal://") for m in members), members


def test_aws_trust_policy_matches_the_subject_exactly():
    section = doc_section("AWS")
    policy = json_block(section)
    condition = policy["Statement"][0]["Condition"]
    assert set(condition) == {"StringEquals"}
    assert condition["StringEquals"]["token.actions.githubusercontent.com:aud"] == (
        "sts.amazonaws.com"
    )
    assert condition["StringEquals"]["token.actions.githubusercontent.com:sub"] in {
        SUBJECT.format(env) for env in doc_table()
    }


def json_block(section: str) -> dict:
    m = re.search(r"```json\n(.*?)```", section, re.S)
    assert m, "no JSON block"
    return json.loads(m.group(1))


def test_deploy_environments_take_main_only_and_previews_any_branch():
    for row in doc_table().values():
        expected = "main" if row["purpose"] == "deploy" else "all"
        assert row["deployment branches"] == expected, row
        if row["stack"] in ("prod", "enterprise") or row["purpose"] == "preview":
            # A preview runs the pull request's code with an identity that decrypts its
            # stack's secrets (dev-preview holds dev's passphrase): a maintainer approves it.
            assert row["required reviewers"] == "maintainers", row


# --- what a preview identity can read (issue 18 item 7) ---------------------------------------


def marked_json(marker: str) -> dict:
    """The JSON block right after `<!-- marker -->` in docs/CI_CD.md."""
    m = re.search(rf"<!-- {marker} -->\n```json\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/CI_CD.md has no JSON block after <!-- {marker} -->"
    return json.loads(m.group(1))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_aws_preview_roles_are_view_only_with_an_explicit_deny_on_the_backups():
    """AWS ReadOnlyAccess includes s3:GetObject on every bucket, the backups included: a
    pull request's preview read prod's dumps. The preview policy allows no object read
    outside the state bucket and denies every object operation on the backup bucket."""
    section = doc_section("AWS")
    managed = set(re.findall(r"arn:aws:iam::aws:policy/[\w/-]+", DOC.read_text()))
    assert managed == {"arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"}, managed
    policy = marked_json("preview-policy")
    allows = [st for st in policy["Statement"] if st["Effect"] == "Allow"]
    for statement in allows:
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        if any(a.startswith("s3:") for a in actions):
            assert all("<state-bucket>" in r for r in resources), statement
        assert not any(a.endswith("*") or a == "*" for a in actions), statement
        assert not {"secretsmanager:GetSecretValue", "ssm:GetParameters"} & set(actions)
        if "ssm:GetParameter" in actions:  # the public EKS AMI parameters only
            assert resources == ["arn:aws:ssm:*::parameter/aws/service/eks/*"], statement
    denies = [st for st in policy["Statement"] if st["Effect"] == "Deny"]
    assert len(denies) == 1 and "Condition" not in denies[0], denies
    deny = denies[0]
    assert {"s3:GetObject*", "s3:ListBucket*", "s3:PutObject*", "s3:DeleteObject*"} <= set(
        as_list(deny["Action"])
    )
    assert set(as_list(deny["Resource"])) == {
        "arn:aws:s3:::pganalytics-prod-backups-*",
        "arn:aws:s3:::pganalytics-prod-backups-*/*",
    }
    assert "put-role-policy --role-name pganalytics-prod-preview" in section


def test_gcp_and_azure_preview_identities_hold_no_data_role():
    gcp = doc_section("GCP")
    rows = [line for line in gcp.splitlines() if line.startswith("| `pganalytics-")]
    previews = [r for r in rows if "-preview@" in r.split("|")[1]]
    assert len(previews) == 3, rows
    for row in previews:
        roles = set(re.findall(r"roles/[\w.]+", row.split("|")[3]))
        assert roles == {"roles/browser", "roles/container.viewer"}, row
    deny = marked_json("preview-deny-gcp")["rules"][0]["denyRule"]
    assert {"storage.googleapis.com/objects.get", "storage.googleapis.com/objects.list"} <= set(
        deny["deniedPermissions"]
    )
    assert all("-preview@" in p for p in deny["deniedPrincipals"]), deny
    azure = doc_section("Azure")
    for row in (line for line in azure.splitlines() if "-preview` |" in line):
        roles = row.split("|")[3]
        assert "Data" not in roles and "Contributor" not in roles and "Owner" not in roles, row


def test_the_doc_says_what_each_identity_can_read():
    text = DOC.read_text()
    table = text.split("### What each identity can read", 1)[1].split("\n\n")[2]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {env for row in rows for env in re.findall(r"`([\w-]+)`", row.split("|")[1])}
    assert named == set(doc_table()), named
    for row in rows:
        assert row.rstrip("| ").endswith("none") or "deploy" in row, row


def test_deploy_jobs_run_from_main_only_and_after_the_tests():
    deploys = [(w, j) for name, w, _, j in jobs() if name == "deploy.yml" and logs_in(j)]
    assert deploys
    for workflow, job in deploys:
        assert triggers(workflow)["push"] == {"branches": ["main"]}
        assert set(triggers(workflow)) == {"push", "workflow_dispatch"}
        assert "github.ref == 'refs/heads/main'" in job["if"]
        needs = [job["needs"]] if isinstance(job["needs"], str) else job["needs"]
        called = {workflow["jobs"][n].get("uses") for n in needs}
        assert "./.github/workflows/test.yml" in called, needs
        # A push (no inputs) deploys dev, and nothing else.
        assert "dev" in environments_of(workflow, job)
    assert "workflow_call" in triggers(load(GITHUB / "workflows" / "test.yml"))


def test_preview_jobs_skip_forks_and_manual_runs_off_main():
    for name, _, _, job in jobs():
        if name == "preview.yml" and logs_in(job):
            condition = " ".join(job["if"].split())
            assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
            assert (
                "github.event_name == 'workflow_dispatch' && github.ref == 'refs/heads/main'"
                in (condition)
            )


def test_variables_and_secrets_the_workflows_read_are_documented():
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    names = set(re.findall(r"\b(?:vars|secrets)\.(\w+)", text)) - {"GITHUB_TOKEN"}
    section = doc_section("GitHub environments")
    missing = sorted(n for n in names if f"`{n}`" not in section)
    assert not missing, f"docs/CI_CD.md does not document {missing}"


# --- supply chain ---------------------------------------------------------------------------


def test_every_action_is_pinned_by_commit_with_its_tag_in_a_comment():
    pins = 0
    for path in [*WORKFLOWS, *GITHUB.glob("actions/*/action.yml")]:
        for line in path.read_text().splitlines():
            m = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not m or m.group(1).startswith("./"):
                continue
            pins += 1
            assert SHA_PIN.match(m.group(1)), f"{path.name}: {line.strip()}"
            assert re.match(r"\s+# v\d+(\.\d+)*\s*$", m.group(2)), f"{path.name}: {line.strip()}"
    assert pins >= 10, pins  # guards the extraction


def test_no_template_expansion_in_shell_steps():
    found = list(shell_texts())
    assert len(found) >= 5, found  # guards the extraction
    expanded = [where for where, text in found if "${{" in text]
    assert not expanded, f"pass these through env: instead: {expanded}"


def test_permissions_are_minimal_per_job():
    for path in WORKFLOWS:
        assert load(path)["permissions"] == {}, f"{path.name}: start from permissions: {{}}"
    for name, _, job_id, job in jobs():
        permissions = job.get("permissions", {})
        assert "write-all" not in str(permissions), (name, job_id)
        if permissions.get("id-token") == "write":
            assert logs_in(job), f"{name}:{job_id} has id-token: write but logs in nowhere"
        if logs_in(job):
            assert permissions.get("id-token") == "write", (name, job_id)


def test_secrets_are_read_only_inside_environments():
    for name, workflow, job_id, job in jobs():
        used = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(job))) - {"GITHUB_TOKEN"}
        if used:
            assert environments_of(workflow, job), (
                f"{name}:{job_id} reads {used} outside an environment"
            )


def test_the_pull_request_target_workflow_runs_no_pull_request_code():
    for path in WORKFLOWS:
        workflow = load(path)
        if "pull_request_target" not in triggers(workflow):
            continue
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                assert "run" not in step, path.name
                assert not step.get("uses", "").startswith(("actions/checkout", "./")), path.name
                script = step.get("with", {}).get("script", "")
                assert "head" not in script and "${{" not in script, path.name


def test_workflows_call_only_scripts_that_exist():
    for _, text in shell_texts():
        for script in re.findall(r"(?<![\w/.-])(scripts/[\w.-]+)", text):
            assert (ROOT / script).exists(), script


# --- committed stack defaults ---------------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "enterprise"])
def test_cloud_stacks_do_not_open_the_cluster_api_to_the_internet(stack):
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    endpoint = config["pganalytics:endpoint"]
    assert not {"0.0.0.0/0", "::/0"} & set(endpoint["publicCidrs"]), endpoint
    assert not endpoint.get("acknowledgePublicInternet"), endpoint


def test_the_public_endpoint_acknowledgement_is_documented():
    section = doc_section("The cluster API endpoint")
    assert "`pganalytics:endpoint.acknowledgePublicInternet: true`" in section


# --- what the docs say the clusters do is what the code does ---------------------------------


def package_text(target: str) -> str:
    """The source of a target package (components/targets/<target>/), all its modules."""
    return "\n".join(
        p.read_text() for p in sorted((ROOT / "components" / "targets" / target).glob("*.py"))
    )


def test_the_aks_access_the_docs_describe_is_the_targets():
    code = package_text("aks")
    assert '"enable_azure_rbac": True' in code and "disable_local_accounts=True" in code
    section = doc_section("Azure")
    assert "without Entra ID" not in section
    assert "Entra ID authentication" in section and "local accounts disabled" in section
    assert "Azure Kubernetes Service RBAC Reader" in section


def test_the_eks_access_entry_the_docs_describe_is_the_targets():
    code = package_text("eks")
    # With no clusterAdmins.aws, the deployer's entry ignores later changes of its principal.
    assert 'principals = [("deployer", deployer, ["principalArn"])]' in code
    section = doc_section("AWS")
    assert "follows the caller" not in section
    assert "pganalytics:clusterAdmins.aws" in section and "keeps it" in section

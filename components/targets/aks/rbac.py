"""Waiting, during `pulumi up`, until Azure role assignments take effect.

Azure RBAC is eventually consistent: a role assignment exists as soon as ARM returns, but
Azure Resource Manager and the services that check it may keep deciding without it for minutes
(Azure RBAC troubleshooting guide: changes can take up to 10 minutes, longer with caching).
`depends_on` only orders creation, so the first run can hit a subnet-join refusal or Kubernetes
403s. The program therefore polls the permission itself, with the deployer's own credentials
(the azure-native provider's token), and gives up after a bound with a message that says what
to check. No fixed sleep. At preview nothing is polled.

What can be polled from the deployer's seat:
- the deployer's own access: the effective permissions ARM evaluates for the caller at a scope
  (`Microsoft.Authorization/permissions`), until they include the data action needed;
- another principal's (the cluster identity): only whether the authorization API lists the
  assignment at the scope; ARM evaluates a principal's effective permissions only for itself.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable

import pulumi

ARM = "https://management.azure.com"
API_VERSION = "2022-04-01"
# How long a role assignment may take to be effective before the run gives up.
TIMEOUT_SECONDS = 15 * 60
# Seconds between polls: soon at first, then every minute.
INTERVALS = (5, 10, 20, 30, 60)


class RbacNotEffective(pulumi.RunError):
    """A role assignment did not take effect within the bound: the message says what to check."""


def arm_get(path: str, token: str) -> dict:
    """GET on Azure Resource Manager (`path` from the scope, query included)."""
    request = urllib.request.Request(
        f"{ARM}{path}", headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def allows_data_action(permissions: list[dict], action: str) -> bool:
    """Whether one of the caller's permissions grants `action` (Azure RBAC: a data action
    matched by dataActions and not by notDataActions of the same permission)."""
    return any(
        any(_matches(p, action) for p in perm.get("dataActions") or [])
        and not any(_matches(p, action) for p in perm.get("notDataActions") or [])
        for perm in permissions
    )


def caller_can(scope: str, action: str, token: str) -> bool:
    """The deployer's effective permissions at `scope` include data action `action`."""
    found = arm_get(
        f"{scope}/providers/Microsoft.Authorization/permissions?api-version={API_VERSION}", token
    )
    return allows_data_action(found.get("value") or [], action)


def assignment_listed(scope: str, principal_id: str, role_id: str, token: str) -> bool:
    """The authorization API lists an assignment of role `role_id` (its GUID) to
    `principal_id` at `scope`."""
    query = urllib.parse.quote(f"principalId eq '{principal_id}'")
    found = arm_get(
        f"{scope}/providers/Microsoft.Authorization/roleAssignments"
        f"?api-version={API_VERSION}&$filter={query}",
        token,
    )
    return any(
        str(a.get("properties", {}).get("roleDefinitionId", "")).lower().endswith(role_id.lower())
        for a in found.get("value") or []
    )


async def wait_until(
    check: Callable[[], bool],
    what: str,
    hint: str,
    timeout: float = TIMEOUT_SECONDS,
    sleep: Callable[[float], Awaitable] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Polls `check` (blocking, run off the event loop) until it holds; returns the number of
    polls. After `timeout` seconds raises RbacNotEffective naming `what` and `hint`."""
    loop = asyncio.get_running_loop()
    deadline = clock() + timeout
    for attempt in range(1, 10_000):
        if await loop.run_in_executor(None, check):
            return attempt
        left = deadline - clock()
        if left <= 0:
            raise RbacNotEffective(
                f"{what} did not take effect within {round(timeout / 60)} minutes; {hint}"
            )
        await sleep(min(INTERVALS[min(attempt, len(INTERVALS)) - 1], left))
    raise AssertionError("unreachable")


def once_effective(
    value: pulumi.Input,
    token: pulumi.Output[str],
    after: list[pulumi.Input],
    check: Callable[[str, list], bool],
    what: str,
    hint: str,
) -> pulumi.Output:
    """`value`, resolved during `up` only once `check(token, after values)` holds (bounded),
    and after the resources behind `after`; at preview at once (nothing is polled)."""

    def run(args: list):
        token_value, rest = args[0], args[1:]
        if pulumi.runtime.is_dry_run():
            return True

        async def wait() -> bool:
            await wait_until(lambda: check(token_value, rest), what, hint)
            return True

        return wait()

    # The token is secret; the fact that the wait is over is not: `value` keeps its own
    # secretness.
    done = pulumi.Output.unsecret(pulumi.Output.all(token, *after).apply(run))
    return pulumi.Output.all(value, done).apply(lambda a: a[0])

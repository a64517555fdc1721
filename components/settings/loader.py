"""Reads the whole `pganalytics:` configuration, validates it with the models, and turns every
problem into one line that names the key in `--path` form and gives the command that fixes
it. All problems are raised together as one ConfigError, before any resource exists."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config
from pydantic import BaseModel, ValidationError

from components.settings.base import TARGETS, VALUES_FILE
from components.settings.checks import NAMESPACE, NO_FIX, set_cmd, shown, suggest
from components.settings.models import Settings
from components.settings.secret_leaves import Secrets, secret_leaves

# Provider config the program deliberately does not read: every cloud provider is explicit.
FOREIGN_KEYS = {
    "aws:region": "region",
    "gcp:project": "gcpProject",
    "gcp:region": "region",
    "azure-native:location": "region",
    "kubernetes:context": "kubeContext",
}
# Schema problems of the chart values: (settings or None when they are invalid, values
# file, `chart.values` overrides, what must not be shown) -> problem lines.
# components/values.py provides it, so settings never imports the chart's values code.
ChartCheck = Callable[[Settings | None, str, dict, Secrets], list[str]]


class ConfigError(pulumi.RunError):
    """Raised for invalid stack configuration; RunError makes Pulumi print only the message."""

    def __init__(self, problems: list[str], stack: str):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"invalid configuration for stack '{stack}' ({len(problems)} {noun}):\n{lines}"
        )


def read_config_bag() -> tuple[dict[str, Any], set[str], set[str]]:
    """All `pganalytics:*` values, the secret ones among them, and every key of the stack.

    `pulumi.Config.get` only answers for keys we ask about; rejecting unknown keys needs the
    whole bag: the CLI passes it in PULUMI_CONFIG, the automation API and the test mocks
    through `set_all_config`."""
    bag: dict[str, Any] = dict(runtime_config.get_config_env())
    bag.update(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env()) | set(
        runtime_config._SECRET_KEYS.get()
    )
    prefix = f"{NAMESPACE}:"
    return (
        {k[len(prefix) :]: v for k, v in bag.items() if k.startswith(prefix)},
        {k[len(prefix) :] for k in secret if k.startswith(prefix)},
        set(bag),
    )


def load_settings(chart_check: ChartCheck | None = None) -> Settings:
    """Settings of the current stack, or ConfigError listing every problem."""
    config, secret_keys, all_keys = read_config_bag()
    return build_settings(pulumi.get_stack(), config, secret_keys, all_keys, chart_check)


def build_settings(
    stack: str,
    config: dict[str, Any],
    secret_keys: set[str] | None = None,
    all_keys: set[str] | None = None,
    chart_check: ChartCheck | None = None,
) -> Settings:
    secret_keys = secret_keys or set()
    problems = [
        f"{key} is ignored by this program (its providers are explicit); fix: "
        f"pulumi config rm {key} && pulumi config set {NAMESPACE}:{ours} <value>"
        for key, ours in FOREIGN_KEYS.items()
        if key in (all_keys or ())
    ]
    data = _prepare(config, problems)
    target = data.get("target") if data.get("target") in TARGETS else "existing"
    cluster = data.get("cluster")
    hidden = secret_leaves(stack, config, secret_keys)
    secrets = Secrets.of(config, hidden)
    context = {
        "stack": stack,
        "target": target,
        "region": data.get("region") if isinstance(data.get("region"), str) else "",
        "secret_keys": secret_keys,
        # Set: an overlap with the network is that key's problem (base.reserved_ranges).
        "master_cidr_set": isinstance(cluster, dict) and "masterCidr" in cluster,
        "chart_secret_paths": secrets.chart_paths,
    }
    settings, errors = _validate(data, context)
    problems += [line for e in errors for line in _lines(e, secret_keys, hidden)]
    if chart_check:
        chart = data.get("chart") if isinstance(data.get("chart"), dict) else {}
        values_file = str(chart.get("valuesFile") or f"values-{stack}.yaml")
        overrides = chart.get("values")
        if settings is not None and not problems:
            problems += chart_check(settings, values_file, overrides or {}, secrets)
        elif isinstance(overrides, dict) and VALUES_FILE.fullmatch(values_file):
            # A key the settings already refused (a cron schedule) is reported once.
            named = {p.split(" ", 1)[0] for p in problems}
            problems += [
                p
                for p in chart_check(None, values_file, overrides, secrets)
                if p.split(" ", 1)[0] not in named
            ]
    if problems:
        # Messages quote bad values; none set with --secret is ever shown.
        raise ConfigError([secrets.hide(p) for p in problems], stack)
    assert settings is not None
    return settings


def _validate(data: dict, context: dict) -> tuple[Settings | None, list[dict]]:
    """The settings, or every error. Pydantic checks the rules spanning keys only when every
    key is valid, so they run again here on the keys that are."""
    try:
        return Settings.model_validate(data, context=context), []
    except ValidationError as error:
        errors = error.errors()
    if any(e["loc"] == () for e in errors):
        return None, errors  # every key was valid: the cross-key rules have run and reported
    failed = {re.split(r"[.\[]", _walk(e["loc"])[0])[0] for e in errors}
    parts: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        if field.alias in failed:
            continue
        raw = data.get(field.alias, {} if _is_model(field.annotation) else None)
        if _is_model(field.annotation):
            parts[name] = field.annotation.model_validate(raw, context=context)
        elif raw is not None:
            parts[name] = raw
    partial = Settings.model_construct(**parts).cross_problems(failed)
    if partial:
        errors.append({"type": "config", "loc": (), "input": None, "ctx": {"problems": partial}})
    return None, errors


def _prepare(config: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The raw config as the models take it: objects and lists parsed from the JSON strings
    the CLI passes, unset (null) fields dropped, fields set without --path reported."""
    fields = {f.alias: f for f in Settings.model_fields.values()}
    data: dict[str, Any] = {}
    for key, value in config.items():
        head, _, sub = key.partition(".")
        model = getattr(fields.get(head), "annotation", None)
        if sub and _is_model(model) and sub.split(".")[0] in _aliases(model):
            # `pulumi config set pganalytics:nodePool.minSize 3` without --path makes a key
            # literally named "nodePool.minSize".
            problems.append(
                f"{NAMESPACE}:{key} was set without --path (it is a field of an object); fix: "
                f"pulumi config rm {NAMESPACE}:{key} && "
                f"pulumi config set --path {NAMESPACE}:{key} {shown(value)}"
            )
            continue
        structured = head not in fields or fields[head].annotation not in (str, bool)
        if isinstance(value, str) and structured and value.strip()[:1] in ("{", "["):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if isinstance(value, dict) and _is_model(model):
            value = {k: v for k, v in value.items() if v is not None}
        if value is not None:
            data[key] = value
    return data


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _walk(loc: tuple) -> tuple[str, Any, Any]:
    """The dotted `--path` key of a pydantic error location (aliases, `[i]` for list items),
    the model holding its last part, and that part's FieldInfo (None inside free-form maps)."""
    model: Any = Settings
    key, parent, info = "", None, None
    for part in loc:
        fields = model.model_fields if _is_model(model) else {}
        info = fields.get(part) or next((f for f in fields.values() if f.alias == part), None)
        parent = model
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            name = info.alias if info else str(part)
            key = f"{key}.{name}" if key else name
        model = info.annotation if info else None
    return key, parent, info


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    return f"{base}{rel}" if rel.startswith("[") or not base else f"{base}.{rel}"


def _rm(key: str) -> str:
    flag = " --path" if "." in key or "[" in key else ""
    return f"pulumi config rm{flag} {NAMESPACE}:{key}"


def _line(key: str, message: str, fix: str) -> str:
    return f"{NAMESPACE}:{key} {message}; fix: {fix}"


def _lines(error: dict, secret_keys: set[str], hidden: dict[str, tuple]) -> list[str]:
    """One line per problem of one pydantic error. Where the error lies on a value set with
    --secret, neither the message nor the fix shows it or anything derived from it."""
    key, parent, info = _walk(error["loc"])
    secret = _secret_at(error["loc"], hidden)
    if error["type"] == "config":
        out = []
        for p in error["ctx"]["problems"]:
            fix_key, value = p["set"]
            if value is NO_FIX and not fix_key and info and not str(key).endswith("]"):
                value = info.get_default(call_default_factory=True)  # back to the default
            if p["fix"]:
                fix = p["fix"]
            elif value is NO_FIX or value in ("", [], {}):
                fix = _rm(_join(key, fix_key))
            elif secret:  # a suggested value may be cut from the secret (a prefix, a range)
                fix = _set_secret(_join(key, fix_key))
            else:
                fix = set_cmd(_join(key, fix_key), value)
            out.append(_line(_join(key, p["key"]), p["message"], fix))
        return out
    if error["type"] == "extra_forbidden":
        return [_unknown(key, parent, error["input"], secret or key in secret_keys)]
    return [_line(key, *_builtin(error, key, info, secret))]


def _secret_at(loc: tuple, hidden: dict[str, tuple]) -> bool:
    """Whether the value at `loc` is, holds or lies inside a leaf set with --secret."""
    if not loc or loc[0] not in hidden:
        return False
    sub = tuple(loc[1:])
    return any(p[: len(sub)] == sub or sub[: len(p)] == p for p in hidden[loc[0]])


def _set_secret(key: str) -> str:
    flag = " --path" if "." in key or "[" in key else ""
    return f"pulumi config set --secret{flag} {NAMESPACE}:{key} <value>"


def _unknown(key: str, parent: Any, value: Any, secret: bool) -> str:
    """An unknown key, with the closest known one and the commands that move the value."""
    head, _, name = key.rpartition(".")
    known = _aliases(parent) if _is_model(parent) else []
    hint = suggest(name, known)
    if not hint:
        where = f"known: {', '.join(known)}" if head else "see docs/CONFIGURATION.md"
        return _line(key, f"is not a known setting ({where})", _rm(key))
    better = _join(head, hint)
    shown_key = better if head else f"{NAMESPACE}:{hint}"
    message = f"is not a known setting (did you mean {shown_key}?)"
    move = (
        f"pulumi config set --secret {NAMESPACE}:{better} <value>"
        if secret
        else set_cmd(better, value)
    )
    return _line(key, message, f"{_rm(key)} && {move}")


def _builtin(error: dict, key: str, info: Any, secret: bool = False) -> tuple[str, str]:
    """Message and fix for the errors pydantic raises itself (types, bounds, choices)."""
    kind, got, ctx = error["type"], error["input"], error.get("ctx") or {}
    default = info.get_default(call_default_factory=True) if info else None
    quoted = "[secret]" if secret else repr(got)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"])
        listed = f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else choices[0]
        near = "" if secret else suggest(str(got), choices)
        fix = near or (default if default in choices else choices[0])
        return f"must be {listed} (got {quoted})", set_cmd(key, fix)
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {word} {bound} (got {'[secret]' if secret else got})", set_cmd(key, bound)
    if kind.startswith("int_"):
        return f"must be an integer (got {quoted})", set_cmd(key, default)
    if kind == "list_type":
        item = got if isinstance(got, str) and got else ((default or ["<item>"])[0])
        first = f"'{NAMESPACE}:{key}[0]'"
        add = (
            f"pulumi config set --secret --path {first} <value>"
            if secret
            else f"pulumi config set --path {first} {shown(item)}"
        )
        return f"must be a list (got {quoted})", f"{_rm(key)} && {add}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        model = info.annotation if info and _is_model(info.annotation) else None
        first = next(iter(model.model_fields.values())) if model else None
        sample = {first.alias: first.get_default(call_default_factory=True)} if first else {}
        return f"must be an object (got {quoted})", f"{_rm(key)} && {set_cmd(key, sample)}"
    return f"is invalid ({error['msg']}; got {quoted})", _rm(key)

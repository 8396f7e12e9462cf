"""The pytest plugin: every property of every policy file, one test per policy and property.

Installed with fairalloc (the ``fairalloc`` entry point of ``pytest11``), it is loaded by every
pytest run but does nothing until it is pointed at policy files::

    pytest --fairalloc-policies policies/*.yaml --fairalloc-profile ci

For each policy file it collects a ``load`` test (the file loads and passes every static check,
FA300 included) and one test per property: ``<attribute>-invariance`` for each protected
attribute, then ``need-monotonicity``, ``equal-treatment``, ``anonymity``, ``determinism`` and
``allocation`` (skipped where they do not apply). A policy that reads a protected attribute
without a justified use fails its ``load`` test, and is still put through the properties
(compiled for audit), so that its invariance test shows a counterexample.

Options (group ``fairalloc``):

* ``--fairalloc-policies PATH...``: policy files, directories (their ``.yaml``, ``.yml``,
  ``.json`` and ``.toml`` files) or glob patterns; also the ini setting ``fairalloc_policies``
  (one per line, relative to the ini file). Policy files given as positional arguments
  (``pytest policies/care.yaml``) are checked too, if they look like policies (with ``policy``
  and ``attributes`` sections), so that other plugins' YAML files are left alone.
* ``--fairalloc-profile NAME``: ``quick``, ``ci``, ``thorough`` (:data:`PROFILES`) or the name
  of a registered hypothesis profile; also ini ``fairalloc_profile``. By default, the current
  hypothesis profile.
* ``--fairalloc-examples N``: examples per property, overriding the profile.
* ``--fairalloc-seed N``: the seed of every property's search, to reproduce a run.
* ``--fairalloc-properties NAME,...``: only these properties (names of :data:`PROPERTIES` or
  ``<attribute>-invariance``); also ini ``fairalloc_properties``.

Cases files (see :mod:`fairalloc.testing._cases`): a file named ``cases.yaml``, ``cases.yml``
or ``*.cases.yaml`` with a top-level ``cases`` list is collected as one test per case, wherever
pytest collects files (``pytest examples/elderly-ability/cases.yaml`` or a directory holding
one). A failing case reports each field whose expected and actual values differ.

How policy files become tests: pytest only offers files below the paths it collects to
``pytest_collect_file``, so a configured policy file there is collected by that hook, in its
place in the tree (``pytest policies/`` or a plain ``pytest`` from the repository root). A
configured file elsewhere (``testpaths = ["tests"]`` and the policies in ``policies/``) is
collected by ``pytest_collection_modifyitems`` (run first): a :class:`PolicyFile` collector is
created under the session and its tests go through ``Session.genitems``, so that collection
reports, ``-k``, ``--deselect`` and ``--collect-only`` treat them as any others. Both are
public, stable hooks of pytest 8 and 9; ``pytest_collect_directory`` would not help, as the
policies may lie outside every collected directory. Files named only by the ini setting are
added this way only when pytest was not given paths to run (a run narrowed to
``tests/test_x.py`` does not check policies), those named by the option always.

Loading the plugin imports neither hypothesis nor the testing kit (only the ``fairalloc`` package
it belongs to): they are imported when there are policies to check, and if hypothesis is
missing the plugin then says what to install.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr
    from hypothesis import settings as Settings

    from fairalloc.testing._properties import PlannedCheck

__all__ = [
    "POLICY_SUFFIXES",
    "CaseItem",
    "CasesFileCollector",
    "LoadItem",
    "PolicyFile",
    "PropertyItem",
    "looks_like_policy",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_report_header",
]

#: Suffixes of policy files (YAML, JSON, TOML).
POLICY_SUFFIXES = (".yaml", ".yml", ".json", ".toml")

_MISSING = (
    "checking fairalloc policies needs hypothesis; install it with pip install 'fairalloc[testing]'"
)


@dataclass
class _Setup:
    """What the plugin was asked to do in this run."""

    policies: dict[Path, str] = field(default_factory=dict)  # resolved path -> option | ini
    properties: list[str] | None = None
    profile: str | None = None
    examples: int | None = None
    seed: int | None = None
    collected: set[Path] = field(default_factory=set)
    ready: bool = False


_SETUP = pytest.StashKey[_Setup]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``fairalloc`` options and ini settings."""
    group = parser.getgroup("fairalloc", "fairalloc: property checks of policy files")
    group.addoption(
        "--fairalloc-policies",
        dest="fairalloc_policies",
        action="extend",
        nargs="+",
        metavar="PATH",
        default=None,
        help="policy files, directories or glob patterns whose properties to check"
        " (ini: fairalloc_policies)",
    )
    group.addoption(
        "--fairalloc-profile",
        dest="fairalloc_profile",
        metavar="NAME",
        default=None,
        help="hypothesis profile: quick, ci, thorough or a registered profile's name"
        " (ini: fairalloc_profile)",
    )
    group.addoption(
        "--fairalloc-examples",
        dest="fairalloc_examples",
        type=int,
        metavar="N",
        default=None,
        help="examples per property (overrides the profile)",
    )
    group.addoption(
        "--fairalloc-seed",
        dest="fairalloc_seed",
        type=int,
        metavar="N",
        default=None,
        help="seed of the properties' search, to reproduce a run",
    )
    group.addoption(
        "--fairalloc-properties",
        dest="fairalloc_properties",
        metavar="NAME,...",
        default=None,
        help="only these properties, e.g. occupation-invariance,allocation"
        " (ini: fairalloc_properties)",
    )
    parser.addini(
        "fairalloc_policies",
        "policy files, directories or glob patterns to check, one per line",
        type="linelist",
        default=[],
    )
    parser.addini("fairalloc_profile", "hypothesis profile for policy properties", default="")
    parser.addini(
        "fairalloc_properties", "comma-separated properties to check (default: all)", default=""
    )


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the configured policy files; complain early about what cannot work."""
    setup = _Setup()
    config.stash[_SETUP] = setup
    opt = config.option
    given = opt.fairalloc_policies or []
    base = config.invocation_params.dir
    for path in _expand(given, base, "--fairalloc-policies"):
        setup.policies.setdefault(path, "option")
    ini = config.getini("fairalloc_policies")
    if ini:
        ini_base = config.inipath.parent if config.inipath else config.rootpath
        for path in _expand(ini, ini_base, "fairalloc_policies (ini)"):
            setup.policies.setdefault(path, "ini")
    names = opt.fairalloc_properties or config.getini("fairalloc_properties")
    if names:
        setup.properties = [n.strip() for n in str(names).split(",") if n.strip()]
    setup.profile = opt.fairalloc_profile or config.getini("fairalloc_profile") or None
    setup.examples = opt.fairalloc_examples
    setup.seed = opt.fairalloc_seed
    if setup.examples is not None and setup.examples < 1:
        raise pytest.UsageError("--fairalloc-examples needs at least 1 example")
    positional = [Path(base, a.split("::")[0]) for a in config.args]
    if setup.policies or any(looks_like_policy(p) for p in positional):
        _prepare(setup)


_KEY = r"""^(?:["']?(?P<k1>policy|attributes)["']?\s*[:=]|\[(?P<k2>policy|attributes)[\].])"""
_KEYS = re.compile(_KEY, re.MULTILINE)
_JSON_KEYS = re.compile(r'"(policy|attributes)"\s*:')


def looks_like_policy(path: Path) -> bool:
    """Whether ``path`` is a YAML, JSON or TOML file with ``policy`` and ``attributes`` sections.

    A file given as a positional argument is checked as a policy only if it looks like one, so
    that the plugin leaves alone the YAML files other plugins collect.
    """
    if path.suffix not in POLICY_SUFFIXES or not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    if path.suffix == ".json":
        found = set(_JSON_KEYS.findall(head))
    else:
        found = {m.group("k1") or m.group("k2") for m in _KEYS.finditer(head)}
    return found == {"policy", "attributes"}


def _expand(patterns: Iterable[str], base: Path, what: str) -> Iterator[Path]:
    """The policy files ``patterns`` name: files, directories' policy files, glob matches."""
    for pattern in patterns:
        full = os.path.join(base, os.path.expanduser(pattern))
        if glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(full, recursive=True))
            found = [p for p in found if p.is_file() and p.suffix in POLICY_SUFFIXES]
            if not found:
                raise pytest.UsageError(f"{what}: no policy file matches {pattern!r}")
            yield from (p.resolve() for p in found)
        elif os.path.isdir(full):
            inside = sorted(
                p
                for p in Path(full).rglob("*")
                if p.is_file()
                and p.suffix in POLICY_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(full).parts)
            )
            if not inside:
                raise pytest.UsageError(f"{what}: no policy file in directory {pattern!r}")
            yield from (p.resolve() for p in inside)
        elif os.path.isfile(full):
            yield Path(full).resolve()
        else:
            raise pytest.UsageError(f"{what}: no such file or directory: {pattern!r}")


def _prepare(setup: _Setup) -> None:
    """Import the kit, check the property names, build the hypothesis settings (once)."""
    if setup.ready:
        return
    try:
        from hypothesis import settings as settings_cls
        from hypothesis.errors import InvalidArgument

        from fairalloc.testing._properties import PROFILES, PROPERTIES
    except ImportError as e:
        raise pytest.UsageError(_MISSING) from e
    for name in setup.properties or ():
        if name not in PROPERTIES and not name.endswith("-invariance"):
            raise pytest.UsageError(
                f"--fairalloc-properties: unknown property {name!r}; properties: "
                + ", ".join(PROPERTIES)
                + ", or <attribute>-invariance"
            )
    if setup.profile and setup.profile not in PROFILES:
        try:
            settings_cls.get_profile(setup.profile)
        except InvalidArgument:
            raise pytest.UsageError(
                f"--fairalloc-profile: no hypothesis profile {setup.profile!r}; built in: "
                + ", ".join(PROFILES)
            ) from None
    setup.ready = True


def _settings(setup: _Setup) -> Settings | None:
    """The hypothesis settings of the properties, read when they run.

    Without a profile or a number of examples, None: the checks then use the hypothesis profile
    current when they run (one a conftest loaded, say).
    """
    from hypothesis import settings as settings_cls

    from fairalloc.testing._properties import PROFILES

    base: Settings | None = None
    if setup.profile in PROFILES:
        base = PROFILES[setup.profile]
    elif setup.profile:
        base = settings_cls.get_profile(setup.profile)
    if setup.examples is not None:
        base = settings_cls(base or settings_cls(), max_examples=setup.examples)
    return base


def _setup(config: pytest.Config) -> _Setup:
    found = config.stash.get(_SETUP, None)
    if found is None:  # configured before this plugin was registered
        found = config.stash[_SETUP] = _Setup()
    return found


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which policies are checked, with which profile."""
    setup = _setup(config)
    if not setup.policies:
        return None
    n = len(setup.policies)
    profile = setup.profile or "the current hypothesis profile"
    more = f", {setup.examples} examples" if setup.examples else ""
    return f"fairalloc: {n} policy file{'s' * (n != 1)}, {profile}{more}"


def pytest_collect_file(
    file_path: Path, parent: pytest.Collector
) -> PolicyFile | CasesFileCollector | None:
    """Collect a configured policy file, one given as a positional argument, or a cases file."""
    if file_path.suffix not in POLICY_SUFFIXES:
        return None
    if _is_cases_file(file_path):
        return CasesFileCollector.from_parent(parent, path=file_path)
    setup = _setup(parent.config)
    resolved = file_path.resolve()
    if resolved not in setup.policies and not (
        parent.session.isinitpath(file_path) and looks_like_policy(file_path)
    ):
        return None
    if resolved in setup.collected:
        return None
    setup.collected.add(resolved)
    return PolicyFile.from_parent(parent, path=file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add configured policy files that lie outside the paths pytest collected."""
    setup = _setup(config)
    narrowed = config.args_source == pytest.Config.ArgsSource.ARGS
    for path, origin in setup.policies.items():
        if path in setup.collected or (origin == "ini" and narrowed):
            continue
        setup.collected.add(path)
        collector = PolicyFile.from_parent(session, path=path)
        items.extend(i for i in session.genitems(collector) if isinstance(i, pytest.Item))


def _is_cases_file(path: Path) -> bool:
    """A file named ``cases.yaml`` (``.yml``) or ``*.cases.yaml`` with a ``cases`` list."""
    name = path.name
    if not (name in ("cases.yaml", "cases.yml") or name.endswith((".cases.yaml", ".cases.yml"))):
        return False
    try:
        head = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^cases\s*:", head, re.MULTILINE) is not None


class CasesFileCollector(pytest.File):
    """A cases file: one test per named case."""

    def collect(self) -> Iterable[pytest.Item]:
        """One :class:`CaseItem` per case (a file that cannot be read fails as one test)."""
        from fairalloc.testing._cases import load_cases

        label = _label(self.path)
        try:
            cases = load_cases(self.path)
        except Exception as e:  # CasesError, unreadable file: reported as a failing test
            yield CaseItem.from_parent(self, name="load", label=label, case=None, error=e)
            return
        for case in cases.cases:
            yield CaseItem.from_parent(
                self, name=case.name, label=label, case=case, error=None, policy=cases
            )


class CaseItem(pytest.Item):
    """One named case of a cases file."""

    def __init__(
        self,
        *,
        label: str,
        case: Any,
        error: Exception | None,
        policy: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.case = case
        self.error = error
        self.cases = policy
        self.result: Any = None

    def runtest(self) -> None:
        """Evaluate the case's resident and compare with what it expects."""
        if self.error is not None:
            raise self.error
        import fairalloc as fa
        from fairalloc.testing._cases import run_case

        policy = self.config.stash.setdefault(_CASE_POLICIES, {})
        key = (self.cases.policy_path, self.cases.as_of)
        if key not in policy:
            policy[key] = fa.load_policy(self.cases.policy_path, as_of=self.cases.as_of)
        self.result = run_case(policy[key], self.case)
        if not self.result.passed:
            raise _CaseFailed(self.result.report(self.label))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """The differing fields, expected and actual, or the error that stopped the case."""
        error = excinfo.value
        if isinstance(error, _CaseFailed):
            return str(error)
        from fairalloc.errors import FairallocError

        if isinstance(error, FairallocError | OSError):
            return f"{self.label}: {type(error).__name__}: {error}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int, str]:
        """The cases file, the case's line and its name."""
        line = max((self.case.line if self.case is not None else 1) - 1, 0)
        return self.path, line, f"{self.label}: case '{self.name}'"


class _CaseFailed(AssertionError):
    """A case whose resident did not get what it expects."""


_CASE_POLICIES = pytest.StashKey[dict[Any, Any]]()


def _label(path: Path) -> str:
    """The path as people read it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class PolicyFile(pytest.File):
    """A policy file: its ``load`` test and one test per property."""

    def collect(self) -> Iterable[pytest.Item]:
        """The ``load`` test, then the property tests (when the policy loads, even for audit)."""
        from fairalloc.errors import FairnessViolation

        setup = _setup(self.config)
        _prepare(setup)
        import fairalloc as fa
        from fairalloc.testing._properties import plan_checks
        from fairalloc.testing._strategies import schema_of

        # Loaded by the path as people read it, which the messages then show.
        label = _label(self.path)
        error: Exception | None = None
        try:
            fa.load_policy(label)
        except Exception as e:  # PolicyError, unreadable file, ...: the load test reports it
            error = e
        yield LoadItem.from_parent(self, name="load", label=label, error=error)
        if error is not None and not isinstance(error, FairnessViolation):
            return
        for check in plan_checks(schema_of(label), setup.properties):
            item = PropertyItem.from_parent(self, name=check.name, label=label, check=check)
            if check.skip is not None:
                # Skipped by a mark, so that the report points at the policy, not the plugin.
                item.add_marker(pytest.mark.skip(reason=check.skip))
            yield item


class LoadItem(pytest.Item):
    """Passes when the policy file loads and passes every static check (FA300 included)."""

    def __init__(self, *, label: str, error: Exception | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.error = error

    def runtest(self) -> None:
        """Raise the error the policy file was loaded with, if any."""
        if self.error is not None:
            raise self.error

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """The located problems, as ``fairalloc validate`` prints them."""
        from fairalloc.errors import PolicyError

        error = excinfo.value
        if isinstance(error, PolicyError):
            return f"{self.label}: {error}"
        return f"{self.label}: cannot be loaded: {type(error).__name__}: {error}"

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int, str]:
        """The policy file, and what is tested."""
        # Free text: pytest rewrites a domain that ends the node id as a dotted Python name.
        return self.path, 0, f"{self.label}: load and static checks"


class PropertyItem(pytest.Item):
    """One property of one policy, searched with hypothesis."""

    def __init__(self, *, label: str, check: PlannedCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.check = check

    def runtest(self) -> None:
        """Run the check (or skip it where the property does not apply)."""
        if self.check.skip is not None:
            pytest.skip(self.check.skip)
        setup = _setup(self.config)
        self.check.run(_settings(setup), setup.seed)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        """``policy.yaml: property 'NAME': resident r1 ...`` with the minimal counterexample."""
        from fairalloc.errors import FairallocError
        from fairalloc.testing._properties import PropertyFailure

        error = excinfo.value
        if isinstance(error, PropertyFailure):
            return f"{self.label}: {error}"
        if isinstance(error, FairallocError):
            return f"{self.label}: property '{self.name}': {type(error).__name__}: {error}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int, str]:
        """The policy file, the line of what is tested, and the property."""
        line = max(self.check.line - 1, 0)  # 0-based; the first line when unknown
        return self.path, line, f"{self.label}: property '{self.name}'"

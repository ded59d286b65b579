"""Jinja's compiled code for Ansible's templates, kept on disk between runs (installed by the
kit's strategy plugin, which loads this file; it is not a plugin itself).

Each task on each host runs in a new worker process, which compiles every template it meets
(the task's arguments and conditions, the role variables they read): a converge of the lab
compiles about 6,600 templates, 560 of them different, and compiling was a fifth of the
workers' CPU. Like Python's own __pycache__, the code object of each template is written
once, under a key made of its source and every setting that changes the code Jinja generates,
and read back by later workers and later runs. The expressions of conditions (`when`, `that`),
which Jinja parses and compiles its own way, are cached the same way.

Jinja also decides at compile time how to call each filter and test (whether it is given the
context or the environment): an entry records that for the filters and tests its template
uses and is compiled again if one of them changed. The entries also name the plugins the
templates use (filters, tests, lookups). The controller reads every entry and loads those
plugins once before it forks its workers, which would each read them again (a collection's
filter loads every filter file of it), and each filter or test name is looked up once per
process (memoize_plugin_lookups).

The directory is the user's own (mode 0700, refused when anyone else can write to it), one per
Python, ansible-core and Jinja version. GOVOPS_JINJA_CODE_CACHE names another directory, or `off`
(no cache, and the lookups are not memoized either: Ansible's own behaviour, to compare).
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import tempfile
from pathlib import Path

import jinja2
from ansible._internal._templating import _jinja_bits
from ansible.plugins.loader import Jinja2Loader, filter_loader, lookup_loader, test_loader
from ansible.release import __version__ as ANSIBLE_VERSION
from jinja2 import nodes
from jinja2.environment import TemplateExpression
from jinja2.nodes import Call, Const, Filter, Name, Test
from jinja2.parser import Parser
from jinja2.utils import _PassArg

FORMAT = 2
# Past this many entries the directory is emptied at the start of a run (templates that changed
# leave their old entries behind; a converge of the lab needs about 600).
MAX_ENTRIES = 20_000


def default_directory() -> Path | None:
    setting = os.environ.get("GOVOPS_JINJA_CODE_CACHE", "")
    if setting == "off":
        return None
    base = (
        Path(setting)
        if setting
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "govops/jinja-code"
    )
    versions = f"py{sys.version_info.major}.{sys.version_info.minor}-{importlib.util.MAGIC_NUMBER.hex()}"
    return base / f"{versions}-ansible{ANSIBLE_VERSION}-jinja{jinja2.__version__}-f{FORMAT}"


def usable(directory: Path) -> bool:
    """The directory exists or was made, is this user's and nobody else can write to it."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = directory.stat()
    except OSError:
        return False
    return found.st_uid == os.geteuid() and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def plugins_used(environment, parsed) -> tuple:
    """The filters and tests the template uses, each with how Jinja calls it (decided at compile
    time), and the lookups it names."""
    used = {("filter", node.name, _pass_arg(environment.filters.get(node.name))) for node in parsed.find_all(Filter)}
    used |= {("test", node.name, _pass_arg(environment.tests.get(node.name))) for node in parsed.find_all(Test)}
    used |= {
        ("lookup", call.args[0].value, None)
        for call in parsed.find_all(Call)
        if isinstance(call.node, Name) and call.node.name in ("lookup", "query", "q")
        and call.args and isinstance(call.args[0], Const) and isinstance(call.args[0].value, str)
    }  # fmt: skip
    return tuple(sorted(used))


def _pass_arg(function) -> str | None:
    found = _PassArg.from_obj(function) if function is not None else None
    return found.name if found else None


def _settings(environment, name, filename, defer_init) -> tuple:
    """What, besides the source, changes the code Jinja generates for a template."""
    compile_context = _jinja_bits._TemplateCompileContext.current(optional=True)
    return (
        name,
        filename,
        defer_init,
        bool(compile_context and compile_context.escape_backslashes),
        _jinja_bits._TemplateConfig.allow_embedded_templates,
        *(getattr(environment, setting) for setting in _ENVIRONMENT_SETTINGS),
        repr(environment.autoescape),
        tuple(sorted(environment.extensions)),
        environment.code_generator_class.__qualname__,
        environment.finalize is not None,
    )


_ENVIRONMENT_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
)


class JinjaCodeCache:
    def __init__(self, directory: Path):
        self.directory = directory
        # The entries read by preload(), by key: in the controller, before it forks, so that every
        # worker finds them in memory instead of reading and unmarshalling a file per template.
        self.loaded: dict[str, tuple] = {}

    def prune(self) -> None:
        entries = list(self.directory.iterdir())
        if len(entries) > MAX_ENTRIES:
            for entry in entries:
                entry.unlink(missing_ok=True)

    def preload(self) -> int:
        """Read every entry into memory and load in this process the filters, tests and lookups
        the cached templates use; the number of plugins."""
        loaders = {"filter": filter_loader, "test": test_loader, "lookup": lookup_loader}
        used = set()
        for path in self.directory.glob("[0-9a-f]*"):
            try:
                entry = marshal.loads(path.read_bytes())
                entry_format, key, plugins, _ = entry
                used.update((kind, name) for kind, name, _ in plugins)
            except (OSError, EOFError, ValueError, TypeError):
                continue
            if entry_format == FORMAT:
                self.loaded[key] = entry
        for kind, name in used:
            try:
                loaders[kind].get(name)
            except Exception:  # a plugin that does not load fails where a template uses it, as before
                continue
        return len(used)

    def compile(self, original, environment, source, name=None, filename=None, raw=False, defer_init=False):
        """Jinja's Environment.compile, the code read from the cache when an entry still holds."""
        if raw or not isinstance(source, str) or getattr(environment, "_debuggable_template_source", False):
            return original(environment, source, name, filename, raw, defer_init)
        key = repr((str(source), _settings(environment, name, filename, defer_init)))
        code = self._read(key, environment)
        if code is None:
            try:  # Jinja's compile, keeping the parsed template to read the filters and tests it uses
                parsed = environment._parse(source, name, filename)
            except jinja2.TemplateSyntaxError:
                return original(environment, source, name, filename, raw, defer_init)  # raises as Jinja raises
            code = self._compile_and_write(key, environment, parsed, name, filename, defer_init)
        return code

    def compile_expression(self, original, environment, source, undefined_to_none=True):
        """Jinja's Environment.compile_expression (a task's `when`, an assert's `that`), the code of
        the expression cached as a template's is. Jinja parses the expression itself and compiles
        the tree, which Environment.compile could not key by its source."""
        if not isinstance(source, str) or getattr(environment, "_debuggable_template_source", False):
            return original(environment, source, undefined_to_none)
        key = repr(("expression", str(source), _settings(environment, None, None, False)))
        code = self._read(key, environment)
        if code is None:
            parser = Parser(environment, source, state="variable")
            try:  # as Jinja's compile_expression builds the template: `result = <expression>`
                expression = parser.parse_expression()
                if not parser.stream.eos:
                    raise jinja2.TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
            except jinja2.TemplateSyntaxError:
                return original(environment, source, undefined_to_none)  # raises as Jinja raises
            expression.set_environment(environment)
            parsed = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)], lineno=1)
            code = self._compile_and_write(key, environment, parsed, None, None, False)
        template = environment.template_class.from_code(environment, code, environment.make_globals(None), None)
        return TemplateExpression(template, undefined_to_none)

    def _path(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _read(self, key: str, environment):
        """The cached code for the key, or None: no entry, another format, or a filter or test of
        the template that is now called another way."""
        try:
            entry = self.loaded.get(key) or marshal.loads(self._path(key).read_bytes())
            entry_format, entry_key, plugins, code = entry
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if (entry_format, entry_key) != (FORMAT, key):
            return None
        for kind, plugin, pass_arg in plugins:
            if (
                kind != "lookup"
                and _pass_arg((environment.filters if kind == "filter" else environment.tests).get(plugin)) != pass_arg
            ):
                return None
        return code

    def _compile_and_write(self, key: str, environment, parsed, name, filename, defer_init: bool):
        python_source = environment._generate(parsed, name, filename, defer_init=defer_init)
        code = environment._compile(python_source, filename or "<template>")
        self._write(self._path(key), (FORMAT, key, plugins_used(environment, parsed), code))
        return code

    def _write(self, path: Path, entry: tuple) -> None:
        """Written whole under a temporary name and renamed: a reader sees no entry or all of it."""
        try:
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".new-")
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(marshal.dumps(entry))
            os.replace(temporary, path)
        except OSError:
            pass  # a full disk or a removed directory costs the next worker a compile, nothing else


def memoize_plugin_lookups() -> None:
    """Each filter or test name is looked up once per process. Ansible looks a name up again in
    every template environment (a worker makes several), and for a name outside ansible.builtin's
    own files (a collection's filter, or one of Jinja's, which it looks for among ansible.builtin's
    first) it lists and loads every filter file of that collection each time: 2,400 lookups in a
    converge of the lab. The plugin files do not change during a run, so neither does the answer.
    Installed in the controller, the lookups it makes before it forks serve every worker."""
    original = Jinja2Loader.get_with_context
    if getattr(original, "memoized", False):
        return
    found: dict = {}

    def get_with_context(loader, name, *args, **kwargs):
        if args or kwargs:
            return original(loader, name, *args, **kwargs)
        key = (loader.type, loader.package, name)
        if key not in found:
            found[key] = original(loader, name)  # an error is raised each time, as before
        return found[key]

    get_with_context.memoized = True
    Jinja2Loader.get_with_context = get_with_context


def install() -> JinjaCodeCache | None:
    """Route Ansible's template compilation through the cache, when its directory is usable."""
    installed = getattr(_jinja_bits.AnsibleEnvironment.compile, "jinja_code_cache", None)
    directory = default_directory()
    if installed or directory is None or not usable(directory):
        return installed
    memoize_plugin_lookups()
    cache = JinjaCodeCache(directory)
    cache.prune()
    cache.preload()
    original = _jinja_bits.AnsibleEnvironment.compile
    original_expression = _jinja_bits.AnsibleEnvironment.compile_expression

    def compile(environment, source, name=None, filename=None, raw=False, defer_init=False):
        return cache.compile(original, environment, source, name, filename, raw, defer_init)

    def compile_expression(environment, source, undefined_to_none=True):
        return cache.compile_expression(original_expression, environment, source, undefined_to_none)

    compile.jinja_code_cache = cache
    _jinja_bits.AnsibleEnvironment.compile = compile
    _jinja_bits.AnsibleEnvironment.compile_expression = compile_expression
    return cache

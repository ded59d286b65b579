"""The on-disk cache of Jinja's compiled code that the kit's strategy installs: Ansible's own
templating renders the same results through it, a template is compiled once, and anything that
changes the generated code (a setting, a filter's calling convention) compiles it again."""

from __future__ import annotations

import importlib.util
import marshal
from pathlib import Path

import jinja2
import pytest
from ansible._internal._templating import _jinja_bits
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import Jinja2Loader, filter_loader, test_loader
from ansible.template import Templar, trust_as_template
from jinja2 import TemplateSyntaxError, pass_environment

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "jinja_code_cache", ROOT / "playbooks/strategy_plugins/jinja_code_cache.py"
)
jinja_code_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jinja_code_cache)

ORIGINAL_COMPILE = _jinja_bits.AnsibleEnvironment.compile
ORIGINAL_COMPILE_EXPRESSION = _jinja_bits.AnsibleEnvironment.compile_expression


@pytest.fixture
def restored(monkeypatch):
    """What install() replaces, put back after the test."""
    monkeypatch.setattr(_jinja_bits.AnsibleEnvironment, "compile", ORIGINAL_COMPILE)
    monkeypatch.setattr(_jinja_bits.AnsibleEnvironment, "compile_expression", ORIGINAL_COMPILE_EXPRESSION)
    monkeypatch.setattr(Jinja2Loader, "get_with_context", Jinja2Loader.get_with_context)


class Counted:
    """The environment's parse, counted: a read from the cache parses nothing."""

    def __init__(self, monkeypatch, environment):
        self.calls = 0
        parse = environment._parse

        def counted(*args, **kwargs):
            self.calls += 1
            return parse(*args, **kwargs)

        monkeypatch.setattr(environment, "_parse", counted)


@pytest.fixture
def cache(tmp_path):
    directory = tmp_path / "cache"
    assert jinja_code_cache.usable(directory)
    return jinja_code_cache.JinjaCodeCache(directory)


def compile_with(cache, environment, source):
    return cache.compile(ORIGINAL_COMPILE, environment, source)


def test_templates_render_the_same_through_the_installed_cache_and_are_compiled_once(tmp_path, monkeypatch, restored):
    monkeypatch.setenv("GOVOPS_JINJA_CODE_CACHE", str(tmp_path))
    installed = jinja_code_cache.install()
    assert installed is not None and jinja_code_cache.install() is installed

    def render(template: str):
        templar = Templar(loader=DataLoader(), variables={"names": ["db1", "db2"], "port": 5432})
        return templar.template(trust_as_template(template))

    templates = {
        "{{ names | map('upper') | join(',') }}:{{ port + 1 }}": "DB1,DB2:5433",
        "{% for n in names %}{{ n }}{% if not loop.last %} {% endif %}{% endfor %}": "db1 db2",
        "{{ names is contains('db2') }}": True,
    }
    for template, expected in templates.items():
        assert render(template) == expected
    written = sorted(installed.directory.iterdir())
    assert len(written) >= len(templates)
    for template, expected in templates.items():
        assert render(template) == expected
    assert sorted(installed.directory.iterdir()) == written


def test_a_second_compile_reads_the_code_and_parses_nothing(cache, monkeypatch):
    environment = _jinja_bits.AnsibleEnvironment()
    parses = Counted(monkeypatch, environment)
    first = compile_with(cache, environment, "{{ port | int + 1 }}")
    second = compile_with(cache, environment, "{{ port | int + 1 }}")
    assert (parses.calls, first == second, len(list(cache.directory.iterdir()))) == (1, True, 1)


def test_a_setting_that_changes_the_code_has_its_own_entry(cache):
    environment = _jinja_bits.AnsibleEnvironment()
    source = "{% if x %}\n  yes\n{% endif %}\n"
    compile_with(cache, environment, source)
    compile_with(cache, environment.overlay(trim_blocks=False), source)
    with _jinja_bits._TemplateCompileContext(escape_backslashes=True):
        compile_with(cache, environment, source)
    assert len(list(cache.directory.iterdir())) == 3


def test_a_filter_called_another_way_since_is_compiled_again(cache, monkeypatch):
    environment = _jinja_bits.AnsibleEnvironment()
    environment.filters["kit_twice"] = lambda value: value * 2
    plain = compile_with(cache, environment, "{{ 'a' | kit_twice }}")

    @pass_environment
    def twice_with_environment(env, value):
        return value * 2

    environment.filters["kit_twice"] = twice_with_environment
    parses = Counted(monkeypatch, environment)
    given_the_environment = compile_with(cache, environment, "{{ 'a' | kit_twice }}")
    again = compile_with(cache, environment, "{{ 'a' | kit_twice }}")
    assert (parses.calls, given_the_environment != plain, again == given_the_environment) == (1, True, True)


def test_a_damaged_entry_is_compiled_again_and_replaced(cache, monkeypatch):
    environment = _jinja_bits.AnsibleEnvironment()
    compile_with(cache, environment, "{{ 1 + 1 }}")
    (entry,) = cache.directory.iterdir()
    entry.write_bytes(b"\x00not marshal")
    parses = Counted(monkeypatch, environment)
    compile_with(cache, environment, "{{ 1 + 1 }}")
    assert parses.calls == 1 and entry.read_bytes() != b"\x00not marshal"


def test_a_syntax_error_is_raised_as_jinja_raises_it_and_nothing_is_written(cache):
    with pytest.raises(TemplateSyntaxError):
        compile_with(cache, _jinja_bits.AnsibleEnvironment(), "{{ names | }}")
    assert list(cache.directory.iterdir()) == []


def test_a_directory_others_can_write_to_is_not_used(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert not jinja_code_cache.usable(shared)
    assert jinja_code_cache.usable(tmp_path / "own")


def test_off_turns_the_cache_off_and_a_full_directory_is_emptied(cache, monkeypatch):
    monkeypatch.setenv("GOVOPS_JINJA_CODE_CACHE", "off")
    assert jinja_code_cache.default_directory() is None
    environment = _jinja_bits.AnsibleEnvironment()
    for number in range(4):
        compile_with(cache, environment, f"{{{{ {number} }}}}")
    monkeypatch.setattr(jinja_code_cache, "MAX_ENTRIES", 3)
    cache.prune()
    assert list(cache.directory.iterdir()) == []


def test_the_plugins_a_template_uses_are_recorded_and_loaded_before_the_workers_fork(cache):
    environment = _jinja_bits.AnsibleEnvironment()
    compile_with(cache, environment, "{{ lookup('ansible.builtin.env', 'HOME') | ansible.builtin.b64encode }}")
    compile_with(cache, environment, "{{ query('ansible.builtin.env', 'HOME') is ansible.builtin.truthy }}")
    entries = [marshal.loads(entry.read_bytes()) for entry in cache.directory.iterdir()]
    used = sorted({(kind, name) for entry in entries for kind, name, _ in entry[2]})
    assert used == [
        ("filter", "ansible.builtin.b64encode"),
        ("lookup", "ansible.builtin.env"),
        ("test", "ansible.builtin.truthy"),
    ]
    assert cache.preload() == 3
    assert sorted(cache.loaded) == sorted(entry[1] for entry in entries)


def test_a_preloaded_entry_is_read_from_memory_and_still_checked(cache, monkeypatch):
    environment = _jinja_bits.AnsibleEnvironment()
    environment.filters["kit_twice"] = lambda value: value * 2
    code = compile_with(cache, environment, "{{ 'a' | kit_twice }}")
    (entry,) = cache.directory.iterdir()
    entry.write_bytes(b"\x00not marshal")
    cache.preload()
    assert cache.loaded == {}  # a damaged entry is not loaded
    compile_with(cache, environment, "{{ 'a' | kit_twice }}")  # and is written again
    cache.preload()
    parses = Counted(monkeypatch, environment)
    entry.unlink()  # read by the controller before it forked: the workers need no file
    assert compile_with(cache, environment, "{{ 'a' | kit_twice }}") == code and parses.calls == 0

    @pass_environment
    def twice_with_environment(env, value):
        return value * 2

    environment.filters["kit_twice"] = twice_with_environment
    assert compile_with(cache, environment, "{{ 'a' | kit_twice }}") != code and parses.calls == 1


class CountedParses:
    """Jinja's expression parser, counted: an expression read from the cache parses nothing."""

    def __init__(self, monkeypatch):
        self.calls = 0
        parse = jinja_code_cache.Parser.parse_expression

        def counted(parser, *args, **kwargs):
            self.calls += 1
            return parse(parser, *args, **kwargs)

        monkeypatch.setattr(jinja_code_cache.Parser, "parse_expression", counted)


def test_conditions_are_evaluated_the_same_through_the_cache_and_parsed_once(tmp_path, monkeypatch, restored):
    monkeypatch.setenv("GOVOPS_JINJA_CODE_CACHE", str(tmp_path))
    installed = jinja_code_cache.install()
    parses = CountedParses(monkeypatch)
    variables = {"port": 5432, "names": ["db1", "db2"]}

    def evaluate(condition: str):
        templar = Templar(loader=DataLoader(), variables=variables)
        return templar.evaluate_conditional(trust_as_template(condition))

    conditions = {"port > 5000 and 'db2' in names": True, "names | length == 3": False, "missing is defined": False}
    assert {condition: evaluate(condition) for condition in conditions} == conditions
    written = sorted(installed.directory.iterdir())
    assert parses.calls == len(conditions) and len(written) >= len(conditions)
    variables["port"] = 80  # the cached code reads the variables of each evaluation
    assert [evaluate(condition) for condition in conditions] == [False, False, False]
    assert parses.calls == len(conditions) and sorted(installed.directory.iterdir()) == written


def test_an_expression_with_a_syntax_error_is_raised_as_jinja_raises_it(cache):
    environment = _jinja_bits.AnsibleEnvironment()
    for broken in ("port >", "port port"):
        with pytest.raises(TemplateSyntaxError):
            cache.compile_expression(ORIGINAL_COMPILE_EXPRESSION, environment, broken)
    assert list(cache.directory.iterdir()) == []


def test_an_undefined_result_is_none_or_undefined_as_the_caller_asks(cache):
    environment = jinja2.Environment()  # Jinja's own: its expressions run without Ansible's context
    compile_expression = jinja2.Environment.compile_expression
    assert cache.compile_expression(compile_expression, environment, "missing")() is None
    assert isinstance(cache.compile_expression(compile_expression, environment, "missing", False)(), jinja2.Undefined)
    assert cache.compile_expression(compile_expression, environment, "a + 1")(a=1) == 2
    assert len(list(cache.directory.iterdir())) == 2


def test_a_filter_name_is_looked_up_once_and_a_failed_lookup_fails_each_time(monkeypatch, restored):
    calls = []

    def counted(loader, name, *args, **kwargs):  # stands in for Ansible's lookup, which lists the files
        calls.append((loader.type, name))
        if name == "kit.broken.filter":
            raise KeyError(name)
        return object()

    monkeypatch.setattr(Jinja2Loader, "get_with_context", counted)
    jinja_code_cache.memoize_plugin_lookups()
    jinja_code_cache.memoize_plugin_lookups()  # a second call wraps nothing again
    first = filter_loader.get_with_context("ansible.utils.ipaddr")
    assert filter_loader.get_with_context("ansible.utils.ipaddr") is first
    assert test_loader.get_with_context("ansible.utils.ipaddr") is not first  # tests are another loader
    for _ in range(2):
        with pytest.raises(KeyError):
            filter_loader.get_with_context("kit.broken.filter")
    assert calls == [
        ("filter", "ansible.utils.ipaddr"),
        ("test", "ansible.utils.ipaddr"),
        ("filter", "kit.broken.filter"),
        ("filter", "kit.broken.filter"),
    ]

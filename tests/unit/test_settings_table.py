"""The settings table (config.TABLE) against what operators and readers see: the variable
names their scripts set, one TOML key and one variable per setting, the example file in
deploy/, and docs/settings.rst, which is generated from the table."""
import collections
import pathlib
import re
import subprocess
import sys
import tomllib

import docutils.core
import docutils.nodes
import pytest

from guacbridge import config

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "guacbridge.example.toml"
BY_TOML = {row.toml: row for row in config.TABLE}

# The variables operators' scripts set. A change here is a change of the contract.
CONTRACT = {
    "GUACBRIDGE_LISTEN", "GUACBRIDGE_PUBLIC_URL", "GUACBRIDGE_GUACD", "GUACBRIDGE_API_KEYS",
    "GUACBRIDGE_DATA_DIR", "GUACBRIDGE_MYSQL_URL", "GUACBRIDGE_GUACAMOLE_DB_URL",
    "GUACBRIDGE_AMQP_URL", "GUACBRIDGE_GUACAMOLE_URL", "GUACBRIDGE_LOG_LEVEL",
    "GUACBRIDGE_LOG_FORMAT", "GUACBRIDGE_TLS_CERT", "GUACBRIDGE_TLS_KEY",
    "GUACBRIDGE_TRUSTED_PROXIES", "GUACBRIDGE_DRAIN_SECONDS", "GUACBRIDGE_REUSE_PORT",
    "GUACBRIDGE_SECRET_KEYS", "GUACBRIDGE_SECRET_KEY_FILE", "GUACBRIDGE_INSTANCE",
    "GUACBRIDGE_ALLOWED_ORIGINS", "GUACBRIDGE_RECORDINGS_DIR", "GUACBRIDGE_POLICY_ALLOW",
    "GUACBRIDGE_EVENT_LOOP",
}


def test_the_environment_variables_are_the_contract():
    assert set(config.ENV) == CONTRACT


def test_a_variable_is_guacbridge_and_the_settings_name():
    wrong = [(row.name, row.env) for row in config.TABLE
             if row.env not in (None, f"GUACBRIDGE_{row.name.upper()}")]
    assert wrong == []


@pytest.mark.parametrize("column", ["name", "toml", "env"])
def test_no_two_settings_share_a_name_toml_key_or_variable(column):
    counts = collections.Counter(getattr(row, column) for row in config.TABLE)
    assert [value for value, n in counts.items() if value and n > 1] == []


def test_a_toml_key_names_its_setting():
    """Errors name the attribute (limits_create_per_key); the file says [limits]
    create_per_key. One must lead to the other."""
    for row in config.TABLE:
        if row.table in (None, "guacbridge", "consoles"):
            assert row.key == row.name, row.toml
        else:
            assert row.name == f"{row.table}_{row.key}", row.toml


def test_each_default_as_the_docs_write_it_reads_back_as_the_default():
    defaults = config.Settings()
    for row in config.TABLE:
        written = tomllib.loads(f"x = {config.toml_value(row.default)}")["x"]
        assert row.parse(written) == getattr(defaults, row.name), row.toml


def test_each_settings_toml_key_is_read_into_its_field(tmp_path):
    for row in config.TABLE:
        f = tmp_path / "one.toml"
        head = f"[{row.table}]\n" if row.table else ""
        f.write_text(f"{head}{row.key} = {config.toml_value(row.default)}\n")
        assert config._read_toml(f) == {row.name: row.default}, row.toml


# The example file: "#= key = value" lines show each setting with its default. Table-valued
# settings of their own (agents) are shown by commented example tables instead.

def _switched_on() -> str:
    return EXAMPLE.read_text().replace("\n#= ", "\n")


def example_values() -> dict[str, object]:
    """The example with its "#= " lines switched on: dotted TOML key -> value."""
    shown: dict[str, object] = {}
    for name, table in tomllib.loads(_switched_on()).items():
        if isinstance(table, dict) and name not in BY_TOML:
            shown.update({f"{name}.{key}": value for key, value in table.items()})
        else:
            shown[name] = table
    return shown


def example_tables() -> set[str]:
    """Whole-table settings the example shows by a (commented) table header."""
    text = EXAMPLE.read_text()
    return {row.toml for row in config.TABLE if row.table is None
            and re.search(rf"^#? ?\[{re.escape(row.toml)}[.\]]", text, re.MULTILINE)}


def test_the_example_shows_every_setting_and_nothing_else():
    shown = set(example_values()) | example_tables()
    assert sorted(shown - set(BY_TOML)) == [], "the example shows keys that are no setting"
    assert sorted(set(BY_TOML) - shown) == [], "settings missing from the example"


def test_the_example_shows_each_default_and_loads_as_the_defaults(tmp_path):
    defaults = config.Settings()
    for key, value in example_values().items():
        row = BY_TOML.get(key)
        if row is None:
            continue                      # not a setting: the test above says so
        try:
            parsed = row.parse(value)
        except (TypeError, ValueError) as e:
            pytest.fail(f"the example's {key} = {value!r} does not parse: {e}")
        assert parsed == getattr(defaults, row.name), \
            f"the example shows {key} = {value!r}; the default is {row.default!r}"
    switched_on = tmp_path / "all-defaults.toml"
    switched_on.write_text(_switched_on())
    assert config.load(env={}, path=switched_on) == defaults
    assert config.load(env={}, path=EXAMPLE) == defaults


def test_the_example_names_each_settings_variable():
    table, named = None, {}
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"(?:#= )?\[([\w.]+)\]", line)
        if header:
            table = header.group(1)
        elif line.startswith("#= "):
            key = line[3:].split("=")[0].strip()
            named[f"{table}.{key}"] = set(re.findall(r"GUACBRIDGE_[A-Z_]+", line))
    wanted = {row.toml: {row.env} - {None} for row in config.TABLE}
    wrong = {key: sorted(found) for key, found in named.items()
             if key in wanted and found != wanted[key]}
    assert wrong == {}


# docs/settings.rst

def test_docs_settings_rst_is_what_the_table_renders():
    rst = ROOT / "docs" / "settings.rst"
    assert rst.read_text() == config.render_rst(), \
        "run: python -m guacbridge.config --rst > docs/settings.rst"


def test_the_rendered_table_is_clean_rest_with_a_row_per_setting():
    doctree = docutils.core.publish_doctree(
        config.render_rst(), settings_overrides={"halt_level": 2, "report_level": 2})
    rows = [row.astext() for row in doctree.findall(docutils.nodes.row)]
    assert len(rows) == len(config.TABLE) + 1                   # and the header
    for row, line in zip(config.TABLE, rows[1:], strict=True):
        assert row.name in line and row.toml in line and row.doc in line


def test_the_docs_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "guacbridge.config", "--rst"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == config.render_rst()

"""Malformed and hostile body templates: refused with a message naming the leaf, never a hang.

A template either fails to compile with :class:`TemplateError` (``<leaf path>: reason``)
or renders every row into a body and per-leaf problems; ``render`` raises nothing but
:class:`RowTemplateError`. Each hostile case has its own timeout, so a runaway loop
fails the test instead of hanging the run.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billbee_provider.customers.template import (
    MAX_DEPTH,
    MAX_STEPS,
    BodyTemplate,
    RowTemplateError,
    TemplateError,
    template_from_json,
)

from .strategies import (
    HOSTILE_LEAVES,
    PROPERTY_TIMEOUT,
    TRIPLE_LOOP,
    json_values,
    template_rows,
    templates,
    texts,
)

#: A row whose values must never appear in a message: they are personal data.
ROW = {"name": "Jürgen Weiß", "email": "juergen@example.de", "n": 1, "list": ["a", "b"]}
#: Rendering one row of a leaf must take less than this (the steps limit is ~0.5 s).
RENDER_SECONDS = 5.0


def leaf_paths(template: Any, path: tuple[str | int, ...] = ()) -> set[str]:
    """Every dotted path of ``template`` that a problem may be reported under."""
    paths = {".".join(str(part) for part in path) or "<template>"}
    if isinstance(template, dict | list):
        children = template.items() if isinstance(template, dict) else enumerate(template)
        for key, child in children:
            paths |= leaf_paths(child, (*path, key))
    return paths


def names_a_leaf(message: str, template: Any) -> bool:
    """Whether ``message`` starts with ``<leaf path>: `` of one of the template's leaves."""
    return any(message.startswith(f"{path}: ") for path in leaf_paths(template))


def refusal(leaf: str) -> str:
    """Compile ``{"Name": leaf}`` and render :data:`ROW`; return the refusal's message."""
    try:
        template = BodyTemplate({"Name": leaf})
    except TemplateError as error:
        return str(error)
    started = time.perf_counter()
    with pytest.raises(RowTemplateError) as raised:
        template.render(ROW)
    assert time.perf_counter() - started < RENDER_SECONDS
    return str(raised.value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("leaf", HOSTILE_LEAVES, ids=lambda leaf: leaf[:50])
def test_hostile_leaf_is_refused_with_a_message_naming_it(leaf: str) -> None:
    message = refusal(leaf)
    assert message.startswith("Name: "), message
    assert len(message) < 500
    for value in ("Jürgen", "Weiß", "juergen@"):
        assert value not in message


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        ("{{ self }}", "unknown name 'self'"),
        ("{{ lipsum }}", "unknown name 'lipsum'"),
        ("x {{ name }}", "unknown name 'name'; write row.<column>"),
        ("{{ cycler.__init__ }}", "access to '__init__' is not allowed"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range() of more than 10000 items"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "maximum recursion depth exceeded"),
        (TRIPLE_LOOP, f"more than {MAX_STEPS} loop iterations and calls"),
        ("{{ (" * 300 + "1" + ")" * 300 + " }}", "nested too deeply"),
    ],
)
def test_refusals_say_what_is_wrong(leaf: str, reason: str) -> None:
    assert reason in refusal(leaf)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "leaf",
    [
        "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}ok",
        "{% for i in range(10000) %}{% endfor %}ok",
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(100) }}ok",
        "{% for x in row.list %}{{ loop.index }}{{ x }}{% endfor %}ok",
    ],
)
def test_the_limits_leave_ordinary_templates_alone(leaf: str) -> None:
    body, problems = BodyTemplate({"Name": leaf}).render_row(ROW)
    assert problems == []
    assert body["Name"].endswith("ok")


@pytest.mark.timeout(PROPERTY_TIMEOUT)
@given(template=templates(), rows=st.lists(template_rows(), max_size=3))
def test_any_template_compiles_or_is_refused_and_renders_every_row(
    template: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    try:
        compiled = BodyTemplate(template)
    except TemplateError as error:
        assert names_a_leaf(str(error), template), str(error)
        return
    for row in rows:
        started = time.perf_counter()
        body, problems = compiled.render_row(row)
        assert time.perf_counter() - started < RENDER_SECONDS
        assert isinstance(body, dict)
        json.dumps(body)  # JSON types only (NaN included: prepare refuses it later)
        assert all(names_a_leaf(problem, template) for problem in problems), problems
        try:  # the same again (an object's address in a text may differ: compare keys)
            assert compiled.render(row).keys() == body.keys()
        except RowTemplateError as error:
            assert error.problems == problems


@pytest.mark.timeout(PROPERTY_TIMEOUT)
@given(source=st.one_of(texts(max_size=40), json_values().map(json.dumps), templates().map(json.dumps)))
def test_template_from_any_text_compiles_or_is_refused(source: str) -> None:
    try:
        template_from_json(source)
    except TemplateError as error:
        try:
            decoded = json.loads(source)
        except ValueError:
            decoded = None
        assert names_a_leaf(str(error), decoded), str(error)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_deeply_nested_templates_are_refused(depth: int) -> None:
    nested: Any = "{{ row.name }}"
    for _ in range(depth):
        nested = {"Address": nested}
    with pytest.raises(
        TemplateError, match=rf"^Address(\.Address)*: nested more than {MAX_DEPTH} levels deep"
    ):
        BodyTemplate(nested)
    text = '{"Name": ' * depth + '"x"' + "}" * depth
    with pytest.raises(TemplateError, match=rf"nested more than {MAX_DEPTH} levels deep"):
        template_from_json(text)


def test_a_number_too_long_for_python_is_refused() -> None:
    with pytest.raises(TemplateError, match="a number has too many digits"):
        template_from_json('{"Type": ' + "1" * 5000 + "}")

"""Hostile leaves that try to build huge texts: refused per row, fast and small.

Each leaf once took seconds to minutes and hundreds of megabytes to gigabytes per row
(``'%1000000000s' % 'x'``: over 20 s and about 1 GB). Now each is a row problem naming
the leaf, found before anything large is allocated: the test asserts under 1 s (the
aim is 100 ms; the real figure is printed) and a tracemalloc peak under 50 MB.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from billbee_provider.customers.template import BodyTemplate, TemplateError

from .test_fuzz_template import ROW, refusal

LIMIT = 10_000
BIG = "{% set s = 'x' * 10000 %}"
#: (leaf, the reason it is refused with)
SIZE_HOSTILE_LEAVES: tuple[tuple[str, str], ...] = (
    ("{{ '%1000000000s' % 'x' }}", "a format width or precision of more than 10000"),
    ("{{ '%.1000000000f' % 1.0 }}", "a format width or precision of more than 10000"),
    ("{{ '%*s' % (1000000000, 'x') }}", "a format width or precision of more than 10000"),
    ("{{ '%(a)1000000000s' % {'a': 1} }}", "a format width or precision of more than 10000"),
    ("{{ '%1000000000s'.encode() % 'x'.encode() }}", "a format width or precision of more than 10000"),
    ("{{ '%1000000000d' | format(1) }}", "a format width or precision of more than 10000"),
    ("{{ '%s' * 5000 % (('x' * 10000,) * 5000) }}", "formatting to more than 10000 characters"),
    ("{{ '{:1000000000}'.format('x') }}", "a format width or precision of more than 10000"),
    ("{{ '{:.1000000000f}'.format(1.0) }}", "a format width or precision of more than 10000"),
    ("{{ '{:{w}}'.format('x', w=1000000000) }}", "a format width or precision of more than 10000"),
    ("{{ '{a:>1000000000}'.format_map({'a': 1}) }}", "a format width or precision of more than 10000"),
    ("{{ ('{0}' * 3000).format('x' * 10000) }}", "formatting to more than 10000 characters"),
    ("{{ ('x' | safe).center(10**10) }}", "padding to more than 10000 characters"),
    ("{{ 'x'.center(10**10) }}", "padding to more than 10000 characters"),
    ("{{ 'x'.ljust(500000000) }}", "padding to more than 10000 characters"),
    ("{{ 'x'.rjust(500000000) }}", "padding to more than 10000 characters"),
    ("{{ 'x'.zfill(500000000) }}", "padding to more than 10000 characters"),
    ("{{ 'x'.encode().center(500000000) }}", "padding to more than 10000 characters"),
    ("{{ ('\\t' * 10000).expandtabs(100000) }}", "expanding tabs to more than 10000 characters"),
    ("{{ 'x' | center(500000000) }}", "padding to more than 10000 characters"),
    ("{{ ('x\\n' * 5000) | indent(100000) }}", "indenting to more than 10000 characters"),
    ("{{ ('x ' * 5000) | wordwrap(1, wrapstring='y' * 10000) }}", "wrapping to more than 10000 characters"),
    (BIG + "{% set s = s~s~s~s~s~s~s~s %}{% set s = s~s~s~s~s~s~s~s %}{{ s | length }}", "concatenating (~)"),
    (BIG + "{% set s = s+s+s+s+s+s+s+s %}{% set s = s+s+s+s+s+s+s+s %}{{ s | length }}", "concatenating (+)"),
    ("{% set s = [1] * 10000 %}{% set s = s+s+s+s %}{{ s | length }}", "concatenating (+)"),
    ("{{ (['x' * 10000] * 10000) | join }}", "joining to more than 10000 characters"),
    ("{{ ''.join(['x' * 10000] * 10000) | length }}", "joining to more than 10000 characters"),
    ("{{ (['x' * 10000] * 10000) | string | length }}", "writing a list or object as text"),
    ("{% set s = ['x' * 10000] * 10000 %}{{ s }}", "writing a list or object as text"),
    ("{{ ['x' * 10000] * 10000 }}", "renders more than 10000 characters"),
    ("{{ (['x' * 10000] * 10000 ~ '') | length }}", "concatenating (~)"),
    ("{{ ('x' * 10000) | replace('x', 'y' * 10000) | length }}", "replacing to more than 10000 characters"),
    ("{{ ('x' * 10000).replace('', 'y' * 10000) | length }}", "replacing to more than 10000 characters"),
    ("{{ [1] | batch(10**9, 'x') | list | length }}", "batch or slice into more than 10000 items"),
    ("{{ [1] | slice(10**8) | list | length }}", "batch or slice into more than 10000 items"),
    ("{{ ([[1] * 10000] * 10000) | sum(start=[]) | length }}", "adding up (sum) to more than 10000"),
    ("{{ {'a': 1} | tojson(indent=10**9) }}", "writing JSON to more than 10000 characters"),
    ("{{ 'x'.encode() * 10**9 }}", "repeating to more than 10000 items"),
    ("{{ (1).to_bytes(10**9, 'big') | length }}", "int.to_bytes of more than 10000 bytes"),
    (
        "{% set ns = namespace(x=2**2000) %}{% for i in range(20) %}{% set ns.x = ns.x * ns.x %}"
        "{% endfor %}{{ ns.x > 1 }}",
        "a product of more than 4096 bits",
    ),
    ("{{ ('x' * 10000).translate({120: 'y' * 10000}) | length }}", "str.translate is not allowed"),
    (
        "{% set ns = namespace(s='&' * 10000) %}{% for i in range(3000) %}"
        "{% set ns.s = ns.s | forceescape %}{% endfor %}{{ ns.s | length }}",
        "escaping to more than 10000 characters",
    ),
    (
        "{% set s %}{% for i in range(10000) %}{{ 'x' * 10000 }}{% endfor %}{% endset %}{{ s | length }}",
        "characters for one row is not allowed",
    ),
    (
        "{% macro m() %}{% for i in range(200) %}{{ 'x' * 100 }}{% endfor %}{% endmacro %}{{ m() | length }}",
        "writing a block or macro to more than 10000 characters",
    ),
    ("{% filter upper %}" + "{{ 'x' * 6000 }}" * 2 + "{% endfilter %}", "writing a block or macro"),
)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("leaf", "reason"), SIZE_HOSTILE_LEAVES, ids=[leaf[:60] for leaf, _ in SIZE_HOSTILE_LEAVES]
)
def test_size_hostile_leaf_is_a_row_problem_within_100_ms_and_50_mb(leaf: str, reason: str) -> None:
    template = BodyTemplate({"Name": leaf})
    tracemalloc.start()
    try:
        started = time.perf_counter()
        body, problems = template.render_row(ROW)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{leaf[:60]!r}: {elapsed * 1000:.2f} ms, tracemalloc peak {peak / 1e6:.2f} MB")
    assert body == {}
    [problem] = problems
    assert problem.startswith("Name: ") and reason in problem, problem
    assert elapsed < 1.0
    assert peak < 50_000_000
    # The same leaf also fails the hostile-leaf rule of test_fuzz_template.
    message = refusal(leaf)
    assert message.startswith("Name: ") and len(message) < 500
    assert "Jürgen" not in message


@pytest.mark.parametrize(
    ("leaf", "value"),
    [
        ("{{ '%-20s|' % row.name }}", "Jürgen Weiß         |"),
        ("{{ '%.2f' % 3.14159 }}", "3.14"),
        ("{{ '%05d' % row.n }}", "00001"),
        ("{{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }}", "1-2"),
        ("{{ '%s%%' % 5 }}", "5%"),
        ("{{ '{:>8}'.format(row.n) }}", "       1"),
        ("{{ '{0:.3f} {1}'.format(1.5, 'x') }}", "1.500 x"),
        ("{{ '%d items' | format(3) }}", "3 items"),
        ("{{ row.name.center(15, '*') }}", "**Jürgen Weiß**"),
        ("{{ 'DE' ~ row.n ~ 'X' }}", "DE1X"),
        ("{{ row.name[:3] + '.' }}", "Jür."),
        ("{{ row.list | join(', ') }}", "a, b"),
        ("{{ ', '.join(row.list) }}", "a, b"),
        ("{{ row.name | replace('ü', 'ue') }}", "Juergen Weiß"),
        ("{{ 'a b c' | wordwrap(3) | length }}", 5),
        ("{{ 'a\nb' | indent(2) }}", "a\n  b"),
        ("{{ row.list | tojson }}", '["a", "b"]'),
        ("{{ 'x' | truncate(10**10) }}", "x"),
        ("{% set s %}{{ row.name }}!{% endset %}{{ s }}", "Jürgen Weiß!"),
        ("{{ (10**20 * 10**20) > 0 }}", True),
        ("{{ [1, 2] + [3] }}", [1, 2, 3]),
        ("{{ ([1, 2], [3]) | sum(start=[]) }}", [1, 2, 3]),
        ("{{ [1, 2, 3] | batch(2) | list }}", [[1, 2], [3]]),
    ],
)
def test_the_size_limits_leave_ordinary_templates_alone(leaf: str, value: object) -> None:
    body, problems = BodyTemplate({"Name": leaf}).render_row(ROW)
    assert problems == []
    assert body == {"Name": value}


def test_limits_follow_max_output_chars() -> None:
    template = BodyTemplate(
        {"Name": "{{ row.name.ljust(50) }}", "Tel1": "{{ '%60s' % 'x' }}"}, max_output_chars=40
    )
    _, problems = template.render_row(ROW)
    assert problems == [
        "Name: padding to more than 40 characters is not allowed",
        "Tel1: a format width or precision of more than 40 is not allowed",
    ]


def test_a_constant_list_over_the_limit_is_refused() -> None:
    leaf = "x{{ [1, 2, 3, 4, 5, 6] }}"
    try:  # refused when compiling if Jinja folds the constant, else when rendering
        _, problems = BodyTemplate({"Name": leaf}, max_output_chars=10).render_row(ROW)
        [message] = problems
    except TemplateError as error:
        message = str(error)
    assert message == "Name: writing a list or object as text to more than 10 characters is not allowed"


def test_urlize_is_not_available() -> None:
    with pytest.raises(TemplateError, match=r"^Name: No filter named 'urlize'"):
        BodyTemplate({"Name": "{{ row.web | urlize }}"})


def test_decimal_of_too_many_digits_is_a_row_problem() -> None:
    from decimal import Decimal

    started = time.perf_counter()
    _, problems = BodyTemplate({"Name": "{{ row.n }}"}).render_row({"n": Decimal("1E+999999999")})
    assert time.perf_counter() - started < 1
    assert problems == ["Name: a number of more than 4300 digits is not a JSON value"]
    assert LIMIT == 10_000

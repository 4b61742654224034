"""Accessibility checks in the browser: axe-core (vendored, tests/ui/vendor/) run on a page,
and the accessible names of its form controls.

The pages' CSP allows scripts from /ui/static only, so axe is not added as a <script>: it is
evaluated through DevTools (Playwright's ``page.evaluate``), which a page's CSP does not
govern, and runs inside the page from there.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe-4.11.1.min.js"
# Violations that fail a page (axe's impacts: minor, moderate, serious, critical).
FAILING_IMPACTS = ("serious", "critical")

# The form controls a person fills in or chooses (hidden inputs are not shown to anyone).
CONTROLS = "input:not([type=hidden]), select, textarea"
_UNNAMED_CONTROLS = """(selector) => {
    axe.setup(document);
    try {
        return Array.from(document.querySelectorAll(selector))
            .filter((el) => !axe.commons.text.accessibleText(el).trim())
            .map((el) => el.outerHTML.slice(0, 200));
    } finally {
        axe.teardown();
    }
}"""


@cache
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def inject_axe(page: Any) -> None:
    """Make ``axe`` available in the page (once per document)."""
    if page.evaluate("typeof window.axe") != "object":
        page.evaluate(axe_source())
    assert page.evaluate("typeof window.axe") == "object", "axe-core did not load in the page"


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now, those of serious or critical impact."""
    inject_axe(page)
    results = page.evaluate("async () => await axe.run(document)")
    return [v for v in results["violations"] if v.get("impact") in FAILING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    """One paragraph per violation: its rule, impact, help, and where (CSS targets)."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            lines.append(f"  - {target}: {node.get('failureSummary', '').splitlines()[-1:]}")
    return "\n".join(lines)


def unnamed_controls(page: Any) -> list[str]:
    """The inputs, selects and textareas that have no accessible name (axe computes it as a
    screen reader would: label, aria-labelledby, aria-label, title...)."""
    inject_axe(page)
    found: list[str] = page.evaluate(_UNNAMED_CONTROLS, CONTROLS)
    return found


def focused(page: Any) -> dict[str, Any]:
    """What has the keyboard focus: its tag, id, text, href, name, and whether it is in <main>."""
    described: dict[str, Any] = page.evaluate(
        """() => {
            const el = document.activeElement;
            return {tag: el.tagName.toLowerCase(), id: el.id || '',
                    text: (el.innerText || el.value || '').trim(),
                    href: el.getAttribute('href') || '', name: el.getAttribute('name') || '',
                    inMain: !!el.closest('main')};
        }"""
    )
    return described

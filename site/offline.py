"""A small Sphinx extension that keeps every page of the book working offline and free of console errors.

- The ipywidgets HTML manager typesets widget labels with MathJax 2's API (``MathJax.Hub.Queue``);
  the book serves MathJax 3. We give the manager that one call, mapped onto MathJax 3.
- The widget manager looks for its icon fonts next to the page (webpack's public path is ""), so
  the fonts are published beside every folder that has pages (see ``html_extra_path``).
- sphinx-thebe registers its inline configuration script once per read pass; Jupyter Book runs two,
  and the second copy redeclares a ``const``. Identical scripts are dropped.
- The book's own CSS and JavaScript (``site/theme/``) go on every page: output that wraps and a visible
  scrollbar wherever code or a formula is wider than the column, and the phone menu buttons, which
  pydata-sphinx-theme 0.17 leaves without a listener (its issue #2451); see the files themselves.
"""

from __future__ import annotations

from pathlib import Path

THEME = Path(__file__).resolve().parent / "theme"  # book.css and book.js, served from _static/

MATHJAX2_BRIDGE = """
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub || !mj.startup) { return; }
  mj.Hub = {
    Queue: function () {
      var elements = Array.prototype.slice.call(arguments)
        .map(function (call) { return Array.isArray(call) ? call[2] : null; })
        .filter(Boolean);
      return mj.startup.promise.then(function () { return mj.typesetPromise(elements); });
    }
  };
});
"""


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # An inline script is registered once with filename None and once with "": the same script.
        key = (getattr(script, "filename", None) or "", tuple(sorted((getattr(script, "attributes", {}) or {}).items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique  # in place: handlers after this one (MathJax's) still add to the same list


def _add_theme_folder(app, config) -> None:
    if str(THEME) not in config.html_static_path:
        config.html_static_path.append(str(THEME))


def setup(app):
    app.connect("config-inited", _add_theme_folder)
    app.add_css_file("book.css", priority=900)  # after the theme's own styles, so that ours win
    app.add_js_file("book.js", priority=900)
    app.add_js_file(None, body=MATHJAX2_BRIDGE, priority=900)
    # Early: html-page-context stops at the first handler that returns a template name.
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

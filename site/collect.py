"""Copy the JavaScript the book serves itself from the npm packages in site/ into site/static/.

The built site then needs no CDN: MathJax renders formulas and the ipywidgets HTML manager renders
stored widgets from the site's own files. Run by `make book` after `npm ci --prefix site`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent
MODULES = SITE / "node_modules"
VENDOR = SITE / "static"  # html_static_path: Sphinx copies it into _build/html/_static/
EXTRA = SITE / "extra"    # html_extra_path: copied into _build/html/ as it is
# The widget manager fetches its icon fonts relative to the page, from "@jupyter-widgets/html-manager/dist/".
PAGE_FOLDERS = ("", "chapters", "homework")

# (package folder, files or folders inside it, destination inside site/static)
ASSETS = [
    ("mathjax", ["es5"], "mathjax"),
    ("requirejs", ["require.js"], "."),
    ("@jupyter-widgets/html-manager", ["dist/embed-amd.js", "dist/libembed-amd.js"], "html-manager"),
]
FONT_SUFFIXES = (".woff", ".woff2", ".ttf", ".eot", ".svg")  # the widget manager's icon fonts


def main() -> int:
    if not MODULES.is_dir():
        print("site/node_modules is missing: run `npm ci --prefix site` first", file=sys.stderr)
        return 1
    shutil.rmtree(VENDOR, ignore_errors=True)
    for package, items, destination in ASSETS:
        target = VENDOR / destination
        target.mkdir(parents=True, exist_ok=True)
        for item in items:
            source = MODULES / package / item
            if source.is_dir():
                shutil.copytree(source, target / source.name if destination == "." else target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target / source.name)
    shutil.rmtree(EXTRA, ignore_errors=True)
    fonts = [f for f in (MODULES / "@jupyter-widgets/html-manager/dist").iterdir() if f.suffix in FONT_SUFFIXES]
    for folder in PAGE_FOLDERS:
        target = EXTRA / folder / "@jupyter-widgets" / "html-manager" / "dist"
        target.mkdir(parents=True, exist_ok=True)
        for font in fonts:
            shutil.copy2(font, target / font.name)
    print(f"copied MathJax, RequireJS and the widget manager into {VENDOR.relative_to(SITE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

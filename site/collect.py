"""Copy the JavaScript the book serves itself from the npm packages in site/ into _static/vendor/.

The built site then needs no CDN: MathJax renders formulas and the ipywidgets HTML manager renders
stored widgets from the site's own files. Run by `make book` after `npm ci --prefix site`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent
MODULES = SITE / "node_modules"
VENDOR = SITE.parent / "_static" / "vendor"

# (package folder, files or folders inside it, destination inside _static/vendor)
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
    for font in (MODULES / "@jupyter-widgets/html-manager/dist").iterdir():
        if font.suffix in FONT_SUFFIXES:
            shutil.copy2(font, VENDOR / "html-manager" / font.name)
    print(f"copied MathJax, RequireJS and the widget manager into {VENDOR.relative_to(SITE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

/* The book's own behaviour on top of the theme (added to every page by site/offline.py).
 *
 * Phone navigation. pydata-sphinx-theme 0.17 opens its sidebar dialogs from the *first* element with
 * class primary-toggle / secondary-toggle only (pydata-sphinx-theme issue #2451). Those are the
 * buttons of its own header, which sphinx-book-theme hides; the menu and page-contents buttons a
 * reader sees are sphinx-book-theme's, later in the page, and got no listener: they did nothing.
 * Every later toggle hands its click to the first one, whose listeners (pydata's dialog below 960 px,
 * sphinx-book-theme's collapse above) do the work. Remove this once the theme binds every toggle.
 */
(function () {
  function forwardToggles() {
    ["primary-toggle", "secondary-toggle"].forEach(function (name) {
      var toggles = document.querySelectorAll("." + name);
      var bound = toggles[0];
      Array.prototype.slice.call(toggles, 1).forEach(function (toggle) {
        toggle.addEventListener("click", function (event) {
          event.preventDefault();
          event.stopPropagation();
          bound.click();
        });
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", forwardToggles);
  } else {
    forwardToggles();
  }
})();

/* Search results. Sphinx builds a result's summary from the page's text, where a formula is still its
 * LaTeX source: "\(3\times 3\) convolutions". The summary gets the formula as plain text instead:
 * "3×3 convolutions". Titles are plain already (the chapters' headings have no LaTeX).
 */
var BOOK_TEX_SYMBOLS = {
  times: "×", cdot: "·", div: "÷", pm: "±", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠",
  approx: "≈", sim: "∼", to: "→", rightarrow: "→", leftarrow: "←", in: "∈", infty: "∞", sum: "Σ",
  prod: "Π", partial: "∂", nabla: "∇", ldots: "…", dots: "…", cdots: "⋯", alpha: "α", beta: "β",
  gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η", theta: "θ", lambda: "λ", mu: "μ",
  pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", omega: "ω", Delta: "Δ", Sigma: "Σ", quad: " ",
  ell: "ℓ", qquad: " ", left: "", right: "", big: "", Big: "", mid: "|", lVert: "‖", rVert: "‖", Vert: "‖",
};

function bookTexToText(tex) {
  var text = tex.trim().replace(/^\\\(|\\\)$|^\\\[|\\\]$|^\$\$?|\$\$?$/g, "");
  text = text.replace(/\\\{/g, "\u0001").replace(/\\\}/g, "\u0002");  // a set's braces stay
  for (var i = 0; i < 4; i++) {  // innermost first: \frac{\sqrt{a}}{b}
    text = text
      .replace(/\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)")
      .replace(/\\sqrt\{([^{}]*)\}/g, "√($1)")
      .replace(/\\(?:mathrm|mathbf|mathit|mathcal|mathbb|boldsymbol|text|textrm|operatorname|hat|bar|tilde|vec)\{([^{}]*)\}/g, "$1");
  }
  return text
    .replace(/\\([A-Za-z]+)/g, function (_, name) { return name in BOOK_TEX_SYMBOLS ? BOOK_TEX_SYMBOLS[name] : name; })
    .replace(/\\([,;:! ])/g, " ")
    .replace(/\\([%&#_$])/g, "$1")
    .replace(/[{}]/g, "")
    .replace(/\u0001/g, "{").replace(/\u0002/g, "}")
    .replace(/\s+/g, " ")
    .replace(/ ?× ?/g, "×")
    .trim();
}

document.addEventListener("DOMContentLoaded", function () {
  if (typeof Search === "undefined" || !Search.htmlToText) { return; }
  var htmlToText = Search.htmlToText;
  // Sphinx writes a formula as <span class="math notranslate nohighlight">\(...\)</span> (or a div).
  var formula = /(<(span|div) class="math[^"]*">)([^<]*)(<\/\2>)/g;
  Search.htmlToText = function (htmlString, anchor) {
    return htmlToText(htmlString.replace(formula, function (_, open, tag, tex, close) {
      return open + bookTexToText(tex) + close;
    }), anchor);
  };
});

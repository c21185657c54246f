// Small behaviours shared by the console's pages (no inline script: the CSP forbids it).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.querySelectorAll("tr[data-href]").forEach(function (row) {
    row.classList.add("clickable");
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input")) return;
      window.location.href = row.getAttribute("data-href");
    });
  });
})();
